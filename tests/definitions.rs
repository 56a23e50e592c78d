//! The ElevenLabs tool definitions in prompts/demo/ against the code that serves them: every
//! tool has a route, every property the agent sends is a field the handler knows (same type,
//! same choices; the handler ignores fields it does not know, so a drifted name would silently
//! lose the agent's value), every field the handler requires is sent, and the ElevenLabs defaults that
//! bite (GET, 20 s, hidden errors) are overridden. The conversation-initiation variables are the
//! ones the prompt uses.

use std::collections::{BTreeMap, BTreeSet};

use frontdesk_blackbox::frontdesk::http::{read_tool_body, routes, TOOL_SECRET_HEADER};
use frontdesk_blackbox::frontdesk::tools::{
    availability, booking, booking_change, caller, calls, escalation, leads,
};
use frontdesk_blackbox::workspace;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// System variables ElevenLabs fills in tool calls (protocol notes §4.2).
const SYSTEM_VARIABLES: &[&str] = &[
    "system__caller_id",
    "system__called_number",
    "system__call_sid",
    "system__conversation_id",
    "system__agent_id",
    "system__time_utc",
    "system__time",
    "system__timezone",
];

/// The request type of each tool, as a JSON Schema, and a check that a body deserialises.
struct Served {
    schema: Value,
    accepts: fn(Value) -> Result<(), String>,
}

/// Read as the route reads it: known fields strictly, and none left over.
fn accepts<T: DeserializeOwned>(v: Value) -> Result<(), String> {
    let body = read_tool_body::<T>(v.to_string().as_bytes()).map_err(|e| format!("{e:?}"))?;
    match body.unknown_fields.as_slice() {
        [] => Ok(()),
        unknown => Err(format!("the handler would ignore {unknown:?}")),
    }
}

fn served<T: DeserializeOwned + schemars::JsonSchema>() -> Served {
    Served {
        schema: schemars::schema_for!(T).as_value().clone(),
        accepts: accepts::<T>,
    }
}

fn request_types() -> BTreeMap<&'static str, Served> {
    BTreeMap::from([
        (
            "check_availability",
            served::<availability::CheckAvailability>(),
        ),
        ("create_booking", served::<booking::CreateBooking>()),
        ("update_booking", served::<booking_change::UpdateBooking>()),
        ("upsert_contact", served::<caller::UpsertContact>()),
        ("capture_lead", served::<leads::CaptureLead>()),
        ("dispatch_lead", served::<leads::DispatchLead>()),
        (
            "escalation_target",
            served::<escalation::EscalationTarget>(),
        ),
        ("log_call", served::<calls::LogCall>()),
    ])
}

fn definitions() -> BTreeMap<String, Value> {
    let dir = workspace().join("prompts/demo/tools");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (stem, v)
        })
        .collect()
}

/// A Rust field's schema with `$ref`s resolved and `null` dropped: (types, enum values).
fn field_shape(root: &Value, field: &Value) -> (BTreeSet<String>, Option<BTreeSet<String>>) {
    let mut field = field.clone();
    if let Some(r) = field.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        field = root["$defs"][name].clone();
    }
    // Option<Enum> is `anyOf: [{$ref}, {type: null}]`.
    if let Some(any) = field.get("anyOf").and_then(Value::as_array) {
        let inner = any
            .iter()
            .find(|v| v.get("type") != Some(&json!("null")))
            .cloned()
            .unwrap();
        return field_shape(root, &inner);
    }
    let types: BTreeSet<String> = match &field["type"] {
        Value::String(t) => [t.clone()].into(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(str::to_string)
            .collect(),
        _ => BTreeSet::new(),
    };
    let choices = field.get("enum").and_then(Value::as_array).map(|e| {
        e.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    });
    let choices = choices.or_else(|| {
        // Unit enums may come as oneOf of consts.
        field.get("oneOf").and_then(Value::as_array).map(|o| {
            o.iter()
                .filter_map(|v| v.get("const").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
    });
    let types = if types.is_empty() && choices.is_some() {
        ["string".to_string()].into()
    } else {
        types
    };
    (types, choices)
}

/// A body as ElevenLabs would send it: every property filled with a value of its type.
fn sample_body(properties: &serde_json::Map<String, Value>) -> Value {
    let mut body = serde_json::Map::new();
    for (name, p) in properties {
        let v = match (p["type"].as_str().unwrap(), p.get("enum")) {
            (_, Some(choices)) => choices[0].clone(),
            ("string", _) => json!(format!("sample {name}")),
            ("integer", _) => json!(1),
            ("number", _) => json!(1.5),
            ("boolean", _) => json!(true),
            (t, _) => panic!("{name}: unexpected type {t}"),
        };
        body.insert(name.clone(), v);
    }
    Value::Object(body)
}

#[test]
fn every_tool_route_has_a_definition_and_every_definition_a_route() {
    let defined: BTreeSet<String> = definitions().into_keys().collect();
    let routed: BTreeSet<String> = routes()
        .iter()
        .filter_map(|r| r.path.strip_prefix("/tools/"))
        .map(str::to_string)
        .collect();
    assert_eq!(defined, routed);
    let typed: BTreeSet<String> = request_types().keys().map(|k| k.to_string()).collect();
    assert_eq!(typed, routed, "the test knows every tool's request type");
}

#[test]
fn definitions_override_the_elevenlabs_defaults_that_bite() {
    for (name, d) in definitions() {
        let c = &d["tool_config"];
        assert_eq!(c["type"], "webhook", "{name}");
        assert_eq!(
            c["name"],
            name.as_str(),
            "{name}: file name and tool name agree"
        );
        let api = &c["api_schema"];
        assert_eq!(api["method"], "POST", "{name}: ElevenLabs defaults to GET");
        assert_eq!(api["content_type"], "application/json", "{name}");
        assert_eq!(api["url"], format!("${{TOOLS_BASE_URL}}/{name}"), "{name}");
        let timeout = c["response_timeout_secs"]
            .as_u64()
            .expect("timeout set, not the 20 s default");
        assert!(
            (5..=15).contains(&timeout),
            "{name}: {timeout} s keeps a caller waiting"
        );
        assert_eq!(
            c["tool_error_handling_mode"], "passthrough",
            "{name}: with the default, the model never sees our 4xx sentences"
        );
        assert!(
            !c["description"].as_str().unwrap_or("").is_empty(),
            "{name}"
        );
        let headers = api["request_headers"].as_object().unwrap();
        assert_eq!(
            headers[TOOL_SECRET_HEADER],
            json!({"secret_id": "${TOOL_SECRET_ID}"}),
            "{name}: the tool secret comes from a workspace secret, never inline"
        );
        assert_eq!(headers.len(), 1, "{name}");
    }
}

#[test]
fn every_property_sent_is_a_field_the_handler_accepts_and_every_required_field_is_sent() {
    let types = request_types();
    for (name, d) in definitions() {
        let served = &types[name.as_str()];
        let rust = &served.schema;
        let schema = &d["tool_config"]["api_schema"]["request_body_schema"];
        assert_eq!(schema["type"], "object", "{name}");
        let properties = schema["properties"].as_object().unwrap();
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let rust_properties = rust["properties"].as_object().unwrap();
        let rust_required: BTreeSet<&str> = rust["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        for field in &rust_required {
            assert!(
                required.contains(field),
                "{name}: the handler requires {field:?}; the definition must require it"
            );
        }
        for field in &required {
            assert!(
                properties.contains_key(*field),
                "{name}: required {field:?} is not a property"
            );
        }
        for (field, p) in properties {
            let Some(rust_field) = rust_properties.get(field) else {
                panic!("{name}: the definition sends {field:?}, which the handler does not know (it would be ignored)");
            };
            let (rust_types, rust_choices) = field_shape(rust, rust_field);
            let sent = p["type"].as_str().unwrap().to_string();
            assert!(
                rust_types.contains(&sent),
                "{name}.{field}: sends {sent}, handler takes {rust_types:?}"
            );
            let sent_choices: Option<BTreeSet<String>> = p.get("enum").map(|e| {
                e.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            });
            if let Some(rc) = &rust_choices {
                assert_eq!(
                    sent_choices.as_ref(),
                    Some(rc),
                    "{name}.{field}: the agent must be offered exactly the accepted choices"
                );
            }
            let sources = ["description", "dynamic_variable", "constant_value"]
                .iter()
                .filter(|k| p.get(**k).is_some())
                .count();
            assert_eq!(
                sources, 1,
                "{name}.{field}: exactly one of description, dynamic_variable, constant_value"
            );
            if let Some(var) = p.get("dynamic_variable").and_then(Value::as_str) {
                assert!(
                    SYSTEM_VARIABLES.contains(&var),
                    "{name}.{field}: unknown variable {var}"
                );
            }
        }
        // End to end: what ElevenLabs would send deserialises into the handler's type.
        (served.accepts)(sample_body(properties)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_prompt_uses_only_variables_that_the_call_provides() {
    let init: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace().join("prompts/demo/conversation-init.json")).unwrap(),
    )
    .unwrap();
    let placeholders: BTreeSet<&str> = init["dynamic_variable_placeholders"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let answered: BTreeSet<&str> = caller::INIT_VARIABLES.iter().copied().collect();
    assert_eq!(
        placeholders, answered,
        "placeholders and the webhook's answer agree"
    );
    let prompt = std::fs::read_to_string(workspace().join("prompts/demo/agent.md")).unwrap();
    let mut rest = prompt.as_str();
    let mut used = BTreeSet::new();
    while let Some(i) = rest.find("{{") {
        let end = rest[i..].find("}}").expect("closed {{") + i;
        used.insert(rest[i + 2..end].trim().to_string());
        rest = &rest[end + 2..];
    }
    assert!(!used.is_empty());
    for var in used {
        assert!(
            var.starts_with("system__") || answered.contains(var.as_str()),
            "agent.md uses {{{{{var}}}}}, which the conversation-initiation webhook does not send: the call would fail to start"
        );
    }
    assert_eq!(
        init["workspace_settings"]["conversation_initiation_client_data_webhook"]["url"],
        "${WEBHOOKS_BASE_URL}/conversation-init"
    );
    assert!(routes()
        .iter()
        .any(|r| r.path == "/webhooks/elevenlabs/conversation-init"));
}

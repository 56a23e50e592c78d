//! The ElevenLabs agent of a business, as kept in its folder: `agent.toml` (who the agent is,
//! what it may do, what ElevenLabs extracts and judges after a call), `agent.md` (the prompt,
//! with `${...}` filled from the business facts), `tools/*.json`, `conversation-init.json` and
//! `scenarios.toml` (the pre-deploy gate). Pure: rendering knows nothing of HTTP.
//!
//! `${name}` placeholders are ours, filled here; `{{name}}` are ElevenLabs dynamic variables,
//! left for the platform to fill during the call.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::tenant::{TenantConfig, TenantConfigError};

pub const AGENT_FILE: &str = "agent.toml";
pub const SCENARIOS_FILE: &str = "scenarios.toml";
pub const CONVERSATION_INIT_FILE: &str = "conversation-init.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentProfile {
    pub agent: AgentSettings,
    #[serde(default)]
    pub elevenlabs: ElevenLabsSettings,
    /// What ElevenLabs extracts from each call (`analysis.data_collection_results`).
    #[serde(default)]
    pub data_collection: Vec<DataField>,
    /// How ElevenLabs judges each call (`analysis.evaluation_criteria_results`).
    #[serde(default)]
    pub evaluation: Vec<Criterion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Empty until `frontdesk push` creates the agent (it writes the id here).
    #[serde(default)]
    pub agent_id: String,
    pub name: String,
    #[serde(default = "default_language")]
    pub language: String,
    pub llm: String,
    pub persona: String,
    /// The words that tell the caller they speak to an AI (in the first message).
    pub ai_disclosure: String,
    /// Said on every call before anything else (may use `{{dynamic variables}}`).
    pub first_message: String,
    pub scope: Vec<String>,
    #[serde(default)]
    pub out_of_scope: Vec<String>,
    pub qualifying_questions: Vec<String>,
    pub never_say: Vec<String>,
    pub escalation_triggers: Vec<String>,
}

fn default_language() -> String {
    "en".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElevenLabsSettings {
    /// The workspace secret (`POST /v1/convai/secrets`) holding the stack's TOOL_SECRET: tool
    /// calls and the conversation-initiation webhook send it.
    #[serde(default)]
    pub tool_secret_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataField {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    #[serde(default, rename = "enum", skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub id: String,
    pub name: String,
    /// What a good call achieves, as ElevenLabs' evaluator is asked.
    pub goal: String,
}

/// The gate's scenarios: simulated callers the agent must handle before a change goes live.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenarios {
    #[serde(default, rename = "scenario")]
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub id: String,
    /// Who the simulated caller is and what they want.
    pub caller: String,
    /// What must be true of the conversation (ElevenLabs' evaluator judges each).
    pub success: Vec<String>,
    #[serde(default = "default_max_turns")]
    pub max_turns: u32,
    /// What each tool answers in this scenario (JSON, as our endpoint would). Tools without
    /// one answer with an error: a gate never calls the live stack.
    #[serde(default)]
    pub mocks: BTreeMap<String, String>,
    /// Values of the agent's dynamic variables (the conversation-initiation webhook's).
    #[serde(default)]
    pub dynamic_variables: BTreeMap<String, Value>,
    /// Quality rules this scenario may break on purpose (an upset caller).
    #[serde(default)]
    pub allow_rules: Vec<String>,
}

fn default_max_turns() -> u32 {
    12
}

/// The stack an agent's tools call.
#[derive(Debug, Clone)]
pub struct StackUrls {
    /// The API's base URL (the stack's `ApiUrl` output, or its public domain).
    pub api_url: String,
    pub tool_secret_id: String,
}

/// The agent's configuration for ElevenLabs, as `frontdesk render` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedAgent {
    /// `name`, `conversation_config`, `platform_settings`, as the agents API takes them
    /// (`prompt.tool_ids` filled at push from `tool_names`).
    pub agent: Value,
    /// Each tool's `{"tool_config": …}`, as the tools API takes it.
    pub tools: Vec<Value>,
    pub tool_names: Vec<String>,
    /// The workspace's conversation-initiation webhook setting.
    pub conversation_initiation_webhook: Value,
    /// A digest of everything the gate judges: prompt, tools, settings, scenarios, rules.
    pub version: String,
}

fn err(file: &str, field: impl Into<String>, message: impl Into<String>) -> TenantConfigError {
    TenantConfigError {
        file: file.into(),
        field: field.into(),
        message: message.into(),
    }
}

/// A TOML file read into `T`, its error naming the file and where.
fn from_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, TenantConfigError> {
    toml::from_str(text).map_err(|e| {
        err(
            file,
            e.span()
                .map(|s| crate::tenant::locate(text, s.start))
                .unwrap_or_else(|| "-".into()),
            e.message(),
        )
    })
}

impl AgentProfile {
    pub fn from_toml(text: &str, file: &str) -> Result<Self, TenantConfigError> {
        from_toml(text, file)
    }

    /// Every problem, each with its field; `tenant` for the cross-checks with business.toml.
    pub fn problems(&self, file: &str, tenant: &TenantConfig) -> Vec<TenantConfigError> {
        let mut found = Vec::new();
        let a = &self.agent;
        for (field, value) in [
            ("agent.name", &a.name),
            ("agent.llm", &a.llm),
            ("agent.persona", &a.persona),
            ("agent.ai_disclosure", &a.ai_disclosure),
            ("agent.first_message", &a.first_message),
        ] {
            if value.trim().is_empty() {
                found.push(err(file, field, "must not be empty"));
            }
        }
        if !a.agent_id.is_empty() {
            if let Err(e) = crate::ids::AgentId::parse(&a.agent_id) {
                found.push(err(file, "agent.agent_id", e.to_string()));
            } else if !tenant.business.agent_ids.is_empty()
                && !tenant.business.agent_ids.contains(&a.agent_id)
            {
                found.push(err(
                    file,
                    "agent.agent_id",
                    "is not in business.toml's business.agent_ids: its calls would be ignored",
                ));
            }
        }
        if !a
            .language
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '-')
            || !(2..=8).contains(&a.language.len())
        {
            found.push(err(
                file,
                "agent.language",
                "must be a language code such as \"en\"",
            ));
        }
        if !a.ai_disclosure.trim().is_empty() && !contains_words(&a.first_message, &a.ai_disclosure)
        {
            found.push(err(
                file,
                "agent.first_message",
                format!(
                    "must contain the AI disclosure {:?}: callers hear it first",
                    a.ai_disclosure
                ),
            ));
        }
        if tenant.compliance.recording_disclosure
            && !a.first_message.to_lowercase().contains("record")
        {
            found.push(err(
                file,
                "agent.first_message",
                "must say calls are recorded (business.toml compliance.recording_disclosure = true)",
            ));
        }
        for (field, list) in [
            ("agent.scope", &a.scope),
            ("agent.qualifying_questions", &a.qualifying_questions),
            ("agent.never_say", &a.never_say),
            ("agent.escalation_triggers", &a.escalation_triggers),
        ] {
            if list.iter().all(|s| s.trim().is_empty()) {
                found.push(err(file, field, "needs at least one entry"));
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, f) in self.data_collection.iter().enumerate() {
            let field = format!("data_collection[{i}]");
            if !is_id(&f.id) {
                found.push(err(
                    file,
                    format!("{field}.id"),
                    "must be lower-case letters, digits and _",
                ));
            }
            if !ids.insert(f.id.as_str()) {
                found.push(err(
                    file,
                    format!("{field}.id"),
                    format!("{:?} is listed twice", f.id),
                ));
            }
            if !matches!(f.kind.as_str(), "string" | "boolean" | "integer" | "number") {
                found.push(err(
                    file,
                    format!("{field}.type"),
                    "must be string, boolean, integer or number",
                ));
            }
            if f.description.trim().is_empty() {
                found.push(err(
                    file,
                    format!("{field}.description"),
                    "must say what to extract",
                ));
            }
        }
        // What post-call reads must be extracted: otherwise every call loses it.
        let p = &tenant.post_call;
        for (name, id) in [
            ("name_field", &p.name_field),
            ("service_field", &p.service_field),
            ("urgency_field", &p.urgency_field),
            ("disposition_field", &p.disposition_field),
            ("booking_id_field", &p.booking_id_field),
            ("booking_time_field", &p.booking_time_field),
        ] {
            if !self.data_collection.iter().any(|f| &f.id == id) {
                found.push(err(
                    file,
                    "data_collection",
                    format!("needs a field {id:?} (business.toml post_call.{name} reads it)"),
                ));
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, c) in self.evaluation.iter().enumerate() {
            let field = format!("evaluation[{i}]");
            if !is_id(&c.id) {
                found.push(err(
                    file,
                    format!("{field}.id"),
                    "must be lower-case letters, digits and _",
                ));
            }
            if !ids.insert(c.id.as_str()) {
                found.push(err(
                    file,
                    format!("{field}.id"),
                    format!("{:?} is listed twice", c.id),
                ));
            }
            if c.name.trim().is_empty() || c.goal.trim().is_empty() {
                found.push(err(file, field.clone(), "needs a name and a goal"));
            }
            if c.goal.chars().count() > 2000 {
                found.push(err(
                    file,
                    format!("{field}.goal"),
                    "is over ElevenLabs' 2,000 characters",
                ));
            }
        }
        found
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn contains_words(text: &str, words: &str) -> bool {
    let norm = |s: &str| {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    norm(text).contains(&norm(words))
}

impl Scenarios {
    pub fn from_toml(text: &str, file: &str) -> Result<Self, TenantConfigError> {
        from_toml(text, file)
    }

    pub fn problems(&self, file: &str, tenant: &TenantConfig) -> Vec<TenantConfigError> {
        let mut found = Vec::new();
        if self.scenarios.is_empty() {
            found.push(err(
                file,
                "scenario",
                "the gate needs at least one [[scenario]]",
            ));
        }
        let tools: Vec<&str> = tenant.agent_tools.iter().map(|t| t.name.as_str()).collect();
        let mut ids = std::collections::BTreeSet::new();
        for (i, s) in self.scenarios.iter().enumerate() {
            let field = format!("scenario[{i}]");
            if s.id.is_empty()
                || !s
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                found.push(err(
                    file,
                    format!("{field}.id"),
                    "must be lower-case letters, digits, - and _",
                ));
            }
            if !ids.insert(s.id.as_str()) {
                found.push(err(
                    file,
                    format!("{field}.id"),
                    format!("{:?} is used twice", s.id),
                ));
            }
            if s.caller.trim().is_empty() {
                found.push(err(
                    file,
                    format!("{field}.caller"),
                    "must say who calls and what they want",
                ));
            }
            if s.success.iter().all(|c| c.trim().is_empty()) {
                found.push(err(
                    file,
                    format!("{field}.success"),
                    "needs at least one condition",
                ));
            }
            if !(1..=50).contains(&s.max_turns) {
                found.push(err(
                    file,
                    format!("{field}.max_turns"),
                    "must be from 1 to 50",
                ));
            }
            for (tool, result) in &s.mocks {
                if !tools.contains(&tool.as_str()) {
                    found.push(err(
                        file,
                        format!("{field}.mocks.{tool}"),
                        format!("no such tool in tools/ (there are {tools:?})"),
                    ));
                } else if serde_json::from_str::<Value>(result).is_err() {
                    found.push(err(
                        file,
                        format!("{field}.mocks.{tool}"),
                        "must be JSON, as the tool answers",
                    ));
                }
            }
            for rule in &s.allow_rules {
                if tenant.quality.rule(rule).is_none() {
                    found.push(err(
                        file,
                        format!("{field}.allow_rules"),
                        format!("{rule:?} is not a rule in assertions.toml"),
                    ));
                }
            }
        }
        found
    }
}

/// The `${name}`s a prompt may use, filled from the business facts and `agent.toml`.
pub const PROMPT_PLACEHOLDERS: &[&str] = &[
    "business_name",
    "business_phone",
    "time_zone",
    "persona",
    "ai_disclosure",
    "first_message",
    "recording_notice",
    "scope",
    "out_of_scope",
    "services",
    "areas",
    "hours",
    "qualifying_questions",
    "never_say",
    "escalation_triggers",
];

/// Fills `${name}` from the business; an unknown name is an error naming it.
pub fn render_prompt(
    template: &str,
    profile: &AgentProfile,
    tenant: &TenantConfig,
) -> Result<String, String> {
    let a = &profile.agent;
    let bullets = |items: &[String]| {
        items
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| format!("- {}", s.trim()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let numbered = |items: &[String]| {
        items
            .iter()
            .filter(|s| !s.trim().is_empty())
            .enumerate()
            .map(|(i, s)| format!("{}. {}", i + 1, s.trim()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let hours = match &tenant.booking {
        Some(rules) => rules
            .hours
            .days()
            .iter()
            .map(|(day, openings)| {
                let when = if openings.is_empty() {
                    "closed".to_string()
                } else {
                    openings.join(", ")
                };
                format!("- {}{}: {when}", day[..1].to_uppercase(), &day[1..])
            })
            .collect::<Vec<_>>()
            .join("\n"),
        None => "- By arrangement: take the caller's details for a callback.".into(),
    };
    let areas: Vec<String> = tenant
        .areas
        .iter()
        .map(|a| {
            if a.aliases.is_empty() {
                a.name.clone()
            } else {
                format!("{} ({})", a.name, a.aliases.join(", "))
            }
        })
        .collect();
    let values: BTreeMap<&str, String> = BTreeMap::from([
        ("business_name", tenant.business.name.clone()),
        ("business_phone", tenant.business.phone.international()),
        ("time_zone", tenant.business.time_zone.clone()),
        ("persona", a.persona.trim().to_string()),
        ("ai_disclosure", a.ai_disclosure.trim().to_string()),
        ("first_message", a.first_message.trim().to_string()),
        (
            "recording_notice",
            if tenant.compliance.recording_disclosure {
                "Calls are recorded: say so in your first sentence, as the first message does."
                    .into()
            } else {
                String::new()
            },
        ),
        ("scope", bullets(&a.scope)),
        ("out_of_scope", bullets(&a.out_of_scope)),
        ("services", tenant.service_names()),
        (
            "areas",
            crate::spoken::list_words(&areas.iter().map(String::as_str).collect::<Vec<_>>()),
        ),
        ("hours", hours),
        ("qualifying_questions", numbered(&a.qualifying_questions)),
        ("never_say", bullets(&a.never_say)),
        ("escalation_triggers", bullets(&a.escalation_triggers)),
    ]);
    // `<!-- … -->` is a note to the engineer, not to the agent.
    let mut stripped = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("<!--") {
        stripped.push_str(&rest[..i]);
        rest = match rest[i..].find("-->") {
            Some(end) => rest[i + end + 3..].trim_start_matches('\n'),
            None => return Err("an unclosed \"<!--\" comment".into()),
        };
    }
    stripped.push_str(rest);
    let mut out = String::with_capacity(stripped.len() + 1024);
    let mut rest = stripped.as_str();
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "an unclosed \"${\"".to_string())?;
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| {
            format!("unknown placeholder ${{{name}}}; use one of {PROMPT_PLACEHOLDERS:?}")
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Fills a tool definition's or webhook setting's `${TOOLS_BASE_URL}`, `${WEBHOOKS_BASE_URL}`
/// and `${TOOL_SECRET_ID}` with the stack's.
pub fn fill_stack(definition: &Value, stack: &StackUrls) -> Value {
    let base = stack.api_url.trim_end_matches('/');
    let text = definition
        .to_string()
        .replace("${TOOLS_BASE_URL}", &format!("{base}/tools"))
        .replace(
            "${WEBHOOKS_BASE_URL}",
            &format!("{base}/webhooks/elevenlabs"),
        )
        .replace("${TOOL_SECRET_ID}", &stack.tool_secret_id);
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The whole agent configuration: `tools` are the raw definitions (`tools/*.json`), `init`
/// is `conversation-init.json`; `gated` is what else the gate judges (scenarios, rules).
pub fn render_agent(
    tenant: &TenantConfig,
    profile: &AgentProfile,
    tools: &[Value],
    init: &Value,
    stack: &StackUrls,
    gated: &[&str],
) -> RenderedAgent {
    let a = &profile.agent;
    let tools: Vec<Value> = tools.iter().map(|t| fill_stack(t, stack)).collect();
    let tool_names: Vec<String> = tools
        .iter()
        .filter_map(|t| t["tool_config"]["name"].as_str().map(str::to_string))
        .collect();
    let data_collection: Map<String, Value> = profile
        .data_collection
        .iter()
        .map(|f| {
            let mut item = json!({"type": f.kind, "description": f.description});
            if !f.values.is_empty() {
                item["enum"] = json!(f.values);
            }
            (f.id.clone(), item)
        })
        .collect();
    let criteria: Vec<Value> = profile
        .evaluation
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name, "type": "prompt", "conversation_goal_prompt": c.goal}))
        .collect();
    let mut platform = json!({
        "data_collection": data_collection,
        "evaluation": {"criteria": criteria},
    });
    if let Some(overrides) = init.pointer("/agent_platform_settings/overrides") {
        platform["overrides"] = overrides.clone();
    }
    let agent = json!({
        "name": a.name,
        "tags": ["frontdesk", format!("tenant:{}", tenant_tag(tenant))],
        "conversation_config": {
            "agent": {
                "first_message": a.first_message.trim(),
                "language": a.language,
                "dynamic_variables": {
                    "dynamic_variable_placeholders": init.get("dynamic_variable_placeholders").cloned().unwrap_or(json!({})),
                },
                "prompt": {
                    "prompt": tenant.agent_prompt,
                    "llm": a.llm,
                    "timezone": tenant.business.time_zone,
                    "tool_ids": [],
                },
            },
        },
        "platform_settings": platform,
    });
    let webhook = fill_stack(
        init.pointer("/workspace_settings/conversation_initiation_client_data_webhook")
            .unwrap_or(&Value::Null),
        stack,
    );
    let mut hasher = Sha256::new();
    hasher.update(agent.to_string());
    for t in &tools {
        hasher.update(t.to_string());
    }
    hasher.update(webhook.to_string());
    // What the rules know of the business (partners' numbers and addresses) judges too.
    hasher.update(serde_json::to_string(&tenant.providers).unwrap_or_default());
    for g in gated {
        hasher.update(g.as_bytes());
    }
    let version = hex::encode(&hasher.finalize()[..8]);
    RenderedAgent {
        agent,
        tools,
        tool_names,
        conversation_initiation_webhook: webhook,
        version,
    }
}

fn tenant_tag(tenant: &TenantConfig) -> String {
    tenant
        .business
        .name
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> AgentProfile {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../prompts/demo/agent.toml");
        AgentProfile::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
    }

    #[test]
    fn the_demo_prompt_renders_from_the_business_facts() {
        let tenant = crate::tenant::demo();
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../prompts/demo/agent.md"
        ))
        .unwrap();
        let prompt = render_prompt(&template, &profile(), &tenant).unwrap();
        assert!(!prompt.contains("${"), "{prompt}");
        assert!(
            prompt.contains("boiler service, leak repair, blocked drain or radiator fitting"),
            "{prompt}"
        );
        assert!(
            prompt.contains("- Monday: 08:00-12:30, 13:30-18:00"),
            "{prompt}"
        );
        assert!(prompt.contains("- Sunday: closed"), "{prompt}");
        assert!(
            prompt.contains("Islington (N1, N7, Highbury, Holloway)"),
            "{prompt}"
        );
        assert!(
            prompt.contains("{{caller_first_name}}"),
            "dynamic variables are left for ElevenLabs"
        );
        assert!(profile().problems("agent.toml", &tenant).is_empty());
    }

    #[test]
    fn notes_to_the_engineer_are_not_sent() {
        let tenant = crate::tenant::demo();
        let prompt = render_prompt(
            "<!-- fill ${anything} in -->\nHi ${business_name}",
            &profile(),
            &tenant,
        )
        .unwrap();
        assert_eq!(prompt, "Hi Northside Plumbing & Heating");
    }

    #[test]
    fn an_unknown_placeholder_is_named() {
        let tenant = crate::tenant::demo();
        let e = render_prompt("Hi ${nope}", &profile(), &tenant).unwrap_err();
        assert!(e.contains("${nope}"), "{e}");
    }

    #[test]
    fn the_opening_must_disclose_the_ai_and_the_recording() {
        let tenant = crate::tenant::demo();
        let mut p = profile();
        p.agent.first_message = "Hello, Northside Plumbing.".into();
        let fields: Vec<String> = p
            .problems("agent.toml", &tenant)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(fields.len(), 2, "{fields:?}");
    }
}

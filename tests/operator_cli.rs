//! The operator's CLI, `frontdesk`, run as an engineer runs it: the real binary
//! (target/debug/frontdesk) on a copy of prompts/demo/ in a temporary folder, with a stateful
//! fake of the ElevenLabs management API (wiremock) in place of ElevenLabs.
//!
//! - `validate` names the file and the field of every problem, all in one run;
//! - `render` prints the reviewed agent configuration (tests/fixtures/operator/render-demo.json;
//!   `FRONTDESK_UPDATE_SNAPSHOTS=1` rewrites it);
//! - `gate` runs the scenarios as agent tests and the tenant's quality rules over their
//!   transcripts, and `push` sends only a version whose gate passed;
//! - `push` creates what is missing, puts back what was edited in ElevenLabs, ignores what
//!   ElevenLabs adds, and writes nothing when nothing changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use frontdesk_blackbox::frontdesk::agent::AgentProfile;
use frontdesk_blackbox::workspace;
use serde_json::{json, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The stack's URL every command is given (`--api-url`).
const API_URL: &str = "https://frontdesk-demo.example.com";
const API_KEY: &str = "xi-test-key-0123456789";
/// The workspace secret holding the stack's TOOL_SECRET, in every copy of the demo.
const TOOL_SECRET_ID: &str = "sec_0123456789tooltest";
const SNAPSHOT: &str = "tests/fixtures/operator/render-demo.json";
const FIRST_MESSAGE: &str = "Hi, you're through to Northside Plumbing, I'm Ava, the virtual receptionist. Calls are recorded for quality. How can I help?";
const PERSONA: &str = "You are Ava, the receptionist for Northside Plumbing & Heating in North London: warm, brief and practical, like a good office manager.";
const DEMO_TOOLS: [&str; 8] = [
    "capture_lead",
    "check_availability",
    "create_booking",
    "dispatch_lead",
    "escalation_target",
    "log_call",
    "update_booking",
    "upsert_contact",
];

// ---------------------------------------------------------------------------------------------
// The binary and a tenant folder of our own.

fn binary() -> PathBuf {
    let path = workspace().join("target/debug/frontdesk");
    if !path.is_file() {
        panic!(
            "{} is missing: run make test (it builds target/debug/frontdesk)",
            path.display()
        );
    }
    path
}

/// What a run of `frontdesk` did.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A copy of prompts/demo/ at `<tmp>/prompts/<name>/`: no samconfig.toml beside it unless a
/// test writes one, and the repository's prompts/ are never written. Removed when dropped
/// (kept when the test failed, to look at).
struct Tenant {
    root: PathBuf,
    prompts: PathBuf,
    dir: PathBuf,
    name: String,
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

impl Tenant {
    fn demo() -> Self {
        Self::demo_named("demo")
    }

    fn demo_named(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!(
            "frontdesk-operator-cli-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let prompts = root.join("prompts");
        let dir = prompts.join(name);
        copy_dir(&workspace().join("prompts/demo"), &dir);
        let _ = std::fs::remove_file(dir.join("gate.json"));
        // As the README's step 4 has the engineer do: the workspace secret's id.
        let agent = std::fs::read_to_string(dir.join("agent.toml")).unwrap();
        assert!(agent.contains("tool_secret_id = \"\""));
        std::fs::write(
            dir.join("agent.toml"),
            agent.replacen(
                "tool_secret_id = \"\"",
                &format!("tool_secret_id = \"{TOOL_SECRET_ID}\""),
                1,
            ),
        )
        .unwrap();
        Self {
            root,
            prompts,
            dir,
            name: name.to_string(),
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.path(file), text).unwrap();
    }

    /// Replaces the first `from` in `file` (which must hold it: a break that breaks nothing
    /// would prove nothing).
    fn replace(&self, file: &str, from: &str, to: &str) {
        let text = self.read(file);
        assert!(text.contains(from), "{file} has no {from:?}");
        self.write(file, &text.replacen(from, to, 1));
    }

    fn profile(&self) -> AgentProfile {
        AgentProfile::from_toml(&self.read("agent.toml"), "agent.toml").expect("agent.toml reads")
    }

    fn agent_id(&self) -> String {
        self.profile().agent.agent_id
    }

    fn gate_record(&self) -> Value {
        serde_json::from_str(&self.read("gate.json")).expect("gate.json is JSON")
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(binary());
        command
            .arg("--prompts")
            .arg(&self.prompts)
            .args(args)
            .current_dir(&self.root)
            .env("RUST_LOG", "warn");
        for var in [
            "FRONTDESK_API_URL",
            "FRONTDESK_TABLE",
            "FRONTDESK_GATE_POLL_MS",
            "ELEVENLABS_API_KEY",
            "ELEVENLABS_API_BASE_URL",
        ] {
            command.env_remove(var);
        }
        command
    }

    /// `frontdesk --prompts <tmp>/prompts <args>` with no ElevenLabs.
    fn run(&self, args: &[&str]) -> Ran {
        let output = self.command(args).output().expect("frontdesk runs");
        ran(output)
    }

    /// `frontdesk --prompts <tmp>/prompts <args>` against the fake ElevenLabs.
    async fn run_with(&self, elevenlabs: &ElevenLabs, args: &[&str]) -> Ran {
        let mut command = tokio::process::Command::from(self.command(args));
        command
            .env("ELEVENLABS_API_KEY", API_KEY)
            .env("ELEVENLABS_API_BASE_URL", elevenlabs.server.uri())
            .env("FRONTDESK_GATE_POLL_MS", "20")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .unwrap_or_else(|_| panic!("frontdesk {args:?} did not finish within 60 s"))
            .expect("frontdesk runs");
        ran(output)
    }

    async fn gate(&self, elevenlabs: &ElevenLabs) -> Ran {
        self.run_with(
            elevenlabs,
            &[
                "gate",
                &self.name,
                "--api-url",
                API_URL,
                "--timeout-secs",
                "30",
            ],
        )
        .await
    }

    async fn push(&self, elevenlabs: &ElevenLabs) -> Ran {
        self.run_with(elevenlabs, &["push", &self.name, "--api-url", API_URL])
            .await
    }

    /// What `frontdesk render` prints for the folder as it is now.
    fn render(&self) -> Value {
        let ran = self.run(&["render", &self.name, "--api-url", API_URL]);
        assert_eq!(ran.code, Some(0), "{ran}");
        serde_json::from_str(&ran.stdout).expect("render prints JSON")
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn ran(output: std::process::Output) -> Ran {
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ElevenLabs, faked: a workspace that keeps what it is sent (tools, agents, tests, settings),
// answers in the shapes of ElevenLabs' API (Python SDK 2.59) and adds server-side defaults of
// its own, as ElevenLabs does.

/// What the fake's agent tests "say" in each scenario (by scenario id; others are clean).
#[derive(Default)]
struct Script {
    transcripts: BTreeMap<String, Vec<Value>>,
    /// Scenarios whose success conditions ElevenLabs' evaluator finds unmet, and why.
    unmet: BTreeMap<String, String>,
}

#[derive(Default)]
struct Workspace {
    next_id: u64,
    tools: BTreeMap<String, Value>,
    agents: BTreeMap<String, Value>,
    settings: Value,
    tests: BTreeMap<String, Value>,
    /// The finished invocation (run-tests answers with its runs pending).
    invocations: BTreeMap<String, Value>,
    run_tests_bodies: Vec<Value>,
    invocation_polls: u64,
    script: Script,
}

impl Workspace {
    fn new() -> Self {
        Self {
            settings: json!({
                "conversation_initiation_client_data_webhook": null,
                "webhook_overrides": {},
                "can_use_mcp_servers": false,
                "rag_retention_period_days": 10,
            }),
            ..Self::default()
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{:04}k7fake{}", self.next_id, self.next_id * 7919)
    }
}

/// Objects merged key by key, everything else replaced (the agents API's PATCH).
fn deep_merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => deep_merge(slot, v),
                    _ => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// Fields ElevenLabs fills in on a tool that the folder never sets.
fn tool_with_server_defaults(config: &Value) -> Value {
    let mut config = config.clone();
    for (k, v) in [
        ("disable_interruptions", json!(false)),
        ("force_pre_tool_speech", json!(false)),
        (
            "dynamic_variables",
            json!({"dynamic_variable_placeholders": {}}),
        ),
    ] {
        if config.get(k).is_none() {
            config[k] = v;
        }
    }
    if config["api_schema"].get("path_params_schema").is_none() {
        config["api_schema"]["path_params_schema"] = json!({});
    }
    config["api_schema"]["query_params_schema"] = Value::Null;
    config
}

fn tool_response(id: &str, config: &Value, mocks: Option<&Value>) -> Value {
    json!({
        "id": id,
        "tool_config": tool_with_server_defaults(config),
        "access_info": {"is_creator": true, "creator_name": "Ops", "creator_email": "ops@example.com", "role": "admin"},
        "usage_stats": {"total_calls": 0, "avg_latency_secs": 0.0},
        "response_mocks": mocks.cloned().unwrap_or(json!([])),
    })
}

/// An agent as ElevenLabs keeps it: its defaults, with what it was sent merged in.
fn agent_defaults() -> Value {
    json!({
        "name": "",
        "tags": [],
        "conversation_config": {
            "asr": {"quality": "high", "provider": "elevenlabs", "user_input_audio_format": "pcm_16000"},
            "turn": {"turn_timeout": 7.0, "mode": "turn"},
            "tts": {"model_id": "eleven_flash_v2", "voice_id": "cjVigY5qzO86Huf0OWal", "stability": 0.5},
            "conversation": {"max_duration_seconds": 600, "client_events": ["audio", "interruption"]},
            "agent": {
                "first_message": "",
                "language": "en",
                "dynamic_variables": {"dynamic_variable_placeholders": {}},
                "prompt": {"prompt": "", "llm": "gemini-2.0-flash", "temperature": 0.0, "max_tokens": -1, "tool_ids": [], "built_in_tools": {}, "knowledge_base": []},
            },
        },
        "platform_settings": {
            "widget": {"variant": "full", "avatar": {"type": "orb"}},
            "evaluation": {"criteria": []},
            "data_collection": {},
            "call_limits": {"agent_concurrency_limit": -1, "daily_limit": 100000},
            "privacy": {"record_voice": true, "retention_days": -1},
        },
    })
}

/// What ElevenLabs adds inside the lists and maps the folder sets.
fn normalise_agent(agent: &mut Value) {
    if let Some(fields) = agent["platform_settings"]["data_collection"].as_object_mut() {
        for item in fields.values_mut() {
            if item.get("dynamic_variable").is_none() {
                item["dynamic_variable"] = json!("");
            }
        }
    }
    if let Some(criteria) = agent["platform_settings"]["evaluation"]["criteria"].as_array_mut() {
        for c in criteria {
            if c.get("use_knowledge_base").is_none() {
                c["use_knowledge_base"] = json!(false);
            }
        }
    }
}

fn agent_response(id: &str, agent: &Value, version: u64) -> Value {
    let mut out = agent.clone();
    out["agent_id"] = json!(id);
    out["metadata"] = json!({"created_at_unix_secs": 1_764_000_000, "updated_at_unix_secs": 1_764_000_000 + version});
    out["version_id"] = json!(format!("agtvrsn_{version:04}"));
    out["branch_id"] = json!("agtbrch_main");
    out["phone_numbers"] = json!([]);
    out["access_info"] = json!({"is_creator": true, "creator_name": "Ops", "creator_email": "ops@example.com", "role": "admin"});
    out
}

fn turn(role: &str, at: u32, message: &str) -> Value {
    json!({"role": role, "message": message, "time_in_call_secs": at, "tool_calls": [], "tool_results": []})
}

/// An agent turn that calls `tool` and gets `result` back.
fn tool_turn(at: u32, message: &str, tool: &str, params: &str, result: &str) -> Value {
    let request_id = format!("{tool}_{at}");
    json!({
        "role": "agent",
        "message": message,
        "time_in_call_secs": at,
        "tool_calls": [{"type": "webhook", "request_id": request_id, "tool_name": tool, "params_as_json": params, "tool_has_been_called": true}],
        "tool_results": [{"type": "webhook", "request_id": request_id, "tool_name": tool, "result_value": result, "is_error": false, "tool_has_been_called": true}],
    })
}

/// A call that breaks none of prompts/demo/assertions.toml: the opening discloses the AI and the
/// recording, availability is checked before a time is offered, the booking is made before the
/// caller is told they are booked, and the call is logged.
fn clean_transcript() -> Vec<Value> {
    vec![
        turn("agent", 0, FIRST_MESSAGE),
        turn("user", 6, "Hi, I'd like to book a boiler service next week. I'm in Islington, N7."),
        tool_turn(
            10,
            "Let me see what we have.",
            "check_availability",
            r#"{"service": "boiler_service"}"#,
            r#"{"ok": true, "say": "I have Monday the 7th at 9 a.m. or Tuesday the 8th at 10:30 a.m."}"#,
        ),
        turn("agent", 14, "I have Monday the 7th at 9 a.m. or Tuesday the 8th at 10:30 a.m. Which suits you?"),
        turn("user", 20, "Monday morning, please. It's Maria Lopez."),
        tool_turn(
            24,
            "Thanks Maria, one moment.",
            "create_booking",
            r#"{"start": "2026-12-07T09:00:00+00:00", "service": "boiler_service", "name": "Maria Lopez"}"#,
            r#"{"ok": true, "booking_id": "bk_demo_1"}"#,
        ),
        turn("agent", 28, "You are booked for Monday the 7th of December at 9 a.m. We will text you a confirmation."),
        turn("user", 33, "Lovely, thanks. Bye."),
        tool_turn(
            35,
            "Thanks for calling Northside Plumbing & Heating. Goodbye.",
            "log_call",
            r#"{"outcome": "booked"}"#,
            r#"{"ok": true}"#,
        ),
    ]
}

/// The same call, but the agent asks for a date of birth (rule asked-date-of-birth).
fn transcript_asking_date_of_birth() -> Vec<Value> {
    let mut turns = clean_transcript();
    turns.insert(
        5,
        turn("agent", 21, "Thanks Maria. Can I take your date of birth?"),
    );
    turns.insert(6, turn("user", 23, "Er, the fourth of May 1980."));
    turns
}

fn scenario_of(test_name: &str) -> String {
    test_name.rsplit('/').next().unwrap_or_default().to_string()
}

fn detail(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"detail": {"status": "error", "message": message}}))
}

/// One page of a cursor-paged list. This workspace's pages hold at most 3 items, whatever
/// page_size asks (a server may send fewer), so the client must follow `next_cursor`.
fn page(items: Vec<Value>, field: &str, request: &Request) -> ResponseTemplate {
    let query: BTreeMap<String, String> = request.url.query_pairs().into_owned().collect();
    let size = query
        .get("page_size")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100)
        .min(3);
    let from = query
        .get("cursor")
        .and_then(|c| c.strip_prefix("after-"))
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let end = (from + size).min(items.len());
    let has_more = end < items.len();
    ResponseTemplate::new(200).set_body_json(json!({
        field: items.get(from..end).unwrap_or_default(),
        "next_cursor": if has_more { json!(format!("after-{end}")) } else { Value::Null },
        "has_more": has_more,
    }))
}

#[derive(Clone)]
struct Api {
    workspace: Arc<Mutex<Workspace>>,
}

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request
            .headers
            .get("xi-api-key")
            .and_then(|v| v.to_str().ok())
            != Some(API_KEY)
        {
            return detail(401, "Invalid API key");
        }
        let body: Value = if request.body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&request.body) {
                Ok(v) => v,
                Err(_) => return detail(422, "body is not JSON"),
            }
        };
        let path = request.url.path().to_string();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut w = self.workspace.lock().unwrap();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["v1", "convai", "tools"]) => {
                let tools = w.tools.values().cloned().collect();
                page(tools, "tools", request)
            }
            ("POST", ["v1", "convai", "tools"]) => {
                if !body["tool_config"]["name"].is_string()
                    || !body["tool_config"]["type"].is_string()
                {
                    return detail(422, "tool_config (with type and name) is required");
                }
                let id = w.id("tool");
                let tool = tool_response(&id, &body["tool_config"], body.get("response_mocks"));
                w.tools.insert(id, tool.clone());
                ResponseTemplate::new(200).set_body_json(tool)
            }
            ("GET", ["v1", "convai", "tools", id]) => match w.tools.get(*id) {
                Some(tool) => ResponseTemplate::new(200).set_body_json(tool),
                None => detail(404, "tool not found"),
            },
            ("PATCH", ["v1", "convai", "tools", id]) => {
                if !w.tools.contains_key(*id) {
                    return detail(404, "tool not found");
                }
                if !body["tool_config"]["name"].is_string() {
                    return detail(422, "tool_config is required: the whole definition");
                }
                let tool = tool_response(id, &body["tool_config"], body.get("response_mocks"));
                w.tools.insert(id.to_string(), tool.clone());
                ResponseTemplate::new(200).set_body_json(tool)
            }
            ("POST", ["v1", "convai", "agents", "create"]) => {
                if !body["conversation_config"].is_object() {
                    return detail(422, "conversation_config is required");
                }
                let mut agent = agent_defaults();
                for field in ["name", "tags", "conversation_config", "platform_settings"] {
                    if let Some(v) = body.get(field) {
                        deep_merge(&mut agent[field], v);
                    }
                }
                normalise_agent(&mut agent);
                let id = w.id("agent");
                w.agents
                    .insert(id.clone(), json!({"agent": agent, "version": 1}));
                ResponseTemplate::new(200).set_body_json(json!({"agent_id": id}))
            }
            ("GET", ["v1", "convai", "agents", id]) => match w.agents.get(*id) {
                Some(a) => ResponseTemplate::new(200).set_body_json(agent_response(
                    id,
                    &a["agent"],
                    a["version"].as_u64().unwrap_or(1),
                )),
                None => detail(404, "agent not found"),
            },
            ("PATCH", ["v1", "convai", "agents", id]) => {
                let Some(stored) = w.agents.get_mut(*id) else {
                    return detail(404, "agent not found");
                };
                let mut agent = stored["agent"].clone();
                for field in ["name", "tags", "conversation_config", "platform_settings"] {
                    if let Some(v) = body.get(field) {
                        deep_merge(&mut agent[field], v);
                    }
                }
                normalise_agent(&mut agent);
                let version = stored["version"].as_u64().unwrap_or(1) + 1;
                *stored = json!({"agent": agent.clone(), "version": version});
                ResponseTemplate::new(200).set_body_json(agent_response(id, &agent, version))
            }
            ("GET", ["v1", "convai", "settings"]) => {
                ResponseTemplate::new(200).set_body_json(w.settings.clone())
            }
            ("PATCH", ["v1", "convai", "settings"]) => {
                deep_merge(&mut w.settings, &body);
                ResponseTemplate::new(200).set_body_json(w.settings.clone())
            }
            ("GET", ["v1", "convai", "agent-testing"]) => {
                let search = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "search")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let tests = w
                    .tests
                    .iter()
                    .filter(|(_, t)| t["name"].as_str().unwrap_or("").contains(&search))
                    .map(|(id, t)| {
                        json!({"id": id, "name": t["name"], "type": t["type"],
                               "created_at_unix_secs": 1_764_000_000, "last_updated_at_unix_secs": 1_764_000_000})
                    })
                    .collect();
                page(tests, "tests", request)
            }
            ("POST", ["v1", "convai", "agent-testing", "create"]) => {
                if let Err(why) = check_test(&body) {
                    return detail(422, &why);
                }
                let id = w.id("test");
                w.tests.insert(id.clone(), body);
                ResponseTemplate::new(200).set_body_json(json!({"id": id}))
            }
            ("PUT", ["v1", "convai", "agent-testing", id]) => {
                if !w.tests.contains_key(*id) {
                    return detail(404, "test not found");
                }
                if let Err(why) = check_test(&body) {
                    return detail(422, &why);
                }
                w.tests.insert(id.to_string(), body.clone());
                let mut out = body;
                out["id"] = json!(id);
                ResponseTemplate::new(200).set_body_json(out)
            }
            ("POST", ["v1", "convai", "agents", agent_id, "run-tests"]) => {
                if !w.agents.contains_key(*agent_id) {
                    return detail(404, "agent not found");
                }
                let o = &body["agent_config_override"];
                let complete =
                    o["conversation_config"].is_object() && o["platform_settings"].is_object();
                if !o.is_null() && !complete {
                    return detail(
                        422,
                        "agent_config_override needs conversation_config and platform_settings",
                    );
                }
                let Some(asked) = body["tests"].as_array().filter(|t| !t.is_empty()) else {
                    return detail(422, "tests is required");
                };
                let invocation = w.id("inv");
                let mut pending = Vec::new();
                let mut finished = Vec::new();
                for t in asked {
                    let test_id = t["test_id"].as_str().unwrap_or("").to_string();
                    let Some(test) = w.tests.get(&test_id) else {
                        return detail(404, &format!("test {test_id} not found"));
                    };
                    let name = test["name"].as_str().unwrap_or("").to_string();
                    let transcript = w
                        .script
                        .transcripts
                        .get(&scenario_of(&name))
                        .cloned()
                        .unwrap_or_else(clean_transcript);
                    let run_id = w.id("run");
                    let run = json!({
                        "test_run_id": run_id, "test_invocation_id": invocation, "agent_id": agent_id,
                        "test_id": test_id, "test_name": name, "status": "pending",
                        "metadata": {"workspace_id": "ws_fake", "test_name": name, "ran_by_user_email": "ops@example.com", "test_type": "simulation"},
                    });
                    pending.push(run.clone());
                    let mut done = run;
                    done["agent_responses"] = json!(transcript);
                    match w.script.unmet.get(&scenario_of(&name)) {
                        Some(why) => {
                            done["status"] = json!("failed");
                            done["condition_result"] = json!({"result": "failure", "rationale": {"messages": [why], "summary": why}});
                        }
                        None => {
                            done["status"] = json!("passed");
                            done["condition_result"] = json!({"result": "success", "rationale": {"messages": [], "summary": "All success conditions were met."}});
                        }
                    }
                    done["last_updated_at_unix"] = json!(1_764_000_100);
                    finished.push(done);
                }
                let head = json!({"id": invocation, "agent_id": agent_id, "created_at": 1_764_000_000, "repeat_count": 1, "bucketing_status": null});
                let mut done = head.clone();
                done["test_runs"] = json!(finished);
                w.invocations.insert(invocation, done);
                w.run_tests_bodies.push(body.clone());
                let mut answer = head;
                answer["test_runs"] = json!(pending);
                ResponseTemplate::new(200).set_body_json(answer)
            }
            ("GET", ["v1", "convai", "test-invocations", id]) => {
                w.invocation_polls += 1;
                match w.invocations.get(*id) {
                    Some(inv) => ResponseTemplate::new(200).set_body_json(inv),
                    None => detail(404, "invocation not found"),
                }
            }
            _ => detail(404, &format!("no route {} {path}", request.method)),
        }
    }
}

/// The agent-testing create/PUT body: a union on `type`, a name, and success conditions.
fn check_test(body: &Value) -> Result<(), String> {
    if !matches!(body["type"].as_str(), Some("llm" | "tool" | "simulation")) {
        return Err("type must be llm, tool or simulation".into());
    }
    if body["name"].as_str().is_none_or(str::is_empty) {
        return Err("name is required".into());
    }
    if body["type"] == "simulation"
        && body["success_conditions"]
            .as_array()
            .is_none_or(Vec::is_empty)
        && !body["success_condition"].is_string()
    {
        return Err("a simulation test needs success_conditions".into());
    }
    Ok(())
}

/// A request the CLI made.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    body: Value,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

struct ElevenLabs {
    server: MockServer,
    workspace: Arc<Mutex<Workspace>>,
}

impl ElevenLabs {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let workspace = Arc::new(Mutex::new(Workspace::new()));
        Mock::given(any())
            .respond_with(Api {
                workspace: workspace.clone(),
            })
            .mount(&server)
            .await;
        Self { server, workspace }
    }

    fn state(&self) -> MutexGuard<'_, Workspace> {
        self.workspace.lock().unwrap()
    }

    /// Scenario `scenario`'s simulated call goes like `turns` (the others stay clean).
    fn script(&self, scenario: &str, turns: Vec<Value>) {
        self.state()
            .script
            .transcripts
            .insert(scenario.to_string(), turns);
    }

    /// ElevenLabs' evaluator finds scenario `scenario`'s success conditions unmet.
    fn unmet(&self, scenario: &str, why: &str) {
        self.state()
            .script
            .unmet
            .insert(scenario.to_string(), why.to_string());
    }

    fn all_clean(&self) {
        let mut w = self.state();
        w.script.transcripts.clear();
        w.script.unmet.clear();
    }

    async fn calls(&self) -> Vec<Call> {
        self.server
            .received_requests()
            .await
            .expect("wiremock records requests")
            .iter()
            .map(|r| Call {
                method: r.method.to_string(),
                path: r.url.path().to_string(),
                body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            })
            .collect()
    }

    /// How many requests so far: `writes_since` counts from here.
    async fn mark(&self) -> usize {
        self.calls().await.len()
    }

    /// POST, PATCH, PUT and DELETE requests since `mark`.
    async fn writes_since(&self, mark: usize) -> Vec<Call> {
        self.calls()
            .await
            .into_iter()
            .skip(mark)
            .filter(|c| c.method != "GET")
            .collect()
    }

    /// Tool name → (id, tool) as the workspace holds them.
    fn tools(&self) -> BTreeMap<String, (String, Value)> {
        self.state()
            .tools
            .iter()
            .map(|(id, t)| {
                let name = t["tool_config"]["name"].as_str().unwrap().to_string();
                (name, (id.clone(), t.clone()))
            })
            .collect()
    }

    fn agent(&self, id: &str) -> Value {
        let w = self.state();
        let stored = w
            .agents
            .get(id)
            .unwrap_or_else(|| panic!("no agent {id} in the workspace"));
        stored["agent"].clone()
    }

    fn agent_ids(&self) -> Vec<String> {
        self.state().agents.keys().cloned().collect()
    }

    fn settings(&self) -> Value {
        self.state().settings.clone()
    }

    /// Changes what the workspace holds, as someone editing in ElevenLabs' dashboard would.
    fn edit_tool(&self, name: &str, edit: impl FnOnce(&mut Value)) {
        let mut w = self.state();
        let tool = w
            .tools
            .values_mut()
            .find(|t| t["tool_config"]["name"] == name)
            .unwrap_or_else(|| panic!("no tool {name}"));
        edit(&mut tool["tool_config"]);
    }

    fn edit_agent(&self, id: &str, edit: impl FnOnce(&mut Value)) {
        let mut w = self.state();
        let stored = w.agents.get_mut(id).unwrap();
        edit(&mut stored["agent"]);
    }
}

fn summary(calls: &[Call]) -> Vec<String> {
    calls.iter().map(Call::to_string).collect()
}

/// A passed gate on a fresh copy of the demo: the usual start of a push.
async fn gated_demo(elevenlabs: &ElevenLabs) -> Tenant {
    let tenant = Tenant::demo();
    let gate = tenant.gate(elevenlabs).await;
    assert_eq!(gate.code, Some(0), "the clean gate should pass: {gate}");
    tenant
}

// ---------------------------------------------------------------------------------------------
// --help

#[test]
fn help_describes_the_cli_and_each_command() {
    let tenant = Tenant::demo();
    let top = tenant.run(&["--help"]);
    assert_eq!(top.code, Some(0), "{top}");
    for command in [
        "validate",
        "render",
        "push",
        "gate",
        "sync-config",
        "backfill",
    ] {
        assert!(
            top.stdout.contains(command),
            "frontdesk --help does not list {command}: {top}"
        );
        let help = tenant.run(&[command, "--help"]);
        assert_eq!(help.code, Some(0), "frontdesk {command} --help: {help}");
        assert!(
            help.stdout.contains(&format!("frontdesk {command}")),
            "frontdesk {command} --help does not show its usage: {help}"
        );
    }
    let push = tenant.run(&["push", "--help"]);
    assert!(push.stdout.contains("--dry-run"), "{push}");
}

// ---------------------------------------------------------------------------------------------
// validate

#[test]
fn validate_accepts_the_untouched_demo() {
    let tenant = Tenant::demo();
    let ran = tenant.run(&["validate", "demo"]);
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(ran.stdout.contains("valid"), "{ran}");
    assert!(ran.stdout.contains("8 tools"), "{ran}");
    assert!(ran.stderr.trim().is_empty(), "{ran}");
}

/// One thing broken in a copy of the demo, and what validate must say about it.
struct Break {
    what: &'static str,
    /// (file, from, to): replaced once; the file must hold `from`.
    edits: &'static [(&'static str, &'static str, &'static str)],
    /// The file the problem is in, and the field `validate` names for it.
    file: &'static str,
    field: &'static str,
    /// Also in that problem's line.
    says: &'static str,
}

const BREAKS: &[Break] = &[
    Break {
        what: "a time zone that does not exist",
        edits: &[("business.toml", "time_zone = \"Europe/London\"", "time_zone = \"Europe/Londno\"")],
        file: "business.toml",
        field: "business.time_zone",
        says: "Europe/Londno",
    },
    Break {
        what: "a text template with an unknown placeholder",
        edits: &[("business.toml", "{business_name}. You're booked in", "{business_nam}. You're booked in")],
        file: "business.toml",
        field: "templates.booking_confirmed",
        says: "{business_nam}",
    },
    Break {
        what: "a retention below the 60 days timed messages need",
        edits: &[("business.toml", "retention_days = 365", "retention_days = 10")],
        file: "business.toml",
        field: "compliance.retention_days",
        says: "60",
    },
    Break {
        what: "an empty persona",
        edits: &[("agent.toml", PERSONA, "")],
        file: "agent.toml",
        field: "agent.persona",
        says: "must not be empty",
    },
    Break {
        what: "a first message without the AI disclosure",
        edits: &[(
            "agent.toml",
            "first_message = \"Hi, you're through to Northside Plumbing, I'm Ava, the virtual receptionist.",
            "first_message = \"Hi, you're through to Northside Plumbing.",
        )],
        file: "agent.toml",
        field: "agent.first_message",
        says: "AI disclosure",
    },
    Break {
        what: "no urgency field in data_collection, which post_call reads",
        edits: &[(
            "agent.toml",
            "[[data_collection]]\nid = \"urgency\"\ntype = \"string\"\ndescription = \"How urgent the job is.\"\nenum = [\"low\", \"normal\", \"urgent\", \"emergency\"]\n",
            "",
        )],
        file: "agent.toml",
        field: "data_collection",
        says: "post_call.urgency_field",
    },
    Break {
        what: "an unknown field in agent.toml",
        edits: &[("agent.toml", "llm = \"gemini-2.5-flash\"", "llm = \"gemini-2.5-flash\"\nvoice = \"Ava\"")],
        file: "agent.toml",
        field: "agent.voice",
        says: "unknown field",
    },
    Break {
        what: "a prompt with an unknown ${placeholder}",
        edits: &[("agent.md", "## Never\n", "## Never\n- Never mention ${unknown}.\n")],
        file: "agent.md",
        field: "-",
        says: "${unknown}",
    },
    Break {
        what: "a tool sent with GET (no body)",
        edits: &[("tools/log_call.json", "\"method\": \"POST\"", "\"method\": \"GET\"")],
        file: "tools/log_call.json",
        field: "tool_config.api_schema.method",
        says: "POST",
    },
    Break {
        what: "a tool whose URL is not its route",
        edits: &[(
            "tools/create_booking.json",
            "\"${TOOLS_BASE_URL}/create_booking\"",
            "\"${TOOLS_BASE_URL}/book\"",
        )],
        file: "tools/create_booking.json",
        field: "tool_config.api_schema.url",
        says: "${TOOLS_BASE_URL}/create_booking",
    },
    Break {
        what: "a tool file that is not JSON",
        edits: &[("tools/upsert_contact.json", "\"tool_config\": {", "\"tool_config\": {,")],
        file: "tools/upsert_contact.json",
        field: "-",
        says: "not JSON",
    },
    Break {
        what: "a scenario mocking a tool that does not exist",
        edits: &[(
            "scenarios.toml",
            "capture_lead = '{\"ok\": true, \"lead_id\": \"ld_demo_1\", \"hot\": false}'",
            "capture_lead = '{\"ok\": true, \"lead_id\": \"ld_demo_1\", \"hot\": false}'\nsend_invoice = '{\"ok\": true}'",
        )],
        file: "scenarios.toml",
        field: "scenario[0].mocks.send_invoice",
        says: "no such tool",
    },
    Break {
        what: "a scenario allowing a rule that does not exist",
        edits: &[("scenarios.toml", "allow_rules = [\"caller-unhappy\"]", "allow_rules = [\"caller-upset\"]")],
        file: "scenarios.toml",
        field: "scenario[1].allow_rules",
        says: "caller-upset",
    },
    Break {
        what: "a quality rule with a severity that does not exist",
        edits: &[(
            "assertions.toml",
            "severity = \"critical\"\ndescription = \"A plumber never needs",
            "severity = \"catastrophic\"\ndescription = \"A plumber never needs",
        )],
        file: "assertions.toml",
        field: "rules[1] (asked-date-of-birth).severity",
        says: "catastrophic",
    },
    Break {
        what: "conversation-init.json that is not JSON",
        edits: &[("conversation-init.json", "\"dynamic_variable_placeholders\": {", "\"dynamic_variable_placeholders\": {,")],
        file: "conversation-init.json",
        field: "-",
        says: "not JSON",
    },
    Break {
        what: "a conversation-initiation webhook without a URL",
        edits: &[("conversation-init.json", "\"url\": \"${WEBHOOKS_BASE_URL}/conversation-init\",", "")],
        file: "conversation-init.json",
        field: "workspace_settings.conversation_initiation_client_data_webhook.url",
        says: "required",
    },
];

/// The problem lines of a failed validate (`  <file>: <field>: <message>`).
fn problem_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("  /"))
        .map(str::trim)
        .collect()
}

/// Whether a problem line is about `field` of `file` (a TOML field may say its line:
/// `agent.voice (line 11)`).
fn names(line: &str, file: &Path, field: &str) -> bool {
    line.strip_prefix(&format!("{}: {field}", file.display()))
        .is_some_and(|rest| rest.starts_with(": ") || rest.starts_with(" (line "))
}

#[test]
fn validate_names_the_file_and_field_of_each_broken_config() {
    assert!(BREAKS.len() >= 12);
    let mut wrong = Vec::new();
    for b in BREAKS {
        let tenant = Tenant::demo();
        for (file, from, to) in b.edits {
            tenant.replace(file, from, to);
        }
        let ran = tenant.run(&["validate", "demo"]);
        let file = tenant.path(b.file).display().to_string();
        let named = format!("{file}: {}", b.field);
        let problems = problem_lines(&ran.stderr);
        let line = problems
            .iter()
            .find(|l| names(l, &tenant.path(b.file), b.field));
        let verdict = if ran.code != Some(1) {
            Some(format!("exit {:?}, not 1", ran.code))
        } else if line.is_none() {
            Some(format!("no problem line starting {named:?}"))
        } else if !line.unwrap().contains(b.says) {
            Some(format!("the problem does not say {:?}", b.says))
        } else if let Some(other) = problems
            .iter()
            .find(|l| !l.starts_with(&format!("{file}: ")))
        {
            // One broken file does not make the others look wrong.
            Some(format!("a problem in another file: {other}"))
        } else if (1..problems.len()).any(|i| problems[i..].contains(&problems[i - 1])) {
            Some("a problem listed twice".to_string())
        } else {
            None
        };
        if let Some(why) = verdict {
            wrong.push(format!("{}: {why}\n{ran}", b.what));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn validate_refuses_a_folder_whose_name_is_not_a_tenant_id() {
    let tenant = Tenant::demo_named("north side.v2");
    let ran = tenant.run(&["validate", "north side.v2"]);
    assert_eq!(ran.code, Some(1), "{ran}");
    let named = format!("{}: -: ", tenant.dir.display());
    let line = problem_lines(&ran.stderr)
        .into_iter()
        .find(|l| l.starts_with(&named))
        .unwrap_or_else(|| panic!("no problem for the folder's name: {ran}"));
    assert!(line.contains("TenantId"), "{line}");
    assert!(ran.stderr.contains("1 problem\n"), "{ran}");
}

#[test]
fn validate_lists_every_problem_of_a_folder_in_one_run() {
    let tenant = Tenant::demo();
    let picked = [
        "a time zone",
        "an empty persona",
        "GET",
        "mocking a tool",
        "severity",
        "without a URL",
    ];
    let breaks: Vec<&Break> = BREAKS
        .iter()
        .filter(|b| picked.iter().any(|p| b.what.contains(p)))
        .collect();
    assert_eq!(breaks.len(), picked.len());
    for b in &breaks {
        for (file, from, to) in b.edits {
            tenant.replace(file, from, to);
        }
    }
    let ran = tenant.run(&["validate", "demo"]);
    assert_eq!(ran.code, Some(1), "{ran}");
    assert!(
        ran.stderr.contains(&format!(
            "{}: {} problems",
            tenant.dir.display(),
            breaks.len()
        )),
        "{ran}"
    );
    let problems = problem_lines(&ran.stderr);
    assert_eq!(problems.len(), breaks.len(), "{ran}");
    for b in &breaks {
        let named = format!("{}: {}", tenant.path(b.file).display(), b.field);
        assert!(
            problems
                .iter()
                .any(|l| names(l, &tenant.path(b.file), b.field) && l.contains(b.says)),
            "{}: not listed as {named:?}\n{ran}",
            b.what
        );
    }
}

#[test]
fn validate_refuses_a_deploy_environment_whose_retention_differs_from_the_folders() {
    let tenant = Tenant::demo();
    let samconfig = tenant.root.join("samconfig.toml");
    let write = |days: u32| {
        std::fs::write(
            &samconfig,
            format!(
                "version = 0.1\n\n[demo.deploy.parameters]\nstack_name = \"frontdesk-demo\"\nregion = \"eu-west-2\"\nparameter_overrides = [\n  \"TenantId=demo\",\n  \"RecordingRetentionDays={days}\",\n]\n"
            ),
        )
        .unwrap();
    };
    write(90);
    let ran = tenant.run(&["validate", "demo"]);
    assert_eq!(ran.code, Some(1), "{ran}");
    let line = ran
        .stderr
        .lines()
        .find(|l| {
            l.contains(&format!(
                "{}: demo.deploy.parameters.parameter_overrides: ",
                samconfig.display()
            ))
        })
        .unwrap_or_else(|| panic!("samconfig.toml is not named: {ran}"));
    assert!(line.contains("RecordingRetentionDays is 90"), "{line}");
    assert!(line.contains("compliance.retention_days is 365"), "{line}");

    write(365);
    let ran = tenant.run(&["validate", "demo"]);
    assert_eq!(ran.code, Some(0), "the same retention is fine: {ran}");
}

// ---------------------------------------------------------------------------------------------
// render

#[test]
fn render_of_the_demo_matches_the_reviewed_snapshot() {
    let tenant = Tenant::demo();
    let ran = tenant.run(&["render", "demo", "--api-url", API_URL]);
    assert_eq!(ran.code, Some(0), "{ran}");
    let rendered: Value = serde_json::from_str(&ran.stdout).expect("render prints JSON");

    // What the review of the snapshot checked, checked again on every run.
    let tools = rendered["tools"].as_array().unwrap();
    assert_eq!(rendered["tool_names"], json!(DEMO_TOOLS));
    assert_eq!(tools.len(), DEMO_TOOLS.len());
    for (tool, name) in tools.iter().zip(DEMO_TOOLS) {
        let c = &tool["tool_config"];
        assert_eq!(c["name"], name);
        assert_eq!(c["api_schema"]["url"], format!("{API_URL}/tools/{name}"));
        assert_eq!(c["api_schema"]["method"], "POST");
    }
    assert_eq!(
        rendered["conversation_initiation_webhook"]["url"],
        format!("{API_URL}/webhooks/elevenlabs/conversation-init")
    );
    let agent = &rendered["agent"]["conversation_config"]["agent"];
    let prompt = agent["prompt"]["prompt"].as_str().unwrap();
    assert!(!prompt.contains("${"), "unfilled placeholders: {prompt}");
    assert!(
        prompt.starts_with("# Northside Plumbing & Heating: receptionist prompt"),
        "{prompt}"
    );
    assert!(prompt.contains(PERSONA), "{prompt}");
    assert!(
        prompt.contains("- Monday: 08:00-12:30, 13:30-18:00"),
        "{prompt}"
    );
    assert!(
        prompt.contains("{{caller_first_name}}"),
        "ElevenLabs' own variables stay"
    );
    assert_eq!(agent["first_message"], FIRST_MESSAGE);
    assert_eq!(agent["prompt"]["timezone"], "Europe/London");
    let fields = rendered["agent"]["platform_settings"]["data_collection"]
        .as_object()
        .unwrap();
    let wanted = tenant.profile().data_collection;
    assert_eq!(fields.len(), wanted.len());
    for f in &wanted {
        assert_eq!(
            fields[&f.id]["description"],
            f.description.as_str(),
            "data_collection {}",
            f.id
        );
        assert_eq!(
            fields[&f.id]["type"],
            f.kind.as_str(),
            "data_collection {}",
            f.id
        );
    }
    assert_eq!(
        fields["urgency"]["enum"],
        json!(["low", "normal", "urgent", "emergency"])
    );
    let criteria = rendered["agent"]["platform_settings"]["evaluation"]["criteria"]
        .as_array()
        .unwrap();
    let ids: Vec<&str> = criteria.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["booked_or_routed", "disclosed_ai_and_recording"]);
    assert!(criteria
        .iter()
        .all(|c| c["type"] == "prompt" && c["conversation_goal_prompt"].is_string()));
    let version = rendered["version"].as_str().unwrap();
    assert!(
        version.len() == 16 && version.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );

    let snapshot = workspace().join(SNAPSHOT);
    if std::env::var("FRONTDESK_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
        std::fs::write(&snapshot, &ran.stdout).unwrap();
        return;
    }
    let reviewed = std::fs::read_to_string(&snapshot).unwrap_or_else(|e| {
        panic!("{SNAPSHOT}: {e}; write it with FRONTDESK_UPDATE_SNAPSHOTS=1 and review it")
    });
    if reviewed != ran.stdout {
        panic!(
            "frontdesk render demo no longer matches {SNAPSHOT}:\n{}\nIf the change is intended, run \
             FRONTDESK_UPDATE_SNAPSHOTS=1 cargo test -p frontdesk-blackbox --all-features --test operator_cli render \
             and review `git diff {SNAPSHOT}`.",
            first_difference(&reviewed, &ran.stdout)
        );
    }
}

/// The first line where two texts differ, with a little context.
fn first_difference(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let at = (0..e.len().max(a.len()))
        .find(|&i| e.get(i) != a.get(i))
        .unwrap_or(0);
    let mut out = format!("first difference at line {}:\n", at + 1);
    for i in at.saturating_sub(2)..at {
        out.push_str(&format!("  {}\n", e.get(i).unwrap_or(&"")));
    }
    out.push_str(&format!(
        "- {}\n+ {}",
        e.get(at).unwrap_or(&"<end>"),
        a.get(at).unwrap_or(&"<end>")
    ));
    out
}

// ---------------------------------------------------------------------------------------------
// gate

#[tokio::test]
async fn gate_fails_when_a_scenario_transcript_breaks_a_rule_and_push_then_refuses() {
    let elevenlabs = ElevenLabs::start().await;
    elevenlabs.script("books-a-boiler-service", transcript_asking_date_of_birth());
    let tenant = Tenant::demo();
    let version = tenant.render()["version"].as_str().unwrap().to_string();

    let gate = tenant.gate(&elevenlabs).await;
    assert_eq!(gate.code, Some(3), "a broken rule fails the gate: {gate}");
    assert!(
        gate.stdout.contains("FAIL books-a-boiler-service"),
        "{gate}"
    );
    assert!(gate.stdout.contains("breaks asked-date-of-birth"), "{gate}");
    assert!(
        gate.stderr
            .contains(&format!("the gate failed for version {version}")),
        "{gate}"
    );
    assert!(
        elevenlabs.state().invocation_polls >= 1,
        "the gate polled the pending runs"
    );

    let record = tenant.gate_record();
    assert_eq!(record["passed"], false, "{record:#}");
    assert_eq!(record["version"], version.as_str());
    let scenarios = record["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 3, "{record:#}");
    for s in scenarios {
        let broke = s["id"] == "books-a-boiler-service";
        assert_eq!(s["passed"], !broke, "{s:#}");
        assert_eq!(
            s["status"], "passed",
            "ElevenLabs was happy with every run: {s:#}"
        );
        let rules = s["broken_rules"].as_array().cloned().unwrap_or_default();
        if broke {
            assert_eq!(rules.len(), 1, "{s:#}");
            let rule = rules[0].as_str().unwrap();
            assert!(rule.starts_with("asked-date-of-birth at turn "), "{rule}");
            assert!(
                rule.to_lowercase().contains("date of birth"),
                "the excerpt: {rule}"
            );
        } else {
            assert!(rules.is_empty(), "a clean transcript breaks no rule: {s:#}");
        }
    }

    let mark = elevenlabs.mark().await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(3), "{push}");
    assert!(push.stderr.contains("the gate has not passed"), "{push}");
    assert!(
        push.stderr.contains("frontdesk gate demo"),
        "it says what to run: {push}"
    );
    assert_eq!(
        summary(&elevenlabs.writes_since(mark).await),
        Vec::<String>::new()
    );

    // The transcript is fixed: the same version now passes, and push goes ahead.
    elevenlabs.all_clean();
    let gate = tenant.gate(&elevenlabs).await;
    assert_eq!(gate.code, Some(0), "{gate}");
    assert!(
        gate.stdout
            .contains(&format!("gate passed for version {version}")),
        "{gate}"
    );
    let record = tenant.gate_record();
    assert_eq!(record["passed"], true, "{record:#}");
    assert_eq!(record["version"], version.as_str());
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(0), "{push}");
    let agent = elevenlabs.agent(&tenant.agent_id());
    assert_eq!(
        agent["conversation_config"]["agent"]["prompt"]["prompt"],
        tenant.render()["agent"]["conversation_config"]["agent"]["prompt"]["prompt"]
    );
}

#[tokio::test]
async fn gate_fails_when_elevenlabs_finds_a_success_condition_unmet() {
    let elevenlabs = ElevenLabs::start().await;
    let why = "The agent offered a time before calling check_availability.";
    elevenlabs.unmet("books-a-boiler-service", why);
    let tenant = Tenant::demo();

    let gate = tenant.gate(&elevenlabs).await;
    assert_eq!(gate.code, Some(3), "{gate}");
    assert!(
        gate.stdout
            .contains("FAIL books-a-boiler-service: ElevenLabs says failed"),
        "{gate}"
    );
    assert!(
        gate.stdout.contains(why),
        "the evaluator's reason is shown: {gate}"
    );
    let record = tenant.gate_record();
    assert_eq!(record["passed"], false);
    let boiler = record["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "books-a-boiler-service")
        .unwrap();
    assert_eq!(boiler["status"], "failed");
    assert_eq!(boiler["rationale"], why);
    assert!(
        boiler.get("broken_rules").is_none(),
        "the transcript itself was clean: {boiler:#}"
    );

    let mark = elevenlabs.mark().await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(3), "{push}");
    assert_eq!(
        summary(&elevenlabs.writes_since(mark).await),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn gate_runs_each_scenario_as_an_agent_test_of_the_folders_version_with_every_tool_mocked() {
    let elevenlabs = ElevenLabs::start().await;
    let tenant = gated_demo(&elevenlabs).await;
    let rendered = tenant.render();
    let tools = elevenlabs.tools();
    let tool_ids: Vec<&str> = tools.values().map(|(id, _)| id.as_str()).collect();

    let (tests, runs) = {
        let w = elevenlabs.state();
        (w.tests.clone(), w.run_tests_bodies.clone())
    };
    let names: Vec<&str> = tests
        .values()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "frontdesk/demo/asks-for-a-price",
            "frontdesk/demo/books-a-boiler-service",
            "frontdesk/demo/leak-out-of-hours"
        ]
        .into()
    );
    let boiler = tests
        .values()
        .find(|t| t["name"] == "frontdesk/demo/books-a-boiler-service")
        .unwrap();
    assert_eq!(boiler["type"], "simulation");
    assert_eq!(boiler["simulation_max_turns"], 14);
    let mocked: Vec<&str> = boiler["tool_mock_config"]["mocked_tool_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        mocked
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        tool_ids.iter().copied().collect(),
        "every tool is mocked: a gate never calls the live stack"
    );
    let check_availability = &tools["check_availability"].0;
    let mock = &boiler["tool_mock_overrides"][check_availability.as_str()][0]["mock_result"];
    assert!(
        mock.as_str()
            .unwrap()
            .contains("Monday the 7th of December at 9 a.m."),
        "{boiler:#}"
    );

    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["tests"].as_array().unwrap().len(), 3);
    let config = &run["agent_config_override"]["conversation_config"]["agent"]["prompt"];
    assert_eq!(
        config["prompt"], rendered["agent"]["conversation_config"]["agent"]["prompt"]["prompt"],
        "the tests run the folder's prompt, not the live agent's"
    );
    assert_eq!(
        config["tool_ids"].as_array().unwrap().len(),
        DEMO_TOOLS.len()
    );

    // A second gate updates the same tests (PUT) instead of making new ones.
    let mark = elevenlabs.mark().await;
    let gate = tenant.gate(&elevenlabs).await;
    assert_eq!(gate.code, Some(0), "{gate}");
    let writes = summary(&elevenlabs.writes_since(mark).await);
    assert_eq!(
        writes
            .iter()
            .filter(|w| w.starts_with("PUT /v1/convai/agent-testing/"))
            .count(),
        3,
        "{writes:?}"
    );
    assert!(
        !writes
            .iter()
            .any(|w| w.starts_with("POST /v1/convai/agent-testing/create")),
        "{writes:?}"
    );
    assert!(
        !writes
            .iter()
            .any(|w| w.contains("/v1/convai/tools") || w.contains("agents/create")),
        "{writes:?}"
    );
    assert_eq!(elevenlabs.state().tests.len(), 3);
}

#[tokio::test]
async fn a_gate_passed_for_one_version_does_not_let_a_changed_prompt_through() {
    let elevenlabs = ElevenLabs::start().await;
    let tenant = gated_demo(&elevenlabs).await;
    let gated = tenant.gate_record()["version"]
        .as_str()
        .unwrap()
        .to_string();

    tenant.replace(
        "agent.toml",
        "warm, brief and practical",
        "brisk and to the point",
    );
    let changed = tenant.render()["version"].as_str().unwrap().to_string();
    assert_ne!(gated, changed, "the persona is part of the version");

    let mark = elevenlabs.mark().await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(3), "{push}");
    assert!(
        push.stderr.contains(&format!(
            "the gate passed version {gated}, not this one ({changed})"
        )),
        "{push}"
    );
    assert_eq!(
        summary(&elevenlabs.writes_since(mark).await),
        Vec::<String>::new()
    );
    let agent = elevenlabs.agent(&tenant.agent_id());
    let live = agent["conversation_config"]["agent"]["prompt"]["prompt"]
        .as_str()
        .unwrap();
    assert!(
        !live.contains("brisk and to the point"),
        "the ungated prompt is not live"
    );
}

// ---------------------------------------------------------------------------------------------
// push

#[tokio::test]
async fn push_creates_the_tools_the_agent_and_the_webhook_then_a_second_push_changes_nothing() {
    // The version passed its gate in one workspace; it is pushed to one with nothing in it.
    let gated_in = ElevenLabs::start().await;
    let tenant = gated_demo(&gated_in).await;
    tenant.replace(
        "agent.toml",
        &format!("agent_id = \"{}\"", tenant.agent_id()),
        "agent_id = \"\"",
    );
    let rendered = tenant.render();
    assert_eq!(
        rendered["version"],
        tenant.gate_record()["version"],
        "agent_id is not part of the version"
    );

    let elevenlabs = ElevenLabs::start().await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(0), "{push}");
    let writes = elevenlabs.writes_since(0).await;
    let mut expected = vec!["POST /v1/convai/tools".to_string(); 8];
    expected.push("POST /v1/convai/agents/create".into());
    expected.push("PATCH /v1/convai/settings".into());
    assert_eq!(summary(&writes), expected);

    // The tools, as rendered (ElevenLabs' additions aside).
    let tools = elevenlabs.tools();
    assert_eq!(
        tools.keys().map(String::as_str).collect::<Vec<_>>(),
        DEMO_TOOLS
    );
    for (sent, want) in writes
        .iter()
        .take(8)
        .zip(rendered["tools"].as_array().unwrap())
    {
        assert_eq!(&sent.body, want, "a tool is sent as rendered");
    }

    // The agent: its id in agent.toml, the rendered prompt, the 8 tools' ids.
    let [agent_id] = elevenlabs.agent_ids().try_into().expect("one agent");
    assert_eq!(tenant.agent_id(), agent_id);
    assert!(frontdesk_blackbox::frontdesk::ids::AgentId::parse(&agent_id).is_ok());
    assert!(
        push.stdout
            .contains(&format!("agent: created ({agent_id})")),
        "{push}"
    );
    let agent = elevenlabs.agent(&agent_id);
    let prompt = &agent["conversation_config"]["agent"]["prompt"];
    let ids: Vec<String> = DEMO_TOOLS.iter().map(|n| tools[*n].0.clone()).collect();
    assert_eq!(prompt["tool_ids"], json!(ids));
    assert_eq!(
        prompt["prompt"],
        rendered["agent"]["conversation_config"]["agent"]["prompt"]["prompt"]
    );
    assert_eq!(
        agent["conversation_config"]["agent"]["first_message"],
        FIRST_MESSAGE
    );
    assert_eq!(agent["name"], rendered["agent"]["name"]);
    let fields = agent["platform_settings"]["data_collection"]
        .as_object()
        .unwrap();
    assert_eq!(fields.len(), 7);

    // The workspace's webhook.
    let webhook = &elevenlabs.settings()["conversation_initiation_client_data_webhook"];
    assert_eq!(
        webhook["url"],
        format!("{API_URL}/webhooks/elevenlabs/conversation-init")
    );
    assert_eq!(webhook, &rendered["conversation_initiation_webhook"]);

    // Again: everything holds already (whatever ElevenLabs added), so nothing is written.
    let mark = elevenlabs.mark().await;
    let again = tenant.push(&elevenlabs).await;
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(
        summary(&elevenlabs.writes_since(mark).await),
        Vec::<String>::new(),
        "{again}"
    );
    let unchanged = again
        .stdout
        .lines()
        .filter(|l| l.contains("unchanged"))
        .count();
    assert_eq!(
        unchanged,
        8 + 1 + 1,
        "every tool, the agent and the webhook: {again}"
    );
    assert!(
        again
            .stdout
            .contains(&format!("agent {agent_id}: unchanged")),
        "{again}"
    );
}

#[tokio::test]
async fn push_after_the_gate_in_the_same_workspace_sets_only_what_the_gate_left() {
    let elevenlabs = ElevenLabs::start().await;
    let tenant = gated_demo(&elevenlabs).await;
    let agent_id = tenant.agent_id();
    assert!(!agent_id.is_empty(), "the gate made the agent it tests");

    let mark = elevenlabs.mark().await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(0), "{push}");
    assert_eq!(
        summary(&elevenlabs.writes_since(mark).await),
        ["PATCH /v1/convai/settings"],
        "{push}"
    );
    let tools = elevenlabs.tools();
    let ids: Vec<String> = DEMO_TOOLS.iter().map(|n| tools[*n].0.clone()).collect();
    let agent = elevenlabs.agent(&agent_id);
    assert_eq!(
        agent["conversation_config"]["agent"]["prompt"]["tool_ids"],
        json!(ids)
    );

    let mark = elevenlabs.mark().await;
    let again = tenant.push(&elevenlabs).await;
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(
        summary(&elevenlabs.writes_since(mark).await),
        Vec::<String>::new(),
        "{again}"
    );
}

#[tokio::test]
async fn push_dry_run_after_a_prompt_change_prints_a_diff_and_writes_nothing() {
    let elevenlabs = ElevenLabs::start().await;
    let tenant = gated_demo(&elevenlabs).await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(0), "{push}");
    let agent_id = tenant.agent_id();
    let before = elevenlabs.agent(&agent_id);

    tenant.replace(
        "agent.toml",
        "warm, brief and practical",
        "brisk and to the point",
    );
    let mark = elevenlabs.mark().await;
    let dry = tenant
        .run_with(
            &elevenlabs,
            &["push", "demo", "--api-url", API_URL, "--dry-run"],
        )
        .await;
    assert_eq!(dry.code, Some(0), "{dry}");
    assert_eq!(
        summary(&elevenlabs.writes_since(mark).await),
        Vec::<String>::new(),
        "{dry}"
    );
    assert!(
        dry.stdout.contains("note: a real push would be refused"),
        "the new version is not gated: {dry}"
    );
    assert!(
        dry.stdout
            .contains(&format!("agent {agent_id}: would be updated")),
        "{dry}"
    );
    let removed = dry
        .stdout
        .lines()
        .find(|l| l.starts_with('-') && l.contains("warm, brief and practical"));
    let added = dry
        .stdout
        .lines()
        .find(|l| l.starts_with('+') && l.contains("brisk and to the point"));
    assert!(
        removed.is_some() && added.is_some(),
        "the diff shows the prompt's change: {dry}"
    );
    assert!(
        dry.stdout.contains("(ElevenLabs now)") && dry.stdout.contains("(from the folder)"),
        "{dry}"
    );
    assert_eq!(
        dry.stdout
            .lines()
            .filter(|l| l.starts_with("tool ") && l.contains("unchanged"))
            .count(),
        8,
        "the tools did not change: {dry}"
    );
    assert_eq!(
        elevenlabs.agent(&agent_id),
        before,
        "nothing was changed in ElevenLabs"
    );
}

#[tokio::test]
async fn push_puts_back_a_tool_edited_in_elevenlabs() {
    let elevenlabs = ElevenLabs::start().await;
    let tenant = gated_demo(&elevenlabs).await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(0), "{push}");

    elevenlabs.edit_tool("check_availability", |c| {
        c["description"] = json!("Edited in the dashboard");
        c["api_schema"]["url"] = json!("https://elsewhere.example.com/availability");
    });
    let (id, _) = elevenlabs.tools()["check_availability"].clone();
    let mark = elevenlabs.mark().await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(0), "{push}");
    let writes = elevenlabs.writes_since(mark).await;
    assert_eq!(
        summary(&writes),
        [format!("PATCH /v1/convai/tools/{id}")],
        "{push}"
    );
    let rendered = tenant.render();
    let want = rendered["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tool_config"]["name"] == "check_availability")
        .unwrap();
    assert_eq!(
        &writes[0].body, want,
        "the whole definition is sent: the tools API replaces"
    );
    assert!(
        push.stdout
            .contains(&format!("tool check_availability: updated ({id})")),
        "{push}"
    );
    assert!(
        push.stdout
            .contains("https://elsewhere.example.com/availability"),
        "the diff shows what was there: {push}"
    );
    let (_, now) = elevenlabs.tools()["check_availability"].clone();
    assert_eq!(
        now["tool_config"]["api_schema"]["url"],
        format!("{API_URL}/tools/check_availability")
    );
    assert_ne!(now["tool_config"]["description"], "Edited in the dashboard");

    let mark = elevenlabs.mark().await;
    let again = tenant.push(&elevenlabs).await;
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(
        summary(&elevenlabs.writes_since(mark).await),
        Vec::<String>::new(),
        "{again}"
    );
}

#[tokio::test]
async fn push_puts_back_an_agent_prompt_edited_in_elevenlabs_and_keeps_the_settings_it_does_not_own(
) {
    let elevenlabs = ElevenLabs::start().await;
    let tenant = gated_demo(&elevenlabs).await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(0), "{push}");
    let agent_id = tenant.agent_id();
    let want = tenant.render();

    // Someone edits the prompt and picks a voice in the dashboard.
    elevenlabs.edit_agent(&agent_id, |a| {
        a["conversation_config"]["agent"]["prompt"]["prompt"] = json!("You are a pirate.");
        a["conversation_config"]["tts"]["voice_id"] = json!("voice_chosen_in_dashboard");
    });
    let mark = elevenlabs.mark().await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(0), "{push}");
    let writes = elevenlabs.writes_since(mark).await;
    assert_eq!(
        summary(&writes),
        [format!("PATCH /v1/convai/agents/{agent_id}")],
        "{push}"
    );
    assert_eq!(
        writes[0].body["version_description"],
        format!("frontdesk {}", want["version"].as_str().unwrap())
    );
    let agent = elevenlabs.agent(&agent_id);
    assert_eq!(
        agent["conversation_config"]["agent"]["prompt"]["prompt"],
        want["agent"]["conversation_config"]["agent"]["prompt"]["prompt"]
    );
    assert_eq!(
        agent["conversation_config"]["tts"]["voice_id"], "voice_chosen_in_dashboard",
        "the voice is not the folder's: it is kept"
    );
    assert_eq!(
        agent["platform_settings"]["widget"]["variant"], "full",
        "ElevenLabs' own settings are kept"
    );
}

// ---------------------------------------------------------------------------------------------
// The README's provisioning walkthrough, as written

/// The commands of README.md's walkthrough block (after its `<!-- walkthrough` marker).
fn walkthrough_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let block = readme
        .split("<!-- walkthrough")
        .nth(1)
        .expect("README.md has the walkthrough block");
    let body = block
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the walkthrough block is a sh code block");
    body.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `make <args>` in the project, as the engineer types it (with the environment given).
fn make(args: &[String], env: &[(&str, String)]) -> Ran {
    let output = std::process::Command::new("make")
        .current_dir(workspace())
        .args(["--no-print-directory"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("make runs");
    ran(output)
}

#[tokio::test]
async fn the_readmes_provisioning_walkthrough_works_as_written_against_the_fakes() {
    let commands = walkthrough_commands();
    assert_eq!(
        commands,
        [
            "make deploy TENANT=acme",
            "make gate TENANT=acme",
            "make push TENANT=acme"
        ],
        "at most three commands after the folder is filled in"
    );
    // Step 1: `cp -r prompts/_template prompts/acme`, filled in (here: the template's example
    // business as it is, and step 4's workspace secret id).
    let root = std::env::temp_dir().join(format!(
        "frontdesk-walkthrough-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::Relaxed)
    ));
    let acme = root.join("prompts/acme");
    copy_dir(&workspace().join("prompts/_template"), &acme);
    let agent = std::fs::read_to_string(acme.join("agent.toml")).unwrap();
    std::fs::write(
        acme.join("agent.toml"),
        agent.replacen(
            "tool_secret_id = \"\"",
            &format!("tool_secret_id = \"{TOOL_SECRET_ID}\""),
            1,
        ),
    )
    .unwrap();
    let tenant = |command: &str| -> Vec<String> {
        command
            .split_whitespace()
            .skip(1)
            .map(|w| w.replace("TENANT=acme", &format!("TENANT={}", acme.display())))
            .collect()
    };

    // The stack (moto) and ElevenLabs (the fake), where the engineer's would be AWS and the API.
    let app = frontdesk_blackbox::spawn_app().await;
    let r = &app.resources;
    let elevenlabs = ElevenLabs::start().await;
    let env: Vec<(&str, String)> = vec![
        (
            "AWS_ENDPOINT_URL",
            app.sdk.endpoint_url().unwrap().to_string(),
        ),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "eu-west-2".into()),
        ("FRONTDESK_API_URL", API_URL.into()),
        ("FRONTDESK_TABLE", r.table.clone()),
        ("ELEVENLABS_API_KEY", API_KEY.into()),
        ("ELEVENLABS_API_BASE_URL", elevenlabs.server.uri()),
        ("FRONTDESK_GATE_POLL_MS", "20".into()),
    ];

    // 1. make deploy: dry (no AWS here): what it would run, then its own steps that need no
    // AWS account, against moto.
    let mut deploy = vec!["-n".to_string()];
    deploy.extend(tenant(&commands[0]));
    let plan = make(&deploy, &env);
    assert_eq!(plan.code, Some(0), "{plan}");
    for step in [
        "frontdesk validate",
        "sam build --config-env acme",
        "sam deploy --config-env acme",
        "frontdesk sync-config",
    ] {
        assert!(
            plan.stdout.contains(step),
            "make deploy runs {step:?}: {plan}"
        );
    }
    for step in ["validate", "sync-config"] {
        let ran = make(
            &[step.to_string(), format!("TENANT={}", acme.display())],
            &env,
        );
        assert_eq!(ran.code, Some(0), "make {step}: {ran}");
    }
    let store = frontdesk_blackbox::frontdesk::store::Store::new(
        aws_sdk_dynamodb::Client::new(&app.sdk),
        &r.table,
        frontdesk_blackbox::frontdesk::ids::TenantId::parse("acme").unwrap(),
    );
    let synced = store
        .get_tenant_config()
        .await
        .unwrap()
        .expect("the folder is in the table");
    assert_eq!(synced.business.name, "Example Home Services");
    assert!(
        synced.agent_prompt.contains("Example Home Services"),
        "the rendered prompt is synced"
    );

    // 2. make gate.
    let gate = make(&tenant(&commands[1]), &env);
    assert_eq!(gate.code, Some(0), "{gate}");
    assert!(gate.stdout.contains("gate passed"), "{gate}");
    assert!(acme.join("gate.json").exists());

    // 3. make push: the diff first (DRY_RUN=1, as the README says), then for real, then again.
    let mut dry = tenant(&commands[2]);
    dry.push("DRY_RUN=1".into());
    let before = elevenlabs.server.received_requests().await.unwrap().len();
    let shown = make(&dry, &env);
    assert_eq!(shown.code, Some(0), "{shown}");
    let writes = |requests: &[Request]| {
        requests
            .iter()
            .filter(|r| r.method.as_str() != "GET")
            .count()
    };
    let after_dry = elevenlabs.server.received_requests().await.unwrap();
    assert_eq!(writes(&after_dry[before..]), 0, "a dry run writes nothing");
    let pushed = make(&tenant(&commands[2]), &env);
    assert_eq!(pushed.code, Some(0), "{pushed}");
    let agent_id = std::fs::read_to_string(acme.join("agent.toml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("agent_id = \"")
                .map(|v| v.trim_end_matches('"').to_string())
        })
        .unwrap();
    assert!(
        agent_id.starts_with("agent_"),
        "the agent's id was written into agent.toml"
    );
    let live = elevenlabs.agent(&agent_id);
    assert!(live["conversation_config"]["agent"]["prompt"]["prompt"]
        .as_str()
        .unwrap()
        .contains("Example Home Services"),);
    let count = elevenlabs.server.received_requests().await.unwrap().len();
    let again = make(&tenant(&commands[2]), &env);
    assert_eq!(again.code, Some(0), "{again}");
    let after = elevenlabs.server.received_requests().await.unwrap();
    assert_eq!(
        writes(&after[count..]),
        0,
        "a second push writes nothing: {again}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_tool_changed_in_the_folder_is_gated_as_a_copy_and_the_live_one_waits_for_push() {
    let elevenlabs = ElevenLabs::start().await;
    let tenant = gated_demo(&elevenlabs).await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(0), "{push}");
    let (live_id, live) = elevenlabs.tools()["check_availability"].clone();

    // The tool's description is what the LLM reads: changing it is a prompt change.
    let tool = tenant.read("tools/check_availability.json");
    tenant.write(
        "tools/check_availability.json",
        &tool.replacen("Look up open appointment slots.", "Find free visits.", 1),
    );
    let mark = elevenlabs.mark().await;
    let gate = tenant.gate(&elevenlabs).await;
    assert_eq!(gate.code, Some(0), "{gate}");
    let writes = summary(&elevenlabs.writes_since(mark).await);
    assert!(
        !writes.iter().any(|w| w.contains(&live_id)),
        "the live tool is untouched by the gate: {writes:?}"
    );
    let live_now = elevenlabs.state().tools[&live_id].clone();
    assert_eq!(live_now, live, "{gate}");
    let record: Value = serde_json::from_str(&tenant.read("gate.json")).unwrap();
    let copy = record["tool_copies"]["check_availability"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(copy, live_id);
    let tested = &elevenlabs.state().run_tests_bodies.last().unwrap().clone();
    assert!(
        tested.to_string().contains(&copy),
        "the tests ran with the copy: {tested}"
    );

    // Push then updates the live tool (and only it), and leaves the copy alone.
    let mark = elevenlabs.mark().await;
    let push = tenant.push(&elevenlabs).await;
    assert_eq!(push.code, Some(0), "{push}");
    let writes = summary(&elevenlabs.writes_since(mark).await);
    assert!(
        writes.contains(&format!("PATCH /v1/convai/tools/{live_id}")),
        "{writes:?}"
    );
    assert!(!writes.iter().any(|w| w.contains(&copy)), "{writes:?}");
    let live_now = elevenlabs.state().tools[&live_id].clone();
    assert!(live_now["tool_config"]["description"]
        .as_str()
        .unwrap()
        .starts_with("Find free visits."));
}

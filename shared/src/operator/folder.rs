//! A tenant folder read whole for the operator: every file checked, every problem kept (the
//! functions stop at the first; an engineer filling in a folder wants them all at once).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::agent::{AgentProfile, Scenarios, AGENT_FILE, CONVERSATION_INIT_FILE, SCENARIOS_FILE};
use crate::tenant::{
    TenantConfig, TenantConfigError, AGENT_PROMPT_FILE, AGENT_TOOLS_DIR, BUSINESS_FILE,
};

/// A folder that passed every check.
#[derive(Debug, Clone)]
pub struct Folder {
    pub dir: PathBuf,
    /// The folder's name: the stack's TenantId.
    pub name: String,
    /// The business facts, rules, rendered prompt and tools, as the functions read them.
    pub config: TenantConfig,
    pub profile: AgentProfile,
    pub scenarios: Scenarios,
    /// `tools/*.json` as written (with `${…}` placeholders), sorted by file name.
    pub tool_definitions: Vec<Value>,
    pub conversation_init: Value,
    /// The files the gate judges besides the rendered agent (rules, scenarios), as text.
    pub gated_text: Vec<String>,
}

fn problem(file: &Path, field: &str, message: impl Into<String>) -> TenantConfigError {
    TenantConfigError {
        file: file.display().to_string(),
        field: field.into(),
        message: message.into(),
    }
}

fn read(path: &Path, found: &mut Vec<TenantConfigError>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            found.push(problem(path, "-", format!("cannot read: {e}")));
            None
        }
    }
}

/// Reads and checks the whole folder: the folder, or every problem found in it.
pub fn check(dir: &Path) -> Result<Folder, Vec<TenantConfigError>> {
    let mut found = Vec::new();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if crate::ids::TenantId::parse(&name).is_err() {
        found.push(problem(
            dir,
            "-",
            "the folder's name is the stack's TenantId: letters, digits, '-' or '_'",
        ));
    }
    let business_file = dir.join(BUSINESS_FILE);
    let mut config = read(&business_file, &mut found).and_then(|text| {
        let file = business_file.display().to_string();
        // Parse errors stop at the first (TOML itself does); rule problems are all listed.
        match TenantConfig::parse_toml(&text, &file) {
            Ok(config) => {
                found.extend(config.problems(&file));
                Some(config)
            }
            Err(e) => {
                found.push(e);
                None
            }
        }
    });
    // Rules, prompt and tools beside it (each file's first problem).
    let mut unknown = Unknown::default();
    if let Some(c) = config.as_mut() {
        if let Err(e) = c.load_folder(dir) {
            found.push(e);
            unknown = read_what_load_folder_skipped(c, dir);
        }
    }
    let profile_file = dir.join(AGENT_FILE);
    let profile = read(&profile_file, &mut found).and_then(|text| {
        match AgentProfile::from_toml(&text, &profile_file.display().to_string()) {
            Ok(p) => Some(p),
            Err(e) => {
                found.push(e);
                None
            }
        }
    });
    if let (Some(p), Some(c)) = (&profile, &config) {
        found.extend(p.problems(&profile_file.display().to_string(), c));
    }
    let prompt_file = dir.join(AGENT_PROMPT_FILE);
    if !prompt_file.exists() {
        found.push(problem(&prompt_file, "-", "the agent's prompt is missing"));
    }
    let scenarios_file = dir.join(SCENARIOS_FILE);
    let scenarios_text = read(&scenarios_file, &mut found);
    let scenarios = scenarios_text.as_ref().and_then(|text| {
        match Scenarios::from_toml(text, &scenarios_file.display().to_string()) {
            Ok(s) => Some(s),
            Err(e) => {
                found.push(e);
                None
            }
        }
    });
    if let (Some(s), Some(c)) = (&scenarios, &config) {
        found.extend(
            s.problems(&scenarios_file.display().to_string(), c)
                .into_iter()
                .filter(|p| !unknown.hides(p)),
        );
    }
    let tool_definitions = read_tools(&dir.join(AGENT_TOOLS_DIR), &mut found);
    let init_file = dir.join(CONVERSATION_INIT_FILE);
    let conversation_init = read(&init_file, &mut found)
        .and_then(|text| match serde_json::from_str::<Value>(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                found.push(problem(&init_file, "-", format!("not JSON: {e}")));
                None
            }
        })
        .unwrap_or(Value::Null);
    if conversation_init.is_object()
        && conversation_init
            .pointer("/workspace_settings/conversation_initiation_client_data_webhook/url")
            .and_then(Value::as_str)
            .is_none()
    {
        found.push(problem(
            &init_file,
            "workspace_settings.conversation_initiation_client_data_webhook.url",
            "the conversation-initiation webhook's URL is required",
        ));
    }
    let rules_text = read(
        &dir.join(crate::quality::rules::ASSERTIONS_FILE),
        &mut found,
    )
    .unwrap_or_default();
    // A file read twice (agent.toml, a tool) reports the same problem twice: once is enough.
    let mut seen = std::collections::BTreeSet::new();
    found.retain(|p| seen.insert((p.file.clone(), p.field.clone(), p.message.clone())));
    match (config, profile, scenarios) {
        (Some(config), Some(profile), Some(scenarios)) if found.is_empty() => Ok(Folder {
            dir: dir.to_path_buf(),
            name,
            config,
            profile,
            scenarios,
            tool_definitions,
            conversation_init,
            gated_text: vec![rules_text, scenarios_text.unwrap_or_default()],
        }),
        _ => Err(found),
    }
}

/// What the cross-checks cannot know because its own file is broken (and already reported).
#[derive(Debug, Default)]
struct Unknown {
    /// assertions.toml did not load: no rule name can be checked against it.
    rules: bool,
    /// Tools whose file did not load (by file name): a scenario's mock for one is not wrong.
    tools: Vec<String>,
}

impl Unknown {
    fn hides(&self, p: &TenantConfigError) -> bool {
        (self.rules && p.field.ends_with(".allow_rules"))
            || self
                .tools
                .iter()
                .any(|t| p.field.ends_with(&format!(".mocks.{t}")))
    }
}

/// `load_folder` stops at its first problem (rules, then prompt, then tools): the rules and
/// tools it did not reach are read here, so that one broken file does not make every scenario
/// that mocks a tool or allows a rule look wrong too.
fn read_what_load_folder_skipped(config: &mut TenantConfig, dir: &Path) -> Unknown {
    let mut unknown = Unknown::default();
    match crate::quality::RuleSet::load_dir(dir) {
        Ok(rules) => config.quality = rules,
        Err(_) => unknown.rules = true,
    }
    let files = json_files(&dir.join(AGENT_TOOLS_DIR));
    config.agent_tools = files
        .iter()
        .filter_map(|f| match crate::tenant::AgentTool::load(f) {
            Ok(tool) => Some(tool),
            Err(_) => {
                let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned());
                unknown.tools.extend(stem);
                None
            }
        })
        .collect();
    unknown
}

/// The `*.json` files of a folder, by name (none if it cannot be read).
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Each `tools/*.json`: JSON, a webhook tool with a name, POST, and a URL on our stack.
fn read_tools(dir: &Path, found: &mut Vec<TenantConfigError>) -> Vec<Value> {
    let files = json_files(dir);
    if files.is_empty() {
        found.push(problem(
            dir,
            "-",
            "the agent needs its tools (tools/*.json)",
        ));
    }
    let mut tools = Vec::new();
    for file in files {
        let Some(text) = read(&file, found) else {
            continue;
        };
        let v: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                found.push(problem(&file, "-", format!("not JSON: {e}")));
                continue;
            }
        };
        let c = &v["tool_config"];
        if c["type"] != "webhook" {
            found.push(problem(&file, "tool_config.type", "must be \"webhook\""));
        }
        if c["api_schema"]["method"] != "POST" {
            // ElevenLabs' default is GET, which sends no body.
            found.push(problem(
                &file,
                "tool_config.api_schema.method",
                "must be \"POST\" (the default, GET, sends no body)",
            ));
        }
        let url = c["api_schema"]["url"].as_str().unwrap_or("");
        let name = c["name"].as_str().unwrap_or("");
        let route = format!("/tools/{name}");
        if !crate::http::routes().iter().any(|r| r.path == route) {
            found.push(problem(
                &file,
                "tool_config.name",
                format!("{name:?} is not a tool the stack serves (no route {route})"),
            ));
        }
        if url != format!("${{TOOLS_BASE_URL}}/{name}") {
            found.push(problem(
                &file,
                "tool_config.api_schema.url",
                format!("must be \"${{TOOLS_BASE_URL}}/{name}\" (the stack's route for the tool)"),
            ));
        }
        if c["api_schema"]["request_headers"]["x-frontdesk-tool-secret"]["secret_id"]
            != "${TOOL_SECRET_ID}"
        {
            found.push(problem(
                &file,
                "tool_config.api_schema.request_headers.x-frontdesk-tool-secret",
                "must be {\"secret_id\": \"${TOOL_SECRET_ID}\"}: the stack refuses calls without it",
            ));
        }
        tools.push(v);
    }
    tools
}

//! `frontdesk gate`: the tenant's scenarios as ElevenLabs agent tests (simulated callers, every
//! tool mocked, so the live stack is never called), run against the folder's configuration in
//! place of the live one; then the tenant's own quality rules over each resulting transcript.
//! The result is written to `gate.json` in the folder, with the version it judged: `push`
//! sends only that version.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::ManagementApi;
use super::folder::Folder;
use super::push::{self, PushError};
use crate::agent::{RenderedAgent, Scenario};
use crate::quality::{check, replay::read_export, BusinessFacts};

pub const GATE_FILE: &str = "gate.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateRecord {
    pub version: String,
    pub passed: bool,
    pub at: String,
    pub invocation_id: String,
    pub scenarios: Vec<ScenarioResult>,
    /// Tools whose folder version differed from the live one were tested as copies (name ->
    /// id; one per tool, reused by later gates), so the live agent never runs an ungated tool;
    /// push leaves these alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tool_copies: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub id: String,
    pub passed: bool,
    /// ElevenLabs' verdict on the success conditions.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// Quality rules the transcript broke: `rule at turn N: excerpt`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broken_rules: Vec<String>,
}

/// The version whose gate passed, per the folder's `gate.json`.
pub fn passed_version(dir: &Path) -> Option<String> {
    record(dir).filter(|r| r.passed).map(|r| r.version)
}

fn record(dir: &Path) -> Option<GateRecord> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(GATE_FILE)).ok()?).ok()
}

/// The ids of the gate's tool copies (see [`GateRecord::tool_copies`]).
pub fn tool_copies(dir: &Path) -> BTreeSet<String> {
    record(dir)
        .map(|r| r.tool_copies.into_values().collect())
        .unwrap_or_default()
}

/// The tools the tests run with, by name: the live one where it already is the folder's
/// version; else the gate's own copy of the folder's version (made, or brought up to date);
/// a tool not in the workspace at all is created (on no agent, it serves no call).
async fn tools_for_the_gate(
    api: &ManagementApi,
    rendered: &RenderedAgent,
    previous: &BTreeMap<String, String>,
    out: &mut dyn Write,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>), PushError> {
    let skip: BTreeSet<String> = previous.values().cloned().collect();
    let live = push::live_tools(api, rendered, &skip).await?;
    let all: BTreeMap<String, Value> = api
        .list_tools()
        .await?
        .into_iter()
        .filter_map(|t| Some((t["id"].as_str()?.to_string(), t["tool_config"].clone())))
        .collect();
    // Copies made before stay known (one per tool, reused), so push never takes one for live.
    let mut copies: BTreeMap<String, String> = previous
        .iter()
        .filter(|(_, id)| all.contains_key(*id))
        .map(|(n, id)| (n.clone(), id.clone()))
        .collect();
    let mut ids = BTreeMap::new();
    for tool in &rendered.tools {
        let name = tool["tool_config"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let id = match live.get(&name) {
            Some((id, have)) if push::holds(have, &tool["tool_config"]) => id.clone(),
            None => {
                let created = api.create_tool(tool).await?;
                writeln!(out, "tool {name}: created (not on any agent until push)")?;
                created["id"].as_str().unwrap_or_default().to_string()
            }
            Some(_) => {
                let copy = match previous.get(&name).filter(|id| all.contains_key(*id)) {
                    Some(id) => {
                        if !push::holds(&all[id], &tool["tool_config"]) {
                            api.update_tool(id, tool).await?;
                        }
                        id.clone()
                    }
                    None => {
                        let created = api.create_tool(tool).await?;
                        created["id"].as_str().unwrap_or_default().to_string()
                    }
                };
                writeln!(out, "tool {name}: changed in the folder; tested as a copy ({copy}), the live one is untouched")?;
                copies.insert(name.clone(), copy.clone());
                copy
            }
        };
        ids.insert(name, id);
    }
    Ok((ids, copies))
}

/// How long to wait for the tests, and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    pub every: Duration,
    pub at_most: Duration,
}

impl Default for Waiting {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(5),
            at_most: Duration::from_secs(20 * 60),
        }
    }
}

fn test_name(tenant: &str, scenario: &str) -> String {
    format!("frontdesk/{tenant}/{scenario}")
}

/// The agent test for a scenario: a simulated caller, every tool mocked (unmocked ones fail).
fn test_body(
    folder: &Folder,
    rendered: &RenderedAgent,
    scenario: &Scenario,
    tool_ids: &BTreeMap<String, String>,
) -> Value {
    let mut variables = rendered.agent["conversation_config"]["agent"]["dynamic_variables"]
        ["dynamic_variable_placeholders"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in &scenario.dynamic_variables {
        variables.insert(k.clone(), v.clone());
    }
    let overrides: serde_json::Map<String, Value> = scenario
        .mocks
        .iter()
        .filter_map(|(tool, result)| {
            let id = tool_ids.get(tool)?;
            Some((
                id.clone(),
                json!([{"parameter_conditions": [], "mock_result": result, "is_error": false}]),
            ))
        })
        .collect();
    json!({
        "type": "simulation",
        "name": test_name(&folder.name, &scenario.id),
        "chat_history": [],
        "simulation_scenario": scenario.caller,
        "success_conditions": scenario.success,
        "simulation_max_turns": scenario.max_turns,
        "dynamic_variables": variables,
        "tool_mock_config": {
            "mocking_strategy": "all",
            "fallback_strategy": "raise_error",
            "mocked_tool_ids": tool_ids.values().collect::<Vec<_>>(),
        },
        "tool_mock_overrides": overrides,
    })
}

/// Runs the gate and writes `gate.json`. Returns the record (passed or not).
pub async fn gate(
    api: &ManagementApi,
    folder: &mut Folder,
    rendered: &RenderedAgent,
    waiting: Waiting,
    out: &mut dyn Write,
) -> Result<GateRecord, PushError> {
    // Tools must exist to be mocked by id; live ones are never changed here (push does that).
    let previous = record(&folder.dir)
        .map(|r| r.tool_copies)
        .unwrap_or_default();
    let (tool_ids, tool_copies) = tools_for_the_gate(api, rendered, &previous, out).await?;
    let agent = push::agent_with_tools(rendered, &tool_ids);
    if folder.profile.agent.agent_id.is_empty() {
        // An agent on no phone number serves no caller: creating it to test it is safe.
        push::create_agent(api, folder, &agent, false, out).await?;
    }
    let agent_id = folder.profile.agent.agent_id.clone();

    let existing: BTreeMap<String, String> = api
        .list_tests(&format!("frontdesk/{}/", folder.name))
        .await?
        .into_iter()
        .filter_map(|t| {
            Some((
                t["name"].as_str()?.to_string(),
                t["id"].as_str()?.to_string(),
            ))
        })
        .collect();
    let mut by_test = BTreeMap::new();
    let mut test_ids = Vec::new();
    for scenario in &folder.scenarios.scenarios {
        let body = test_body(folder, rendered, scenario, &tool_ids);
        let name = test_name(&folder.name, &scenario.id);
        let id = match existing.get(&name) {
            Some(id) => {
                api.update_test(id, &body).await?;
                id.clone()
            }
            None => api.create_test(&body).await?,
        };
        by_test.insert(id.clone(), scenario);
        test_ids.push(id);
    }
    let config = json!({
        "conversation_config": agent["conversation_config"],
        "platform_settings": agent["platform_settings"],
    });
    writeln!(
        out,
        "gate: running {} scenarios against version {}",
        test_ids.len(),
        rendered.version
    )?;
    let mut invocation = api.run_tests(&agent_id, &test_ids, &config).await?;
    let invocation_id = invocation["id"].as_str().unwrap_or_default().to_string();
    let started = Instant::now();
    while runs(&invocation).iter().any(|r| r["status"] == "pending") || runs(&invocation).is_empty()
    {
        if started.elapsed() >= waiting.at_most {
            return Err(PushError::Refused(format!(
                "the tests of invocation {invocation_id} had not finished after {} s",
                waiting.at_most.as_secs()
            )));
        }
        tokio::time::sleep(waiting.every).await;
        invocation = api.test_invocation(&invocation_id).await?;
    }

    let facts = BusinessFacts::of(&folder.config);
    let rules = &folder.config.quality;
    let mut results = Vec::new();
    for run in runs(&invocation) {
        let Some(scenario) = run["test_id"].as_str().and_then(|id| by_test.get(id)) else {
            continue;
        };
        let status = run["status"].as_str().unwrap_or("unknown").to_string();
        let transcript = json!({
            "conversation_id": format!("gate-{}", scenario.id),
            "transcript": run["agent_responses"].clone(),
        });
        let broken_rules: Vec<String> = match read_export(transcript.to_string().as_bytes()) {
            Ok((_, evidence)) => check(rules, &facts, &evidence)
                .into_iter()
                .filter(|f| !scenario.allow_rules.contains(&f.rule_id))
                .map(|f| match f.turn {
                    Some(t) => format!("{} at turn {t}: {}", f.rule_id, f.excerpt),
                    None => format!("{}: {}", f.rule_id, f.excerpt),
                })
                .collect(),
            Err(e) => vec![format!("transcript unreadable: {e}")],
        };
        let passed = status == "passed" && broken_rules.is_empty();
        results.push(ScenarioResult {
            id: scenario.id.clone(),
            passed,
            status,
            rationale: run["condition_result"]["rationale"]["summary"]
                .as_str()
                .map(str::to_string),
            broken_rules,
        });
    }
    let missing: Vec<&str> = folder
        .scenarios
        .scenarios
        .iter()
        .filter(|s| !results.iter().any(|r| r.id == s.id))
        .map(|s| s.id.as_str())
        .collect();
    for id in missing {
        results.push(ScenarioResult {
            id: id.to_string(),
            passed: false,
            status: "not run".into(),
            rationale: None,
            broken_rules: Vec::new(),
        });
    }
    for r in &results {
        writeln!(
            out,
            "  {} {}: ElevenLabs says {}",
            if r.passed { "PASS" } else { "FAIL" },
            r.id,
            r.status
        )?;
        if let Some(why) = &r.rationale {
            writeln!(out, "       {why}")?;
        }
        for broken in &r.broken_rules {
            writeln!(out, "       breaks {broken}")?;
        }
    }
    let record = GateRecord {
        version: rendered.version.clone(),
        passed: results.iter().all(|r| r.passed),
        at: jiff::Timestamp::now().to_string(),
        invocation_id,
        scenarios: results,
        tool_copies,
    };
    std::fs::write(
        folder.dir.join(GATE_FILE),
        serde_json::to_string_pretty(&record).unwrap_or_default() + "\n",
    )?;
    writeln!(
        out,
        "gate {} for version {} (written to {}/{GATE_FILE})",
        if record.passed { "passed" } else { "FAILED" },
        record.version,
        folder.dir.display()
    )?;
    Ok(record)
}

fn runs(invocation: &Value) -> Vec<Value> {
    invocation["test_runs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

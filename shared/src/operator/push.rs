//! `frontdesk push`: the rendered agent to ElevenLabs. Tools by name through the tools API
//! (created, or replaced when what we set differs), then the agent: read, our fields set, sent
//! whole; then the workspace's conversation-initiation webhook. Nothing is sent that is already
//! so, so a second push makes no write at all.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde_json::{json, Value};

use super::api::{ApiError, ManagementApi};
use super::folder::Folder;
use crate::agent::RenderedAgent;

/// What a push did (or, dry, would do) to each thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct Change {
    pub what: String,
    pub action: Action,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Refused(String),
}

/// Paths under the agent whose value is ours entirely: when the agent is sent, these go as the
/// folder has them (a field removed here goes too). A removal alone is not seen as a change
/// (see [`holds`]).
const OWNED: &[&str] = &[
    "/platform_settings/data_collection",
    "/platform_settings/evaluation/criteria",
    "/conversation_config/agent/dynamic_variables/dynamic_variable_placeholders",
    "/conversation_config/agent/prompt/tool_ids",
];

/// Whether `have` already holds everything `want` sets (ElevenLabs adds defaults of its own).
/// Keys `have` has beyond `want`'s count as ElevenLabs' own, even in the maps we own
/// (`data_collection`): whether its PATCH replaces or merges a map is not documented, and a
/// push that could never settle would write on every run. Lists are compared whole.
pub fn holds(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(k, wv)| {
            h.get(k).is_some_and(|hv| holds(hv, wv)) || (wv.is_null() && !h.contains_key(k))
        }),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(hv, wv)| holds(hv, wv))
        }
        (Value::Number(h), Value::Number(w)) => h.as_f64() == w.as_f64(),
        _ => have == want,
    }
}

/// `have` with `want`'s fields set into it; objects merged, everything else (and the [`OWNED`]
/// paths) replaced.
pub fn merged(have: &Value, want: &Value, at: &str) -> Value {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) if !OWNED.contains(&at) => {
            let mut out = h.clone();
            for (k, wv) in w {
                let path = format!("{at}/{k}");
                let next = match h.get(k) {
                    Some(hv) => merged(hv, wv, &path),
                    None => wv.clone(),
                };
                out.insert(k.clone(), next);
            }
            Value::Object(out)
        }
        _ => want.clone(),
    }
}

/// Only the parts of `have` that `want` speaks of: what a diff should show.
fn projected(have: &Value, want: &Value) -> Value {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => Value::Object(
            w.iter()
                .filter_map(|(k, wv)| h.get(k).map(|hv| (k.clone(), projected(hv, wv))))
                .collect(),
        ),
        _ => have.clone(),
    }
}

/// "updated", or "would be updated" in a dry run.
fn outcome(dry_run: bool, done: &str) -> String {
    if dry_run {
        format!("would be {done}")
    } else {
        done.to_string()
    }
}

/// A unified diff of two JSON documents, pretty-printed.
pub fn diff(label: &str, before: &Value, after: &Value) -> String {
    let a = serde_json::to_string_pretty(before).unwrap_or_default();
    let b = serde_json::to_string_pretty(after).unwrap_or_default();
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{label} (ElevenLabs now)"),
            &format!("{label} (from the folder)"),
        )
        .to_string()
}

/// The secret id a tool sends: what tells this stack's tools from another business's tools of
/// the same name in a shared workspace.
fn tool_secret(tool_config: &Value) -> Option<&str> {
    tool_config
        .pointer("/api_schema/request_headers/x-frontdesk-tool-secret/secret_id")
        .and_then(Value::as_str)
}

/// This stack's tools in the workspace by name (their id and definition): those sending the
/// rendered tools' secret, leaving out `skip` (the gate's own copies, which share their names).
pub async fn live_tools(
    api: &ManagementApi,
    rendered: &RenderedAgent,
    skip: &BTreeSet<String>,
) -> Result<BTreeMap<String, (String, Value)>, PushError> {
    let ours = rendered
        .tools
        .first()
        .and_then(|t| tool_secret(&t["tool_config"]))
        .map(str::to_string);
    Ok(api
        .list_tools()
        .await?
        .into_iter()
        .filter_map(|t| {
            let name = t["tool_config"]["name"].as_str()?.to_string();
            let id = t["id"].as_str()?.to_string();
            let mine = tool_secret(&t["tool_config"]) == ours.as_deref();
            (mine && !skip.contains(&id)).then(|| (name, (id, t["tool_config"].clone())))
        })
        .collect())
}

/// The tools by name: the ids of those that exist, created where missing and replaced where
/// their definition differs (`skip`: the gate's copies, never the live tools).
pub async fn sync_tools(
    api: &ManagementApi,
    rendered: &RenderedAgent,
    skip: &BTreeSet<String>,
    dry_run: bool,
    out: &mut dyn Write,
    changes: &mut Vec<Change>,
) -> Result<BTreeMap<String, String>, PushError> {
    let existing = live_tools(api, rendered, skip).await?;
    let mut ids = BTreeMap::new();
    for tool in &rendered.tools {
        let name = tool["tool_config"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let what = format!("tool {name}");
        match existing.get(&name) {
            None => {
                writeln!(out, "{what}: {}", outcome(dry_run, "created"))?;
                if dry_run {
                    writeln!(out, "{}", diff(&what, &Value::Null, &tool["tool_config"]))?;
                    ids.insert(name.clone(), format!("<new {name}>"));
                } else {
                    let created = api.create_tool(tool).await?;
                    let id = created["id"].as_str().unwrap_or_default().to_string();
                    ids.insert(name.clone(), id);
                }
                changes.push(Change {
                    what,
                    action: Action::Created,
                });
            }
            Some((id, have)) => {
                ids.insert(name.clone(), id.clone());
                if holds(have, &tool["tool_config"]) {
                    writeln!(out, "{what}: unchanged ({id})")?;
                    changes.push(Change {
                        what,
                        action: Action::Unchanged,
                    });
                    continue;
                }
                writeln!(out, "{what}: {} ({id})", outcome(dry_run, "updated"))?;
                writeln!(
                    out,
                    "{}",
                    diff(
                        &what,
                        &projected(have, &tool["tool_config"]),
                        &tool["tool_config"]
                    )
                )?;
                if !dry_run {
                    api.update_tool(id, tool).await?;
                }
                changes.push(Change {
                    what,
                    action: Action::Updated,
                });
            }
        }
    }
    Ok(ids)
}

/// The agent document with its tools' ids.
pub fn agent_with_tools(rendered: &RenderedAgent, ids: &BTreeMap<String, String>) -> Value {
    let mut agent = rendered.agent.clone();
    agent["conversation_config"]["agent"]["prompt"]["tool_ids"] = json!(rendered
        .tool_names
        .iter()
        .filter_map(|n| ids.get(n))
        .collect::<Vec<_>>());
    agent
}

/// Creates the agent when the folder names none, and writes its id into agent.toml.
pub async fn create_agent(
    api: &ManagementApi,
    folder: &mut Folder,
    agent: &Value,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<Option<String>, PushError> {
    if dry_run {
        writeln!(out, "agent: would be created")?;
        writeln!(out, "{}", diff("agent", &Value::Null, agent))?;
        return Ok(None);
    }
    let id = api.create_agent(agent).await?;
    let file = folder.dir.join(crate::agent::AGENT_FILE);
    let text = std::fs::read_to_string(&file)?;
    let updated = set_agent_id(&text, &id).ok_or_else(|| {
        PushError::Io(std::io::Error::other(format!(
            "created agent {id}, but {} has no `agent_id = \"\"` line to write it to: add `agent_id = \"{id}\"` under [agent] by hand before anything else (another run would create another agent)",
            file.display()
        )))
    })?;
    std::fs::write(&file, updated)?;
    folder.profile.agent.agent_id = id.clone();
    writeln!(
        out,
        "agent: created ({id}); its id is now in {}",
        file.display()
    )?;
    Ok(Some(id))
}

/// `agent_id = ""` in agent.toml's [agent] table, filled in (comments and layout kept).
fn set_agent_id(text: &str, id: &str) -> Option<String> {
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let t = line.trim_start();
            if !done && t.starts_with("agent_id") && t.trim_end().ends_with("\"\"") {
                done = true;
                format!("agent_id = \"{id}\"")
            } else {
                line.to_string()
            }
        })
        .collect();
    done.then(|| lines.join("\n") + "\n")
}

/// Pushes everything; refuses (before any write) unless the gate passed for this version.
pub async fn push(
    api: &ManagementApi,
    folder: &mut Folder,
    rendered: &RenderedAgent,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<Vec<Change>, PushError> {
    let gate = super::gate::passed_version(&folder.dir);
    let gated = gate.as_deref() == Some(rendered.version.as_str());
    if !gated {
        let why = match gate {
            Some(v) => format!(
                "the gate passed version {v}, not this one ({})",
                rendered.version
            ),
            None => format!("the gate has not passed for version {}", rendered.version),
        };
        if !dry_run {
            return Err(PushError::Refused(format!(
                "{why}: run `frontdesk gate {}` first (push sends no prompt that has not passed its scenarios)",
                folder.name
            )));
        }
        writeln!(out, "note: a real push would be refused: {why}")?;
    }
    let mut changes = Vec::new();
    let copies = super::gate::tool_copies(&folder.dir);
    let ids = sync_tools(api, rendered, &copies, dry_run, out, &mut changes).await?;
    let agent = agent_with_tools(rendered, &ids);
    let agent_id = folder.profile.agent.agent_id.clone();
    if agent_id.is_empty() {
        create_agent(api, folder, &agent, dry_run, out).await?;
        changes.push(Change {
            what: "agent".into(),
            action: Action::Created,
        });
    } else {
        let current = api.get_agent(&agent_id).await?;
        let mut body = json!({});
        let mut before = json!({});
        let mut after = json!({});
        for field in ["name", "tags", "conversation_config", "platform_settings"] {
            let want = &agent[field];
            let have = &current[field];
            if !holds(have, want) {
                body[field] = merged(have, want, &format!("/{field}"));
                before[field] = projected(have, want);
                after[field] = want.clone();
            }
        }
        if body.as_object().is_some_and(|b| b.is_empty()) {
            writeln!(out, "agent {agent_id}: unchanged")?;
            changes.push(Change {
                what: "agent".into(),
                action: Action::Unchanged,
            });
        } else {
            writeln!(out, "agent {agent_id}: {}", outcome(dry_run, "updated"))?;
            writeln!(out, "{}", diff("agent", &before, &after))?;
            if !dry_run {
                body["version_description"] = json!(format!("frontdesk {}", rendered.version));
                api.update_agent(&agent_id, &body).await?;
            }
            changes.push(Change {
                what: "agent".into(),
                action: Action::Updated,
            });
        }
    }
    let settings = api.get_settings().await?;
    let webhook = &rendered.conversation_initiation_webhook;
    let have = &settings["conversation_initiation_client_data_webhook"];
    if holds(have, webhook) {
        writeln!(out, "conversation-initiation webhook: unchanged")?;
        changes.push(Change {
            what: "webhook".into(),
            action: Action::Unchanged,
        });
    } else {
        writeln!(
            out,
            "conversation-initiation webhook: {}",
            outcome(dry_run, "updated")
        )?;
        writeln!(
            out,
            "{}",
            diff("webhook", &projected(have, webhook), webhook)
        )?;
        if !dry_run {
            api.update_settings(&json!({"conversation_initiation_client_data_webhook": webhook}))
                .await?;
        }
        changes.push(Change {
            what: "webhook".into(),
            action: Action::Updated,
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_elevenlabs_adds_does_not_count_as_a_change() {
        let have = json!({"name": "x", "response_timeout_secs": 10, "disable_interruptions": false, "api_schema": {"url": "u", "method": "POST"}});
        assert!(holds(
            &have,
            &json!({"name": "x", "api_schema": {"url": "u"}})
        ));
        assert!(!holds(&have, &json!({"name": "y"})));
        assert!(holds(&json!({"n": 10.0}), &json!({"n": 10})));
    }

    #[test]
    fn merging_keeps_their_fields_and_replaces_ours() {
        let have = json!({"platform_settings": {"widget": {"a": 1}, "data_collection": {"old": {}, "kept": {}}}});
        let want = json!({"platform_settings": {"data_collection": {"kept": {"type": "string"}}}});
        let m = merged(&have, &want, "");
        assert_eq!(m["platform_settings"]["widget"], json!({"a": 1}));
        assert_eq!(
            m["platform_settings"]["data_collection"],
            json!({"kept": {"type": "string"}})
        );
    }

    #[test]
    fn the_new_agent_id_is_written_into_agent_toml() {
        let text = "[agent]\n# kept\nagent_id = \"\"\nname = \"x\"\n";
        assert_eq!(
            set_agent_id(text, "agent_1").unwrap(),
            "[agent]\n# kept\nagent_id = \"agent_1\"\nname = \"x\"\n"
        );
        assert!(set_agent_id("[agent]\nname = \"x\"\n", "a").is_none());
    }
}

//! The QA reviewers' API: the queue of flags, a call with its evidence, resolving a flag, and
//! how each rule fares. Plain functions of the reviewer and the request; `http.rs` routes them.
//!
//! Every read and write goes through the store, whose keys all start with the stack's tenant,
//! and [`auth`] has refused any token of another tenant before these run: a reviewer of one
//! business never reaches another's calls.

pub mod auth;

/// The reviewers' console: one static page over this API (plain HTML, CSS and JS; no build).
pub const CONSOLE: &str = include_str!("console.html");

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::deps::Deps;
use crate::error::DependencyError;
use crate::ids::ConversationId;
use crate::quality::Severity;
use crate::redact::redact_personal_data;
use crate::store::calls::CallRecord;
use crate::store::flags::{Flag, FlagStatus, Resolution, Resolved};
use crate::store::{from_value, keys, Item};
pub use auth::Reviewer;

/// Flags a page of the queue holds, unless `limit` asks for fewer or more (at most 100).
const PAGE: i32 = 25;
const MAX_PAGE: i32 = 100;
/// How long the audio link of a call view works.
const AUDIO_LINK_VALID: Duration = Duration::from_secs(10 * 60);
/// Longest note a reviewer can leave.
const MAX_NOTE: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum QaError {
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The flag was already resolved the other way.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
}

fn bad(field: &str, message: impl Into<String>) -> QaError {
    QaError::BadRequest {
        field: field.into(),
        message: message.into(),
    }
}

/// `GET /qa/flags?status=&severity=&cursor=&limit=`: newest first, a page at a time.
pub async fn list_flags(
    deps: &Deps,
    _reviewer: &Reviewer,
    query: &HashMap<String, String>,
) -> Result<Value, QaError> {
    let status = match query.get("status").map(String::as_str) {
        None | Some("") => FlagStatus::Open,
        Some(s) => FlagStatus::parse(s)
            .ok_or_else(|| bad("status", "must be open, confirmed or dismissed"))?,
    };
    let severity = match query.get("severity").map(String::as_str) {
        None | Some("") => None,
        Some(s) => Some(
            Severity::parse(s)
                .ok_or_else(|| bad("severity", "must be low, medium, high or critical"))?,
        ),
    };
    let list = keys::flags_index(deps.store.tenant(), status.as_str());
    let start = match query.get("cursor").map(String::as_str) {
        None | Some("") => None,
        Some(c) => Some(decode_cursor(c, &list)?),
    };
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => PAGE,
        Some(l) => l
            .parse::<i32>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| {
                bad(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let (mut flags, next) = deps
        .store
        .list_flags(status, severity, start, limit)
        .await?;
    if let Some(today) = masking_date(deps).await? {
        for flag in &mut flags {
            flag.excerpt = redact_personal_data(&flag.excerpt, today);
        }
    }
    Ok(json!({
        "status": status.as_str(),
        "severity": severity.map(Severity::as_str),
        "flags": flags,
        "next_cursor": next.map(|k| encode_cursor(&k)),
    }))
}

/// The position after a page, opaque to the console: the index key, base64url JSON.
fn encode_cursor(key: &Item) -> String {
    let plain: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str())))
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).unwrap_or_default())
}

/// A cursor back into a key, refused unless it points into this tenant's list of this status.
fn decode_cursor(cursor: &str, list: &str) -> Result<Item, QaError> {
    let invalid = || bad("cursor", "is not a cursor of this list");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let plain: HashMap<String, String> = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    let wanted = [keys::PK, keys::SK, keys::GSI1PK, keys::GSI1SK];
    if plain.len() != wanted.len()
        || !wanted.iter().all(|k| plain.contains_key(*k))
        || plain[keys::GSI1PK] != list
    {
        return Err(invalid());
    }
    Ok(plain
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

/// Today in the business's zone when its tenant masks personal data in what reviewers see.
async fn masking_date(deps: &Deps) -> Result<Option<jiff::civil::Date>, QaError> {
    let tenant = deps.tenant().await.map_err(DependencyError::from)?;
    Ok(tenant
        .redacts()
        .then(|| deps.now().to_zoned(tenant.time_zone()).date()))
}

/// A flag as a reviewer sees it (its excerpt masked when the business asks).
async fn shown(deps: &Deps, mut flag: Flag) -> Result<Flag, QaError> {
    if let Some(today) = masking_date(deps).await? {
        flag.excerpt = redact_personal_data(&flag.excerpt, today);
    }
    Ok(flag)
}

/// The call's own free text and the caller's number, masked for review.
fn mask_record(record: &mut CallRecord, flags: &mut [Flag], today: jiff::civil::Date) {
    let mask = |s: &mut Option<String>| {
        if let Some(text) = s {
            *text = redact_personal_data(text, today);
        }
    };
    mask(&mut record.summary);
    mask(&mut record.summary_title);
    if record.caller.is_some() {
        record.caller = Some("[phone]".into());
    }
    for value in record.data_collection.values_mut() {
        if let Value::String(text) = value {
            *text = redact_personal_data(text, today);
        }
    }
    for flag in flags {
        flag.excerpt = redact_personal_data(&flag.excerpt, today);
    }
}

/// `GET /qa/calls/{conversation_id}`: the call, its transcript with each flag at its turn, the
/// tool calls and their results, the outcome, and a short-lived link to the audio.
pub async fn call_view(
    deps: &Deps,
    _reviewer: &Reviewer,
    conversation_id: &str,
) -> Result<Value, QaError> {
    let conversation = ConversationId::parse(conversation_id)
        .map_err(|_| bad("conversation_id", "is not a conversation id"))?;
    let item = deps
        .store
        .get_call(&conversation)
        .await?
        .ok_or(QaError::NotFound("call"))?;
    let audio_key = item.get("audio_key").and_then(|v| v.as_s().ok()).cloned();
    let mut record: CallRecord = from_value(AttributeValue::M(item))?;
    let mut flags = deps.store.flags_of_call(&conversation).await?;
    let masking = masking_date(deps).await?;
    let transcript = match record.transcript_key.as_deref() {
        Some(key) => deps.blobs.get(key).await?,
        None => None,
    };
    let mut doc = transcript
        .as_deref()
        .and_then(|doc| serde_json::from_slice::<Value>(doc).ok())
        .unwrap_or(Value::Null);
    let redacted = doc["redacted"].as_bool() == Some(true);
    let mut turns = match doc.get_mut("transcript").map(Value::take) {
        Some(Value::Array(turns)) => turns,
        _ => Vec::new(),
    };
    // Masked as it is shown, whenever it was stored (before redaction was switched on, too).
    if let Some(today) = masking {
        for turn in &mut turns {
            crate::post_call::redact_texts(turn, today);
        }
        mask_record(&mut record, &mut flags, today);
    }
    let mut tool_calls = Vec::new();
    let turns: Vec<Value> = turns
        .into_iter()
        .enumerate()
        .map(|(index, turn)| {
            for call in turn["tool_calls"].as_array().into_iter().flatten() {
                tool_calls.push(json!({"turn": index, "tool": call["tool_name"], "request_id": call["request_id"], "params": call["params_as_json"]}));
            }
            for result in turn["tool_results"].as_array().into_iter().flatten() {
                tool_calls.push(json!({"turn": index, "tool": result["tool_name"], "request_id": result["request_id"], "result": result["result_value"], "is_error": result["is_error"]}));
            }
            let at_turn: Vec<&str> = flags
                .iter()
                .filter(|f| f.turn == Some(index as u32))
                .map(|f| f.flag_id.as_str())
                .collect();
            json!({
                "index": index,
                "role": turn["role"],
                "message": turn["message"],
                "time_in_call_secs": turn["time_in_call_secs"],
                "flags": at_turn,
            })
        })
        .collect();
    let audio_url = match &audio_key {
        Some(key) => Some(deps.blobs.presigned_get(key, AUDIO_LINK_VALID).await?),
        None => None,
    };
    Ok(json!({
        "call": {
            "conversation_id": record.conversation_id,
            "status": record.status,
            "direction": record.direction,
            "caller": record.caller,
            "started_at": record.started_at,
            "ended_at": record.ended_at,
            "duration_secs": record.duration_secs,
            "termination_reason": record.termination_reason,
        },
        "outcome": {
            "disposition": record.disposition,
            "call_successful": record.call_successful,
            "summary": record.summary,
            "summary_title": record.summary_title,
            "urgency": record.urgency,
            "hot": record.hot,
            "lead_id": record.lead_id,
            "booking_id": record.booking_id,
            "evaluation": record.evaluation,
            "data_collection": record.data_collection,
        },
        "flags": flags,
        "transcript": turns,
        "transcript_redacted": redacted || masking.is_some(),
        "tool_calls": tool_calls,
        "audio_url": audio_url,
        "audio_url_expires_in_secs": audio_key.as_ref().map(|_| AUDIO_LINK_VALID.as_secs()),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveFlag {
    pub status: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /qa/flags/{id}`: confirm or dismiss, with a note. Asking again for what was done is a
/// no-op that answers the same; the opposite of what was done is a conflict.
pub async fn resolve_flag(
    deps: &Deps,
    reviewer: &Reviewer,
    flag_id: &str,
    request: ResolveFlag,
) -> Result<Value, QaError> {
    let status = match FlagStatus::parse(&request.status) {
        Some(s @ (FlagStatus::Confirmed | FlagStatus::Dismissed)) => s,
        _ => return Err(bad("status", "must be confirmed or dismissed")),
    };
    let note = request
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return Err(bad(
            "note",
            format!("must be at most {MAX_NOTE} characters"),
        ));
    }
    if note.as_ref().is_some_and(|n| {
        n.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    }) {
        return Err(bad("note", "contains characters that are not text"));
    }
    let (conversation, rule) = flag_id
        .rsplit_once('.')
        .ok_or_else(|| bad("id", "is not a flag id"))?;
    let conversation =
        ConversationId::parse(conversation).map_err(|_| bad("id", "is not a flag id"))?;
    let flag = deps
        .store
        .get_flag(&conversation, rule)
        .await?
        .ok_or(QaError::NotFound("flag"))?;
    let resolution = Resolution {
        status,
        reviewer: reviewer.name.clone(),
        note,
        at: deps.now(),
    };
    let stands = if flag.status != FlagStatus::Open {
        flag
    } else if deps.store.resolve_flag(&flag, &resolution).await? == Resolved::Now {
        let resolved = Flag {
            status,
            reviewer: Some(resolution.reviewer),
            note: resolution.note,
            resolved_at: Some(resolution.at.to_string()),
            ..flag
        };
        return Ok(json!({"flag": shown(deps, resolved).await?, "changed": true}));
    } else {
        // Someone resolved it between our read and our write: see how.
        deps.store
            .get_flag(&conversation, rule)
            .await?
            .ok_or(QaError::NotFound("flag"))?
    };
    if stands.status == status {
        Ok(json!({"flag": shown(deps, stands).await?, "changed": false}))
    } else {
        Err(QaError::Conflict(format!(
            "this flag was already {} by {}",
            stands.status.as_str(),
            stands.reviewer.as_deref().unwrap_or("someone")
        )))
    }
}

/// `GET /qa/rules`: for each rule of the tenant, how many flags it raised and how reviewers
/// resolved them, so a noisy rule shows.
pub async fn rule_counts(deps: &Deps, _reviewer: &Reviewer) -> Result<Value, QaError> {
    let tenant = deps.tenant().await.map_err(|e| match e {
        crate::deps::TenantError::Dependency(d) => QaError::Dependency(d),
        other => QaError::Dependency(DependencyError::new(
            "dynamodb",
            "GetItem",
            "NotConfigured",
            other.to_string(),
        )),
    })?;
    let counts = deps.store.rule_counts().await?;
    let count_of = |id: &str| counts.iter().find(|c| c.rule_id == id);
    let mut rules: Vec<Value> = tenant
        .quality
        .rules
        .iter()
        .map(|r| {
            let c = count_of(&r.id);
            let raised = c.map_or(0, |c| c.raised);
            let confirmed = c.map_or(0, |c| c.confirmed);
            let dismissed = c.map_or(0, |c| c.dismissed);
            let resolved = confirmed + dismissed;
            // The share of resolved flags reviewers dismissed: a noisy rule's sign.
            let dismissed_share = (resolved > 0).then(|| dismissed as f64 / resolved as f64);
            json!({
                "rule_id": r.id,
                "kind": r.kind.name(),
                "severity": r.severity.as_str(),
                "description": r.description,
                "raised": raised,
                "confirmed": confirmed,
                "dismissed": dismissed,
                "open": raised.saturating_sub(resolved),
                "dismissed_share": dismissed_share,
            })
        })
        .collect();
    // Rules since removed from the file still have history.
    for c in &counts {
        if tenant.quality.rule(&c.rule_id).is_none() {
            rules.push(json!({"rule_id": c.rule_id, "retired": true, "raised": c.raised, "confirmed": c.confirmed, "dismissed": c.dismissed}));
        }
    }
    Ok(json!({ "rules": rules }))
}

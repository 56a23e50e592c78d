//! POST /tools/escalation_target: when the caller needs a person. While someone is working, the
//! warm-transfer number (the agent hands it to its transfer tool); otherwise a callback promise
//! for when the business opens, a callback task, and a text to the owner.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;

use super::{conversation_or_tool, Answer, ToolError};
use crate::booking::calendar::iso_local;
use crate::booking::engine;
use crate::deps::Deps;
use crate::events::{self, CallbackRequested, DomainEvent};
use crate::ids::derived_id;
use crate::outbox::{self, Audience, NewMessage};
use crate::spoken::spoken_datetime;
use crate::store::tasks::CallbackTask;
use crate::tenant::render;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EscalationTarget {
    /// Why the caller wants a person, in a sentence (for the callback note).
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub caller_name: Option<String>,
    /// The number to call back on, if not the one they are calling from.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub caller_phone: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
}

/// How far ahead a callback promise looks for the next opening.
const HORIZON_DAYS: i32 = 14;

/// `POST /tools/escalation_target`: a person now, or a callback promise.
pub async fn escalation_target(deps: &Deps, req: EscalationTarget) -> Result<Answer, ToolError> {
    let tenant = deps.tenant().await?;
    let conversation = super::conversation(req.conversation_id.as_deref())?;
    let reason = super::text(
        "reason",
        req.reason.as_deref(),
        300,
        "Please keep the reason to a sentence.",
    )?;
    let name = super::line(
        "caller_name",
        req.caller_name.as_deref(),
        100,
        "Could you tell me your name again?",
    )?;
    let stated = super::phone("phone", req.phone.as_deref(), &tenant)?;
    let caller = super::caller_id(req.caller_phone.as_deref(), &tenant);
    let now = deps.now();
    let hours = tenant.staffed_hours();
    if let (Some(escalation), Some(hours)) = (&tenant.escalation, &hours) {
        if engine::is_open(hours, now) {
            return Ok(Answer::new(
                "transfer",
                json!({
                    "ok": true,
                    "action": "transfer",
                    "transfer_number": escalation.transfer_number.as_str(),
                    "say": "I'll put you through to the team now.",
                }),
            ));
        }
    }
    let Some(phone) = stated.or(caller) else {
        return Ok(Answer::refusal(
            "need_phone",
            "What's the best number for the team to call you back on?",
        ));
    };
    // The promise: when the business next opens (or within a day if it has no hours).
    let due = hours
        .as_ref()
        .and_then(|h| engine::next_opening(h, now, HORIZON_DAYS))
        .unwrap_or_else(|| {
            now.saturating_add(SignedDuration::from_hours(24))
                .unwrap_or(now)
        });
    let conversation = conversation_or_tool(conversation);
    // One task per call (per number and day outside a call): asking twice promises once.
    let task_id = if conversation.as_str() == "tool" {
        let day = now.to_zoned(tenant.time_zone()).date().to_string();
        derived_id("cb", &[phone.as_str(), &day])
    } else {
        derived_id("cb", &[conversation.as_str()])
    };
    let task = deps
        .store
        .create_task(&CallbackTask {
            task_id: task_id.clone(),
            kind: "callback".into(),
            status: "open".into(),
            due: due.to_string(),
            phone: Some(phone.to_string()),
            name: name.clone(),
            reason: reason.clone(),
            conversation_id: (conversation.as_str() != "tool").then(|| conversation.to_string()),
            created_at: now.to_string(),
        })
        .await?;
    // A repeat answers with the first promise.
    let due: Timestamp = task.due.parse().unwrap_or(due);
    let local = due.to_zoned(tenant.time_zone());
    let spoken = spoken_datetime(&local);
    let values = BTreeMap::from([
        ("business_name", tenant.business.name.clone()),
        (
            "caller_name",
            name.unwrap_or_else(|| "Unknown caller".into()),
        ),
        ("caller_phone", phone.international()),
        ("summary", reason.unwrap_or_default()),
        ("callback_time", spoken.clone()),
    ]);
    outbox::create_and_queue(
        deps,
        NewMessage {
            id: format!("owner-callback:{task_id}"),
            purpose: "owner_callback",
            audience: Audience::Owner,
            to: tenant.business.owner_phone.clone(),
            body: render(&tenant.templates.owner_callback, &values),
            conversation_id: task.conversation_id.clone(),
            lead_id: None,
        },
    )
    .await?;
    let event = CallbackRequested {
        task_id,
        due: task.due.clone(),
        conversation_id: task.conversation_id.clone(),
    };
    events::publish(deps, &DomainEvent::CallbackRequested(event)).await?;
    Ok(Answer::new(
        "callback",
        json!({
            "ok": true,
            "action": "callback",
            "callback_by": iso_local(&local),
            "callback_spoken": spoken,
            "say": format!("The team aren't available right now. I've asked them to call you back when we open, {spoken}."),
        }),
    ))
}

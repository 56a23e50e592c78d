//! POST /tools/log_call: the agent's structured note of what a call was about and how it ended,
//! kept beside the call record (the post-call webhook adds the transcript later).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::availability::{find_service, list_words};
use super::{bad, Reply, ToolError};
use crate::deps::Deps;
use crate::ids::derived_id;
use crate::store::tasks::CallNote;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Booked,
    Rescheduled,
    Cancelled,
    Information,
    QuoteRequested,
    CallbackRequested,
    LeadCaptured,
    Transferred,
    Complaint,
    Spam,
    WrongNumber,
    Other,
}

impl CallOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::Rescheduled => "rescheduled",
            Self::Cancelled => "cancelled",
            Self::Information => "information",
            Self::QuoteRequested => "quote_requested",
            Self::CallbackRequested => "callback_requested",
            Self::LeadCaptured => "lead_captured",
            Self::Transferred => "transferred",
            Self::Complaint => "complaint",
            Self::Spam => "spam",
            Self::WrongNumber => "wrong_number",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LogCall {
    pub outcome: CallOutcome,
    /// What the call was about and what was agreed, in a sentence or two.
    pub summary: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub caller_name: Option<String>,
    #[serde(default)]
    pub caller_phone: Option<String>,
    pub conversation_id: String,
}

pub async fn log_call(State(deps): State<Arc<Deps>>, headers: HeaderMap, body: Body) -> Response {
    super::run(deps, "log_call", headers, body, handle).await
}

async fn handle(deps: Arc<Deps>, req: LogCall) -> Result<Reply, ToolError> {
    let log_conversation = Some(req.conversation_id.clone());
    let tenant = deps.tenant().await?;
    let conversation = super::conversation(Some(&req.conversation_id))?
        .ok_or_else(|| bad("conversation_id", "The conversation id is missing."))?;
    let summary = super::text(
        "summary",
        Some(&req.summary),
        1000,
        "Please keep the summary to a few sentences.",
    )?
    .ok_or_else(|| bad("summary", "What was the call about, in a sentence?"))?;
    let service = match super::text("service", req.service.as_deref(), 100, "Which service?")? {
        None => None,
        Some(said) => Some(find_service(&tenant, &said).ok_or_else(|| {
            let names: Vec<&str> = tenant.services.iter().map(|s| s.name.as_str()).collect();
            bad(
                "service",
                format!("That isn't one of our services: {}.", list_words(&names)),
            )
        })?),
    };
    let name = super::text(
        "caller_name",
        req.caller_name.as_deref(),
        100,
        "Could you tell me the caller's name again?",
    )?;
    let phone = super::caller_id(req.caller_phone.as_deref(), &tenant);
    let outcome = req.outcome.as_str();
    let note = CallNote {
        // The same note logged twice (a retried tool call) is one note.
        note_id: derived_id("note", &[conversation.as_str(), outcome, &summary]),
        conversation_id: conversation.to_string(),
        outcome: outcome.to_string(),
        summary,
        service_id: service.map(|s| s.id.clone()),
        phone: phone.map(|p| p.to_string()),
        name,
        logged_at: deps.now().to_string(),
    };
    let new = deps.store.save_call_note(&conversation, &note).await?;
    Ok((
        if new { "logged" } else { "already_logged" }.into(),
        json!({"ok": true, "logged": true, "note_id": note.note_id, "say": "Noted."}),
        log_conversation,
    ))
}

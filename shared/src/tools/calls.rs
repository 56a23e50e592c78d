//! POST /tools/log_call: the agent's structured note of what a call was about and how it ended,
//! kept beside the call record (the post-call webhook adds the transcript later).

use serde::Deserialize;
use serde_json::json;

use super::{bad, Answer, ToolError};
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

/// `POST /tools/log_call`: the agent's note of the call, stored once per content.
pub async fn log_call(deps: &Deps, req: LogCall) -> Result<Answer, ToolError> {
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
    let service = match super::line("service", req.service.as_deref(), 100, "Which service?")? {
        None => None,
        Some(said) => Some(tenant.find_service(&said).ok_or_else(|| {
            bad(
                "service",
                format!(
                    "That isn't one of our services: {}.",
                    tenant.service_names()
                ),
            )
        })?),
    };
    let name = super::line(
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
    Ok(Answer::new(
        if new { "logged" } else { "already_logged" },
        json!({"ok": true, "logged": true, "note_id": note.note_id, "say": "Noted."}),
    ))
}

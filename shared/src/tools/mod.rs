//! The ElevenLabs agent's tools: small JSON in, small speakable JSON out, during a live call.
//!
//! Each tool is a plain `async fn(&Deps, Request) -> Result<Answer, ToolError>`: the route
//! table ([`crate::http::routes`]) checks the tool secret and reads the body into `Request`,
//! then calls it. Business outcomes (slot taken, outside hours) are answers with a code and a
//! sentence the agent can say; only malformed requests are errors, also with a sentence.

pub mod availability;
pub mod booking;
pub mod booking_change;
pub mod caller;
pub mod calls;
pub mod escalation;
pub mod leads;

use serde::Serialize;
use serde_json::{json, Value};
use tracing::error;

use crate::deps::TenantError;
use crate::error::DependencyError;
use crate::ids::ConversationId;
use crate::phone::PhoneNumber;
use crate::tenant::TenantConfig;

/// What a tool says back: the JSON the agent reads, and a word for the request's log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `booked`, `slot_taken`, `captured_hot`...: what happened, for the log and metrics.
    pub outcome: &'static str,
    pub body: Value,
}

impl Answer {
    pub fn new(outcome: &'static str, body: Value) -> Self {
        Self { outcome, body }
    }

    /// A business refusal the agent says as it is: `code` is both the outcome and the body's.
    pub fn refusal(code: &'static str, say: impl Into<String>) -> Self {
        Self::new(code, json!({"ok": false, "code": code, "say": say.into()}))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// A field is missing or wrong: the sentence says which, for the agent to ask again.
    BadRequest { field: String, say: String },
    /// Our side failed; the agent should apologise and offer a callback.
    Unavailable,
}

impl From<DependencyError> for ToolError {
    fn from(e: DependencyError) -> Self {
        error!(error = %e, "tool dependency failed");
        Self::Unavailable
    }
}

impl From<TenantError> for ToolError {
    fn from(e: TenantError) -> Self {
        error!(error = %e, "tool cannot load the business configuration");
        Self::Unavailable
    }
}

pub fn bad(field: &str, say: impl Into<String>) -> ToolError {
    ToolError::BadRequest {
        field: field.to_string(),
        say: say.into(),
    }
}

/// A JSON answer from a serialisable value.
pub fn answer<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|_| json!({"ok": false}))
}

/// Free text the model writes (a summary, a reason, notes): trimmed, line breaks become spaces,
/// empty is absent, too long is a 400 naming the field.
pub fn text(
    field: &str,
    raw: Option<&str>,
    max_chars: usize,
    say: &str,
) -> Result<Option<String>, ToolError> {
    let cleaned = raw.map(|t| {
        t.split(['\n', '\r', '\t'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    });
    match cleaned.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if t.chars().count() > max_chars || t.chars().any(char::is_control) => {
            Err(bad(field, say))
        }
        Some(t) => Ok(Some(t)),
    }
}

/// A one-line value (a name, a service): trimmed, empty is absent, and a line break or any
/// other control character is a 400 like a value that is too long.
pub fn line(
    field: &str,
    raw: Option<&str>,
    max_chars: usize,
    say: &str,
) -> Result<Option<String>, ToolError> {
    match raw.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if t.chars().count() > max_chars || t.chars().any(char::is_control) => {
            Err(bad(field, say))
        }
        Some(t) => Ok(Some(t.to_string())),
    }
}

/// The caller id ElevenLabs fills from `system__caller_id`: a withheld or odd one is no number,
/// never an error the caller cannot fix.
pub fn caller_id(raw: Option<&str>, tenant: &TenantConfig) -> Option<PhoneNumber> {
    raw.map(str::trim)
        .filter(|p| !p.is_empty())
        .and_then(|p| PhoneNumber::parse(p, Some(&tenant.business.country)).ok())
}

/// A phone number the caller said, in the business's country by default. Absent means "the
/// number they are calling from"; anything given must be a number (digits and the usual
/// spacing), or the agent asks again.
pub fn phone(
    field: &str,
    raw: Option<&str>,
    tenant: &TenantConfig,
) -> Result<Option<PhoneNumber>, ToolError> {
    let Some(said) = raw else {
        return Ok(None);
    };
    let spelt_as_number = said
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.' | '/'))
        && said.chars().any(|c| c.is_ascii_digit());
    spelt_as_number
        .then(|| PhoneNumber::parse(said, Some(&tenant.business.country)).ok())
        .flatten()
        .map(Some)
        .ok_or_else(|| {
            bad(
                field,
                "That phone number doesn't look right. Could you say it again?",
            )
        })
}

/// The conversation id the tool definitions fill from `system__conversation_id`.
pub fn conversation(raw: Option<&str>) -> Result<Option<ConversationId>, ToolError> {
    match raw.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => ConversationId::parse(c)
            .map(Some)
            .map_err(|_| bad("conversation_id", "The conversation id is malformed.")),
    }
}

/// The conversation a write belongs to; tools called outside a call (tests, the text channel
/// before it has an id) are filed under one "tool" conversation.
pub fn conversation_or_tool(c: Option<ConversationId>) -> ConversationId {
    c.unwrap_or_else(|| ConversationId::parse("tool").expect("valid id"))
}

/// The first word of a name, for a friendly greeting.
pub fn first_name(name: &str) -> String {
    name.split_whitespace()
        .next()
        .unwrap_or("there")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> TenantConfig {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../prompts/demo/business.toml");
        TenantConfig::from_toml(&std::fs::read_to_string(path).unwrap(), path).unwrap()
    }

    #[test]
    fn a_stated_phone_must_be_a_number_and_only_absence_means_the_callers_own() {
        let tenant = demo();
        assert_eq!(phone("phone", None, &tenant), Ok(None));
        for wrong in ["", "  ", "07911 12345a", "call me", "+44 7911 CALLME"] {
            assert_eq!(
                phone("phone", Some(wrong), &tenant).unwrap_err(),
                bad(
                    "phone",
                    "That phone number doesn't look right. Could you say it again?"
                ),
                "{wrong:?}"
            );
        }
        assert_eq!(
            phone("phone", Some("07911 123456"), &tenant)
                .unwrap()
                .unwrap()
                .as_str(),
            "+447911123456"
        );
    }

    #[test]
    fn names_are_one_line_and_free_text_may_break_lines() {
        assert!(line("name", Some("Bob\nSmith"), 100, "Name?").is_err());
        assert!(line("name", Some("Bob\u{0}Smith"), 100, "Name?").is_err());
        assert_eq!(
            line("name", Some("  Bob Smith "), 100, "Name?").unwrap(),
            Some("Bob Smith".into())
        );
        assert_eq!(
            text("summary", Some("Leak\nunder the sink"), 100, "?").unwrap(),
            Some("Leak under the sink".into())
        );
        assert!(text("summary", Some("Leak\u{7}"), 100, "?").is_err());
    }
}

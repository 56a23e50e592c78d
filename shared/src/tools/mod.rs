//! The ElevenLabs agent's tools: small JSON in, small speakable JSON out, during a live call.
//!
//! Every tool request carries the tenant's tool secret in a header (ElevenLabs does not sign
//! tool calls; a secret header is the platform's model) and a flat JSON body whose fields the
//! tool definitions in prompts/<tenant>/tools/ describe. Business outcomes (slot taken, outside
//! hours) are 200 answers with a code and a sentence the agent can say; only malformed requests
//! are 4xx, also with a sentence.

pub mod availability;
pub mod booking;
pub mod booking_change;
pub mod caller;
pub mod calls;
pub mod escalation;
pub mod leads;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;
use tracing::{error, info};

use crate::deps::{Deps, TenantError};
use crate::error::DependencyError;
use crate::ids::ConversationId;
use crate::phone::PhoneNumber;
use crate::tenant::TenantConfig;

/// What a tool handler gives back: an outcome for the log line, the answer, and the
/// conversation it was for (also for the log line).
pub type Reply = (String, serde_json::Value, Option<String>);

/// The header the tool definitions send the tenant's tool secret in.
pub const SECRET_HEADER: &str = "x-frontdesk-tool-secret";
/// Tool bodies are a few hundred bytes; anything near this is not from the agent.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub enum ToolError {
    Unauthorized,
    /// A field is missing or wrong: the sentence says which, for the agent to ask again.
    BadRequest {
        field: String,
        say: String,
    },
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

impl IntoResponse for ToolError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"ok": false, "code": "unauthorized", "say": "I can't reach our booking system right now."}),
            ),
            Self::BadRequest { field, say } => (
                StatusCode::BAD_REQUEST,
                json!({"ok": false, "code": "bad_request", "field": field, "say": say}),
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"ok": false, "code": "unavailable", "say": "Sorry, our booking system isn't answering just now. I can take your details and have someone call you back."}),
            ),
        };
        (status, Json(body)).into_response()
    }
}

pub fn bad(field: &str, say: impl Into<String>) -> ToolError {
    ToolError::BadRequest {
        field: field.to_string(),
        say: say.into(),
    }
}

/// Constant-time check of the tool secret header.
pub fn authorize(deps: &Deps, headers: &HeaderMap) -> Result<(), ToolError> {
    authorize_secret(deps.secrets.tool_secret.as_deref(), headers)
}

/// The check itself, against the configured secret (`None`: refuse everything).
pub fn authorize_secret(expected: Option<&str>, headers: &HeaderMap) -> Result<(), ToolError> {
    let Some(expected) = expected else {
        error!("TOOL_SECRET is not configured: every tool call is refused");
        return Err(ToolError::Unauthorized);
    };
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    // Compare MACs of both, so neither length nor content leaks through timing.
    let mac = |v: &[u8]| {
        let mut m =
            Hmac::<Sha256>::new_from_slice(b"frontdesk-tool-secret").expect("any key length");
        m.update(v);
        m
    };
    let expected_tag = mac(expected.as_bytes()).finalize().into_bytes();
    if !given.is_empty() && mac(given).verify_slice(&expected_tag).is_ok() {
        Ok(())
    } else {
        Err(ToolError::Unauthorized)
    }
}

/// Reads and parses a flat JSON body; a wrong field is named in the answer.
pub async fn read_json<T: DeserializeOwned>(body: Body) -> Result<T, ToolError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| bad("body", "That request was too large."))?;
    // Serde would also read a struct from a JSON array; tool bodies are objects.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(bad("body", "The request must be a JSON object."));
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." || field == "?" {
            "body".to_string()
        } else {
            field
        };
        bad(
            &field,
            format!("The {field} given was not understood: {}.", e.into_inner()),
        )
    })
}

/// Runs one tool call: auth, the handler, one structured log line (no personal data).
pub async fn run<T, F, Fut>(
    deps: Arc<Deps>,
    tool: &'static str,
    headers: HeaderMap,
    body: Body,
    handler: F,
) -> Response
where
    T: DeserializeOwned,
    F: FnOnce(Arc<Deps>, T) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, ToolError>>,
{
    let started = Instant::now();
    let result = async {
        authorize(&deps, &headers)?;
        let request: T = read_json(body).await?;
        handler(deps.clone(), request).await
    }
    .await;
    let latency_us = started.elapsed().as_micros() as u64;
    let tenant = deps.config.tenant.as_str();
    match result {
        Ok((outcome, answer, conversation)) => {
            // Only a well-formed id is logged: the field is free text to anyone with the secret.
            let conversation = conversation
                .as_deref()
                .and_then(|c| ConversationId::parse(c).ok());
            info!(
                tool,
                tenant,
                conversation_id = conversation.as_ref().map(|c| c.as_str()).unwrap_or("-"),
                outcome,
                latency_us,
                status = 200,
                "tool call"
            );
            (StatusCode::OK, Json(answer)).into_response()
        }
        Err(e) => {
            let outcome = match &e {
                ToolError::Unauthorized => "unauthorized".to_string(),
                ToolError::BadRequest { field, .. } => format!("bad_request:{field}"),
                ToolError::Unavailable => "unavailable".to_string(),
            };
            let response = e.into_response();
            info!(
                tool,
                tenant,
                outcome,
                latency_us,
                status = response.status().as_u16(),
                "tool call"
            );
            response
        }
    }
}

/// A JSON answer from a serialisable value.
pub fn answer<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_else(|_| json!({"ok": false}))
}

/// A trimmed optional text field: empty is absent, too long is a 400 naming the field.
pub fn text(
    field: &str,
    raw: Option<&str>,
    max_chars: usize,
    say: &str,
) -> Result<Option<String>, ToolError> {
    // The model writes these: a line break is spacing, other control characters are not text.
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

/// The caller id ElevenLabs fills from `system__caller_id`: a withheld or odd one is no number,
/// never an error the caller cannot fix.
pub fn caller_id(raw: Option<&str>, tenant: &TenantConfig) -> Option<PhoneNumber> {
    raw.map(str::trim)
        .filter(|p| !p.is_empty())
        .and_then(|p| PhoneNumber::parse(p, Some(&tenant.business.country)).ok())
}

/// A phone number the caller said, in the business's country by default: a wrong one is asked
/// again.
pub fn phone(
    field: &str,
    raw: Option<&str>,
    tenant: &TenantConfig,
) -> Result<Option<PhoneNumber>, ToolError> {
    match raw.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => PhoneNumber::parse(p, Some(&tenant.business.country))
            .map(Some)
            .map_err(|_| {
                bad(
                    field,
                    "That phone number doesn't look right. Could you say it again?",
                )
            }),
    }
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

/// The first word of a name, for a friendly greeting.
pub fn first_name(name: &str) -> String {
    name.split_whitespace()
        .next()
        .unwrap_or("there")
        .to_string()
}

//! The ElevenLabs agent's tools: small JSON in, small speakable JSON out, during a live call.
//!
//! Every tool request carries the tenant's tool secret in a header (ElevenLabs does not sign
//! tool calls; a secret header is the platform's model) and a flat JSON body whose fields the
//! tool definitions in prompts/<tenant>/tools/ describe. Business outcomes (slot taken, outside
//! hours) are 200 answers with a code and a sentence the agent can say; only malformed requests
//! are 4xx, also with a sentence.

pub mod availability;
pub mod booking;

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
    let Some(expected) = deps.secrets.tool_secret.as_deref() else {
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
    Fut: std::future::Future<
        Output = Result<(String, serde_json::Value, Option<String>), ToolError>,
    >,
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
            info!(
                tool,
                tenant,
                conversation_id = conversation.as_deref().unwrap_or("-"),
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

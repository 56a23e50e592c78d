//! HTTP entry points. Each function's router runs unchanged on Lambda (`lambda_http::run`) and
//! in the local server, which merges them all. Handlers translate; status codes are chosen here
//! and only here ([`ApiError`]).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use tracing::{error, info, warn};

use crate::deps::Deps;
use crate::elevenlabs::signature::{self, SignatureError};
use crate::post_call::{self, IntakeError};

pub const POST_CALL_PATH: &str = "/webhooks/elevenlabs/post-call";

/// Every HTTP route: (method, path, function). template.yaml must declare exactly these
/// (checked by a test).
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("POST", POST_CALL_PATH, "post-call"),
    ("POST", CHECK_AVAILABILITY_PATH, "check-availability"),
    ("POST", CREATE_BOOKING_PATH, "create-booking"),
];

pub const CHECK_AVAILABILITY_PATH: &str = "/tools/check_availability";
pub const CREATE_BOOKING_PATH: &str = "/tools/create_booking";

/// The check_availability tool's route.
pub fn check_availability_routes(deps: Arc<Deps>) -> Router {
    Router::new()
        .route(
            CHECK_AVAILABILITY_PATH,
            post(crate::tools::availability::check_availability),
        )
        .with_state(deps)
}

/// The create_booking tool's route.
pub fn create_booking_routes(deps: Arc<Deps>) -> Router {
    Router::new()
        .route(
            CREATE_BOOKING_PATH,
            post(crate::tools::booking::create_booking),
        )
        .with_state(deps)
}

#[derive(Debug)]
pub enum ApiError {
    PayloadTooLarge {
        limit: usize,
    },
    Unauthorized(SignatureError),
    BadRequest(String),
    /// Our side is not ready (a dependency or configuration); the sender should retry.
    Unavailable,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("body exceeds {limit} bytes"),
            ),
            Self::Unauthorized(e) => (StatusCode::UNAUTHORIZED, "invalid_signature", e.to_string()),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "temporarily unable to accept this; retry later".into(),
            ),
        };
        (status, Json(json!({ "error": code, "message": message }))).into_response()
    }
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
            .any(|e| e.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::BadRequest("the request body could not be read".into())
        }
    })
}

/// The post-call function's routes (no fallback: the local server merges routers).
pub fn post_call_routes(deps: Arc<Deps>) -> Router {
    Router::new()
        .route(POST_CALL_PATH, post(post_call_webhook))
        .with_state(deps)
}

/// Unknown paths get a JSON 404 instead of an empty body.
pub fn with_fallback(router: Router) -> Router {
    router.fallback(not_found)
}

pub async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not_found", "message": "no such route" })),
    )
}

/// `POST /webhooks/elevenlabs/post-call`: verify, store durably, answer 200 fast.
async fn post_call_webhook(
    State(deps): State<Arc<Deps>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let result = accept_post_call(&deps, &headers, body).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let tenant = deps.config.tenant.as_str();
    match result {
        Ok((outcome, event_type, conversation_id)) => {
            info!(
                route = POST_CALL_PATH,
                tenant,
                status = 200,
                outcome,
                event_type,
                conversation_id,
                latency_ms,
                "request"
            );
            (StatusCode::OK, Json(json!({ "status": outcome }))).into_response()
        }
        Err(e) => {
            let outcome = match &e {
                ApiError::PayloadTooLarge { .. } => "too_large".to_string(),
                ApiError::Unauthorized(reason) => format!("unauthorized: {reason}"),
                ApiError::BadRequest(_) => "bad_request".to_string(),
                ApiError::Unavailable => "unavailable".to_string(),
            };
            let response = e.into_response();
            warn!(
                route = POST_CALL_PATH,
                tenant,
                status = response.status().as_u16(),
                outcome,
                latency_ms,
                "request refused"
            );
            response
        }
    }
}

async fn accept_post_call(
    deps: &Deps,
    headers: &HeaderMap,
    body: Body,
) -> Result<(&'static str, String, String), ApiError> {
    let raw = read_body(body, deps.config.max_body_bytes).await?;
    let Some(secret) = deps.secrets.elevenlabs_webhook_secret.as_deref() else {
        error!("ELEVENLABS_WEBHOOK_SECRET is not configured: every post-call webhook is refused");
        return Err(ApiError::Unavailable);
    };
    let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    signature::verify(&raw, header, secret.as_bytes(), deps.now())
        .map_err(ApiError::Unauthorized)?;
    match post_call::intake(deps, &raw).await {
        Ok((outcome, event)) => {
            let event_type = event
                .as_ref()
                .map(|e| e.kind().to_string())
                .unwrap_or_default();
            let conversation = event
                .as_ref()
                .and_then(|e| e.conversation_id())
                .map(|c| c.to_string())
                .unwrap_or_default();
            Ok((outcome.as_str(), event_type, conversation))
        }
        Err(IntakeError::BadPayload(e)) => Err(ApiError::BadRequest(e.to_string())),
        Err(IntakeError::Dependency(e)) => {
            error!(error = %e, "intake failed before the webhook was durable");
            Err(ApiError::Unavailable)
        }
    }
}

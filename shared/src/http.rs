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

/// One HTTP route and the Lambda function that serves it.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The function's crate and binary name (`functions/<function>`).
    pub function: &'static str,
    router: fn(Arc<Deps>) -> Router,
}

impl Route {
    pub fn router(&self, deps: Arc<Deps>) -> Router {
        (self.router)(deps)
    }
}

pub const CHECK_AVAILABILITY_PATH: &str = "/tools/check_availability";
pub const CREATE_BOOKING_PATH: &str = "/tools/create_booking";
pub const CONVERSATION_INIT_PATH: &str = "/webhooks/elevenlabs/conversation-init";

/// A router serving one handler at one path with POST.
macro_rules! post_route {
    ($name:ident, $path:expr, $handler:path) => {
        fn $name(deps: Arc<Deps>) -> Router {
            Router::new().route($path, post($handler)).with_state(deps)
        }
    };
}

post_route!(post_call_router, POST_CALL_PATH, post_call_webhook);
post_route!(
    conversation_init_router,
    CONVERSATION_INIT_PATH,
    crate::tools::caller::conversation_init
);
post_route!(
    check_availability_router,
    CHECK_AVAILABILITY_PATH,
    crate::tools::availability::check_availability
);
post_route!(
    create_booking_router,
    CREATE_BOOKING_PATH,
    crate::tools::booking::create_booking
);
post_route!(
    update_booking_router,
    "/tools/update_booking",
    crate::tools::booking_change::update_booking
);
post_route!(
    upsert_contact_router,
    "/tools/upsert_contact",
    crate::tools::caller::upsert_contact
);
post_route!(
    capture_lead_router,
    "/tools/capture_lead",
    crate::tools::leads::capture_lead
);
post_route!(
    dispatch_lead_router,
    "/tools/dispatch_lead",
    crate::tools::leads::dispatch_lead
);
post_route!(
    escalation_target_router,
    "/tools/escalation_target",
    crate::tools::escalation::escalation_target
);
post_route!(
    log_call_router,
    "/tools/log_call",
    crate::tools::calls::log_call
);

/// Every HTTP route. template.yaml must declare exactly these (checked by a test), and each
/// function binary serves the routes named after it.
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: POST_CALL_PATH,
        function: "post-call",
        router: post_call_router,
    },
    Route {
        method: "POST",
        path: CONVERSATION_INIT_PATH,
        function: "conversation-init",
        router: conversation_init_router,
    },
    Route {
        method: "POST",
        path: CHECK_AVAILABILITY_PATH,
        function: "check-availability",
        router: check_availability_router,
    },
    Route {
        method: "POST",
        path: CREATE_BOOKING_PATH,
        function: "create-booking",
        router: create_booking_router,
    },
    Route {
        method: "POST",
        path: "/tools/update_booking",
        function: "update-booking",
        router: update_booking_router,
    },
    Route {
        method: "POST",
        path: "/tools/upsert_contact",
        function: "upsert-contact",
        router: upsert_contact_router,
    },
    Route {
        method: "POST",
        path: "/tools/capture_lead",
        function: "capture-lead",
        router: capture_lead_router,
    },
    Route {
        method: "POST",
        path: "/tools/dispatch_lead",
        function: "dispatch-lead",
        router: dispatch_lead_router,
    },
    Route {
        method: "POST",
        path: "/tools/escalation_target",
        function: "escalation-target",
        router: escalation_target_router,
    },
    Route {
        method: "POST",
        path: "/tools/log_call",
        function: "log-call",
        router: log_call_router,
    },
];

/// The routes one function serves, with a JSON 404 for anything else. A function with no
/// routes would be a packaging mistake: it serves only the 404.
pub fn function_router(function: &str, deps: Arc<Deps>) -> Router {
    let router = ROUTES
        .iter()
        .filter(|r| r.function == function)
        .fold(Router::new(), |router, r| {
            router.merge(r.router(deps.clone()))
        });
    with_fallback(router)
}

/// Every route on one router (the local server and the black-box tests).
pub fn all_routes(deps: Arc<Deps>) -> Router {
    let router = ROUTES.iter().fold(Router::new(), |router, r| {
        router.merge(r.router(deps.clone()))
    });
    with_fallback(router)
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

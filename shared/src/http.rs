//! HTTP entry points: the one route table, and the one place a request becomes a response.
//!
//! From the README to the code in three hops: a route is a row of [`routes`], the row names its
//! handler (a tool in `tools/`, or a webhook below), and the handler calls the domain. A new
//! route is one row in its function's [`rows`] and one handler.
//!
//! Every request of every route goes through [`serve`]: the clock it runs at, its credentials,
//! its body, the status of every error, and its one log line. Each function binary serves only
//! its own rows on Lambda (`lambda_http::run(function_router(..))`); the local server and the
//! black-box tests serve every row on one router ([`all_routes`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sha2::Sha256;
use tracing::{error, info, warn};

use crate::deps::Deps;
use crate::elevenlabs::signature;
use crate::ids::ConversationId;
use crate::messaging::{self, web_form};
use crate::metrics;
use crate::outbox;
use crate::post_call::{self, IntakeError};
use crate::qa::{self, auth, QaError, Reviewer};
use crate::tools::{
    availability, booking, booking_change, caller, calls, escalation, leads, Answer, ToolError,
};
use crate::twilio::signature as twilio_signature;

pub const POST_CALL_PATH: &str = "/webhooks/elevenlabs/post-call";
pub const CONVERSATION_INIT_PATH: &str = "/webhooks/elevenlabs/conversation-init";
pub const TWILIO_MESSAGING_PATH: &str = "/webhooks/twilio/messaging";
pub const WEB_FORM_PATH: &str = "/webhooks/web-form";
/// Twilio's bodies are a few dozen short parameters.
const MAX_TWILIO_BODY: usize = 64 * 1024;
/// What Twilio is answered when we have nothing to say there (replies go through the outbox).
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// The header the tool definitions send the tenant's tool secret in.
pub const TOOL_SECRET_HEADER: &str = "x-frontdesk-tool-secret";
/// Local runs only: the time a request runs at (RFC 3339), to replay a conversation as of a day.
pub const NOW_HEADER: &str = "x-frontdesk-now";
/// Tool bodies are a few hundred bytes; anything near this is not from the agent.
const MAX_TOOL_BODY: usize = 64 * 1024;
/// Tool bodies are flat objects; deeper than this is not a body any agent sends.
const MAX_TOOL_BODY_DEPTH: usize = 8;

/// The route table: every function's rows, in this order. template.yaml declares exactly
/// these (a test checks).
pub fn routes() -> &'static [Route] {
    static ROUTES: LazyLock<Vec<Route>> =
        LazyLock::new(|| FUNCTIONS.iter().flat_map(|rows| rows()).collect());
    &ROUTES
}

/// The HTTP functions, each by its rows of the table.
const FUNCTIONS: [fn() -> Vec<Route>; 14] = [
    rows::post_call,
    rows::conversation_init,
    rows::check_availability,
    rows::create_booking,
    rows::update_booking,
    rows::upsert_contact,
    rows::capture_lead,
    rows::dispatch_lead,
    rows::escalation_target,
    rows::log_call,
    rows::twilio_messaging,
    rows::twilio_status,
    rows::web_form,
    rows::qa_api,
];

/// The route table by function. A function binary names only its own rows
/// (`function_router(env!("CARGO_PKG_NAME"), http::rows::check_availability, ..)`), so
/// link-time optimisation leaves every other handler out of its artefact.
pub mod rows {
    use super::*;

    pub fn post_call() -> Vec<Route> {
        vec![Route::webhook(
            POST_CALL_PATH,
            "post-call",
            post_call_webhook,
        )]
    }

    pub fn conversation_init() -> Vec<Route> {
        vec![Route::tool(
            CONVERSATION_INIT_PATH,
            "conversation-init",
            caller::conversation_init,
        )]
    }

    pub fn check_availability() -> Vec<Route> {
        vec![Route::tool(
            "/tools/check_availability",
            "check-availability",
            availability::check_availability,
        )]
    }

    pub fn create_booking() -> Vec<Route> {
        vec![Route::tool(
            "/tools/create_booking",
            "create-booking",
            booking::create_booking,
        )]
    }

    pub fn update_booking() -> Vec<Route> {
        vec![Route::tool(
            "/tools/update_booking",
            "update-booking",
            booking_change::update_booking,
        )]
    }

    pub fn upsert_contact() -> Vec<Route> {
        vec![Route::tool(
            "/tools/upsert_contact",
            "upsert-contact",
            caller::upsert_contact,
        )]
    }

    pub fn capture_lead() -> Vec<Route> {
        vec![Route::tool(
            "/tools/capture_lead",
            "capture-lead",
            leads::capture_lead,
        )]
    }

    pub fn dispatch_lead() -> Vec<Route> {
        vec![Route::tool(
            "/tools/dispatch_lead",
            "dispatch-lead",
            leads::dispatch_lead,
        )]
    }

    pub fn escalation_target() -> Vec<Route> {
        vec![Route::tool(
            "/tools/escalation_target",
            "escalation-target",
            escalation::escalation_target,
        )]
    }

    pub fn log_call() -> Vec<Route> {
        vec![Route::tool("/tools/log_call", "log-call", calls::log_call)]
    }

    pub fn twilio_messaging() -> Vec<Route> {
        vec![Route::twilio(
            TWILIO_MESSAGING_PATH,
            "twilio-messaging",
            super::twilio_messaging,
        )]
    }

    pub fn twilio_status() -> Vec<Route> {
        vec![Route::twilio(
            outbox::STATUS_PATH,
            "twilio-status",
            super::twilio_status,
        )]
    }

    pub fn web_form() -> Vec<Route> {
        vec![Route::webhook(WEB_FORM_PATH, "web-form", super::web_form)
            .limited(web_form::MAX_FORM_BYTES)]
    }

    pub fn qa_api() -> Vec<Route> {
        vec![
            Route::reviewer("GET", "/qa/flags", "qa-api", qa_flags),
            Route::reviewer("GET", "/qa/calls/{conversation_id}", "qa-api", qa_call),
            Route::reviewer("POST", "/qa/flags/{id}", "qa-api", qa_resolve),
            Route::reviewer("GET", "/qa/rules", "qa-api", qa_rules),
            Route::reviewer("POST", "/leads/{id}/quoted", "qa-api", lead_quoted),
            Route::page("/qa", "qa-api", qa::CONSOLE),
        ]
    }
}

/// One HTTP route and the Lambda function that serves it.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The function's crate and binary name (`functions/<function>`).
    pub function: &'static str,
    /// Who calls it, which decides how its errors are worded.
    pub caller: Caller,
    handler: Handler,
    /// A tighter body limit than its caller kind's.
    max_body: Option<usize>,
}

/// Tool routes answer the voice agent, which reads `say` aloud; webhooks answer machines; QA
/// routes answer the reviewers' console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Agent,
    Webhook,
    Reviewer,
    /// A browser loading a static page (the reviewers' console).
    Page,
    /// Twilio's webhooks: signed with `X-Twilio-Signature`, answered with TwiML.
    Twilio,
}

/// A Twilio webhook's parameters, after its signature was checked against them.
pub struct TwilioRequest {
    pub params: Vec<(String, String)>,
}

/// A request as a handler sees it: the headers and the whole body, already read.
pub struct Request {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A reviewer's request, authenticated: who, the path's `{parameters}`, the query, the body.
pub struct ReviewerRequest {
    pub reviewer: Reviewer,
    pub params: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub body: Bytes,
}

/// What a handler answered (200 with this JSON), and what its log line says about it.
pub struct Reply {
    pub body: Value,
    pub outcome: String,
    /// Logged only when it is a well-formed id (it is free text to anyone with the secret).
    pub conversation_id: Option<String>,
    pub event_type: Option<String>,
}

/// Every way a request can fail, mapped to a status in [`error_response`] and nowhere else.
#[derive(Debug)]
pub enum HttpError {
    /// No or wrong credentials (tool secret, webhook signature); the reason is for the log.
    Unauthorized(String),
    PayloadTooLarge {
        limit: usize,
    },
    /// A field is missing or wrong: `message` says which, for the sender to fix (the agent
    /// reads it aloud and asks again).
    BadRequest {
        field: String,
        message: String,
    },
    /// Authenticated, but not allowed here (a reviewer of another tenant).
    Forbidden(String),
    NotFound(&'static str),
    /// The request contradicts what was already decided.
    Conflict(String),
    /// Our side is not ready (a dependency or configuration); the sender should retry.
    Unavailable,
}

type Served = Pin<Box<dyn Future<Output = Result<Reply, HttpError>> + Send>>;
type Handler = Arc<dyn Fn(Arc<Deps>, Inbound) -> Served + Send + Sync>;

/// Everything `serve` read of a request, for the handler to take what its kind needs.
struct Inbound {
    request: Request,
    path: String,
    query: Option<String>,
    host: Host,
    /// Claims the HTTP API's JWT authorizer verified (Lambda only).
    verified_claims: Option<HashMap<String, String>>,
}

/// An `async fn(&Deps, In) -> Out`, named so the route table can hold any of them (the future
/// borrows the `Deps`, which a plain `Fn` bound cannot say).
pub trait Endpoint<'a, In, Out>: Fn(&'a Deps, In) -> Self::Fut {
    type Fut: Future<Output = Out> + Send + 'a;
}

impl<'a, In, Out, F, Fut> Endpoint<'a, In, Out> for F
where
    F: Fn(&'a Deps, In) -> Fut,
    Fut: Future<Output = Out> + Send + 'a,
{
    type Fut = Fut;
}

impl Route {
    /// An agent tool: the tool secret header, a flat JSON body of the tool's request type, and
    /// the tool's speakable answer. The tool's name in the log line is the path's last part.
    fn tool<T, F>(path: &'static str, function: &'static str, tool: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: for<'a> Endpoint<'a, T, Result<Answer, ToolError>> + Copy + Send + Sync + 'static,
    {
        let handler: Handler = Arc::new(move |deps: Arc<Deps>, inbound: Inbound| -> Served {
            Box::pin(async move {
                let request = inbound.request;
                authorize_tool(deps.secrets.tool_secret.as_deref(), &request.headers)?;
                let body = read_tool_body::<T>(&request.body)?;
                if !body.unknown_fields.is_empty() {
                    note_unknown_fields(&deps, path, &body.unknown_fields);
                }
                let answer = tool(&deps, body.request).await?;
                Ok(Reply {
                    body: answer.body,
                    outcome: answer.outcome.to_string(),
                    conversation_id: body.conversation_id,
                    event_type: None,
                })
            })
        });
        Self {
            method: "POST",
            path,
            function,
            caller: Caller::Agent,
            handler,
            max_body: None,
        }
    }

    /// A webhook that checks its own signature over the raw body.
    fn webhook<F>(path: &'static str, function: &'static str, webhook: F) -> Self
    where
        F: for<'a> Endpoint<'a, Request, Result<Reply, HttpError>> + Copy + Send + Sync + 'static,
    {
        let handler: Handler = Arc::new(move |deps: Arc<Deps>, inbound: Inbound| -> Served {
            Box::pin(async move { webhook(&deps, inbound.request).await })
        });
        Self {
            method: "POST",
            path,
            function,
            caller: Caller::Webhook,
            handler,
            max_body: None,
        }
    }

    /// A QA route: a reviewer's verified token (of this stack's tenant), then the handler,
    /// whose JSON answer is the response.
    fn reviewer<F>(
        method: &'static str,
        path: &'static str,
        function: &'static str,
        handler: F,
    ) -> Self
    where
        F: for<'a> Endpoint<'a, ReviewerRequest, Result<Value, QaError>>
            + Copy
            + Send
            + Sync
            + 'static,
    {
        let handler: Handler = Arc::new(move |deps: Arc<Deps>, inbound: Inbound| -> Served {
            Box::pin(async move {
                let reviewer = authorize_reviewer(&deps, &inbound)?;
                let request = ReviewerRequest {
                    reviewer,
                    params: path_params(path, &inbound.path),
                    query: inbound
                        .query
                        .as_deref()
                        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                        .unwrap_or_default(),
                    body: inbound.request.body,
                };
                let conversation_id =
                    request.params.get("conversation_id").cloned().or_else(|| {
                        request
                            .params
                            .get("id")
                            .and_then(|id| id.rsplit_once('.').map(|(c, _)| c.to_string()))
                    });
                let body = handler(&deps, request).await?;
                Ok(Reply {
                    body,
                    outcome: "ok".into(),
                    conversation_id,
                    event_type: None,
                })
            })
        });
        Self {
            method,
            path,
            function,
            caller: Caller::Reviewer,
            handler,
            max_body: None,
        }
    }

    /// A static page: the same bytes for everyone (it holds no data; it signs in and calls the
    /// API like any client).
    fn page(path: &'static str, function: &'static str, html: &'static str) -> Self {
        let handler: Handler = Arc::new(move |_deps: Arc<Deps>, _inbound: Inbound| -> Served {
            Box::pin(async move {
                Ok(Reply {
                    body: Value::String(html.to_string()),
                    outcome: "page".into(),
                    conversation_id: None,
                    event_type: None,
                })
            })
        });
        Self {
            method: "GET",
            path,
            function,
            caller: Caller::Page,
            handler,
            max_body: None,
        }
    }

    /// A Twilio webhook: the signature over the URL Twilio used and every parameter, then the
    /// handler with the parameters; its answer is TwiML.
    fn twilio<F>(path: &'static str, function: &'static str, handler: F) -> Self
    where
        F: for<'a> Endpoint<'a, TwilioRequest, Result<Reply, HttpError>>
            + Copy
            + Send
            + Sync
            + 'static,
    {
        let handler: Handler = Arc::new(move |deps: Arc<Deps>, inbound: Inbound| -> Served {
            Box::pin(async move {
                let params = verify_twilio(&deps, &inbound)?;
                handler(&deps, TwilioRequest { params }).await
            })
        });
        Self {
            method: "POST",
            path,
            function,
            caller: Caller::Twilio,
            handler,
            max_body: Some(MAX_TWILIO_BODY),
        }
    }

    fn limited(mut self, max_body: usize) -> Self {
        self.max_body = Some(max_body);
        self
    }

    fn body_limit(&self, deps: &Deps) -> usize {
        self.max_body.unwrap_or(match self.caller {
            Caller::Agent | Caller::Reviewer | Caller::Page | Caller::Twilio => MAX_TOOL_BODY,
            Caller::Webhook => deps.config.max_body_bytes,
        })
    }

    fn router(&'static self, deps: Arc<Deps>, host: Host) -> Router {
        let serve_it = move |request: axum::extract::Request| {
            let deps = deps.clone();
            let host = host.clone();
            async move { serve(self, deps, host, request).await }
        };
        let method = match self.method {
            "GET" => MethodFilter::GET,
            _ => MethodFilter::POST,
        };
        Router::new().route(self.path, on(method, serve_it))
    }
}

/// The values of a route's `{parameters}` in a request path.
fn path_params(pattern: &str, path: &str) -> HashMap<String, String> {
    pattern
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(p, v)| {
            let name = p.strip_prefix('{')?.strip_suffix('}')?;
            let value = percent_decode(v);
            Some((name.to_string(), value))
        })
        .collect()
}

fn percent_decode(v: &str) -> String {
    form_urlencoded::parse(format!("v={}", v.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The URL Twilio signed: the configured public base URL (what the Twilio console says), else
/// this request's host, then the raw path and query as received.
fn twilio_url(deps: &Deps, inbound: &Inbound) -> String {
    let base = match &deps.config.public_base_url {
        Some(base) => base.clone(),
        None => {
            let host = inbound
                .request
                .headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let scheme = match inbound.host {
                Host::Lambda => "https",
                Host::Local { .. } => "http",
            };
            format!("{scheme}://{host}")
        }
    };
    match &inbound.query {
        Some(q) => format!("{base}{}?{q}", inbound.path),
        None => format!("{base}{}", inbound.path),
    }
}

/// Checks `X-Twilio-Signature`; the verified form parameters (none for a JSON body).
fn verify_twilio(deps: &Deps, inbound: &Inbound) -> Result<Vec<(String, String)>, HttpError> {
    let Some(token) = deps.secrets.twilio_auth_token.as_deref() else {
        error!("TWILIO_AUTH_TOKEN is not configured: every Twilio webhook is refused");
        return Err(HttpError::Unauthorized(
            "no Twilio auth token configured".into(),
        ));
    };
    let headers = &inbound.request.headers;
    let header = headers
        .get(twilio_signature::HEADER)
        .and_then(|v| v.to_str().ok());
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let body = &inbound.request.body;
    let signed = if json {
        twilio_signature::Signed::Json(body)
    } else {
        twilio_signature::Signed::Form(body)
    };
    let url = twilio_url(deps, inbound);
    twilio_signature::verify(token.as_bytes(), &url, signed, header)
        .map_err(|e| HttpError::Unauthorized(e.to_string()))?;
    Ok(if json {
        Vec::new()
    } else {
        twilio_signature::form_params(body)
    })
}

/// The reviewer a QA request comes from, or why not: on Lambda from the claims the authorizer
/// verified (never from a token it did not see); locally from a token checked here.
fn authorize_reviewer(deps: &Deps, inbound: &Inbound) -> Result<Reviewer, HttpError> {
    let tenant_claim = deps.config.qa_tenant_claim.as_str();
    let stack_tenant = deps.config.tenant.as_str();
    let refused = |e: auth::AuthError| match e {
        auth::AuthError::OtherTenant => HttpError::Forbidden(e.to_string()),
        other => HttpError::Unauthorized(other.to_string()),
    };
    let claims = match &inbound.host {
        Host::Lambda => inbound
            .verified_claims
            .clone()
            .ok_or(auth::AuthError::Missing)
            .map_err(refused)?,
        Host::Local { reviewer_key } => {
            let token = inbound
                .request
                .headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or(auth::AuthError::Missing)
                .map_err(refused)?;
            auth::verify_local(
                token.trim(),
                reviewer_key,
                auth::LOCAL_ISSUER,
                auth::LOCAL_AUDIENCE,
                deps.now().as_second(),
            )
            .map_err(refused)?
        }
    };
    auth::reviewer_from_claims(&claims, tenant_claim, stack_tenant).map_err(refused)
}

/// The claims API Gateway's JWT authorizer verified, from the Lambda request context.
fn authorizer_claims(extensions: &axum::http::Extensions) -> Option<HashMap<String, String>> {
    match extensions.get::<lambda_http::request::RequestContext>()? {
        lambda_http::request::RequestContext::ApiGatewayV2(context) => context
            .authorizer
            .as_ref()?
            .jwt
            .as_ref()
            .map(|jwt| jwt.claims.clone()),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Where the routes run, which decides what a request may claim about itself.
#[derive(Clone)]
pub enum Host {
    /// A deployed function: always the real clock ([`NOW_HEADER`] is ignored and logged);
    /// reviewers as the HTTP API's JWT authorizer verified them.
    Lambda,
    /// The local server and the tests: a request may set its time (to replay a day for a
    /// business), and reviewer tokens are checked here against the local key.
    Local { reviewer_key: Arc<[u8]> },
}

/// The routes one function serves (on Lambda): those of `rows` that name it, with a JSON 404
/// for anything else. Rows of another function would be a packaging mistake: it then serves
/// only the 404 (a test reads every function's `main`).
pub fn function_router(function: &str, rows: fn() -> Vec<Route>, deps: Arc<Deps>) -> Router {
    // Built once per cold start and served for the process's life.
    let rows: &'static [Route] = rows().leak();
    rows.iter()
        .filter(|r| r.function == function)
        .fold(Router::new(), |router, r| {
            router.merge(r.router(deps.clone(), Host::Lambda))
        })
        .fallback(not_found)
}

/// Every route on one router: the local server and the black-box tests.
pub fn all_routes(deps: Arc<Deps>, host: Host) -> Router {
    routes()
        .iter()
        .fold(Router::new(), |router, r| {
            router.merge(r.router(deps.clone(), host.clone()))
        })
        .fallback(not_found)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not_found", "message": "no such route" })),
    )
        .into_response()
}

/// One request, whatever its route: its clock, its body, its handler, its status, its log line.
async fn serve(
    route: &Route,
    deps: Arc<Deps>,
    host: Host,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let result = async {
        let deps = at_requested_time(route, deps.clone(), &host, &parts.headers)?;
        let body = read_body(body, route.body_limit(&deps)).await?;
        let inbound = Inbound {
            verified_claims: authorizer_claims(&parts.extensions),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            request: Request {
                headers: parts.headers,
                body,
            },
            host,
        };
        (route.handler)(deps, inbound).await
    }
    .await;
    let latency_us = started.elapsed().as_micros() as u64;
    let tenant = deps.config.tenant.as_str();
    let function = route.function;
    match result {
        Ok(reply) => {
            let conversation = reply
                .conversation_id
                .as_deref()
                .and_then(|c| ConversationId::parse(c).ok());
            info!(
                route = route.path,
                function,
                tenant,
                status = 200,
                outcome = %reply.outcome,
                conversation_id = conversation.as_ref().map(|c| c.as_str()).unwrap_or("-"),
                event_type = reply.event_type.as_deref().unwrap_or("-"),
                latency_us,
                "request"
            );
            match (route.caller, reply.body) {
                (Caller::Page, Value::String(html)) => page_response(html),
                (Caller::Twilio, _) => twiml_response(StatusCode::OK),
                (_, body) => (StatusCode::OK, Json(body)).into_response(),
            }
        }
        Err(e) => {
            let outcome = match &e {
                HttpError::Unauthorized(reason) => format!("unauthorized: {reason}"),
                HttpError::PayloadTooLarge { .. } => "too_large".to_string(),
                HttpError::BadRequest { field, .. } => format!("bad_request:{field}"),
                HttpError::Forbidden(_) => "forbidden".to_string(),
                HttpError::NotFound(what) => format!("not_found:{what}"),
                HttpError::Conflict(_) => "conflict".to_string(),
                HttpError::Unavailable => "unavailable".to_string(),
            };
            let response = error_response(route.caller, e);
            info!(
                route = route.path,
                function,
                tenant,
                status = response.status().as_u16(),
                outcome,
                latency_us,
                "request"
            );
            response
        }
    }
}

/// TwiML for Twilio: always a document (an empty body is Twilio's error 11200), as `text/xml`.
fn twiml_response(status: StatusCode) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        EMPTY_TWIML,
    )
        .into_response()
}

/// A page, with headers that keep it to itself: no framing, no other origins' scripts, the
/// API on its own origin, audio from the presigned links.
fn page_response(html: String) -> Response {
    use axum::http::header;
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; media-src *; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response()
}

/// The status and body of every error, worded for who asked.
pub fn error_response(caller: Caller, e: HttpError) -> Response {
    let (status, body) = match (caller, e) {
        // Twilio reads the status only; the reason is in the log line.
        (Caller::Twilio, e) => {
            let status = match e {
                HttpError::Unauthorized(_) | HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
                HttpError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                HttpError::BadRequest { .. } => StatusCode::BAD_REQUEST,
                HttpError::NotFound(_) => StatusCode::NOT_FOUND,
                HttpError::Conflict(_) => StatusCode::CONFLICT,
                HttpError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            };
            return twiml_response(status);
        }
        (Caller::Agent, HttpError::Unauthorized(_)) => (
            StatusCode::UNAUTHORIZED,
            json!({"ok": false, "code": "unauthorized", "say": "I can't reach our booking system right now."}),
        ),
        (Caller::Agent, HttpError::BadRequest { field, message }) => (
            StatusCode::BAD_REQUEST,
            json!({"ok": false, "code": "bad_request", "field": field, "say": message}),
        ),
        // Not from the agent: worded for it all the same, since it reads whatever comes back.
        (Caller::Agent, HttpError::PayloadTooLarge { .. }) => (
            StatusCode::BAD_REQUEST,
            json!({"ok": false, "code": "bad_request", "field": "body", "say": "That request was too large."}),
        ),
        (Caller::Agent, HttpError::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ok": false, "code": "unavailable", "say": "Sorry, our booking system isn't answering just now. I can take your details and have someone call you back."}),
        ),
        (Caller::Webhook, HttpError::Unauthorized(reason)) => (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_signature", "message": reason}),
        ),
        (Caller::Webhook, HttpError::PayloadTooLarge { limit }) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "payload_too_large", "message": format!("body exceeds {limit} bytes")}),
        ),
        (Caller::Webhook, HttpError::BadRequest { field, message }) => (
            StatusCode::BAD_REQUEST,
            json!({"error": "bad_request", "field": field, "message": message}),
        ),
        (Caller::Webhook, HttpError::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "unavailable", "message": "temporarily unable to accept this; retry later"}),
        ),
        // Auth failures say no more than that: the reason is in the log line.
        (Caller::Reviewer | Caller::Page, HttpError::Unauthorized(_)) => (
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized", "message": "sign in again"}),
        ),
        (_, HttpError::Forbidden(_)) => (
            StatusCode::FORBIDDEN,
            json!({"error": "forbidden", "message": "not allowed for this business"}),
        ),
        (Caller::Reviewer | Caller::Page, HttpError::PayloadTooLarge { limit }) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "payload_too_large", "message": format!("body exceeds {limit} bytes")}),
        ),
        (Caller::Reviewer | Caller::Page, HttpError::BadRequest { field, message }) => (
            StatusCode::BAD_REQUEST,
            json!({"error": "bad_request", "field": field, "message": message}),
        ),
        (_, HttpError::NotFound(what)) => (
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "message": format!("no such {what}")}),
        ),
        (_, HttpError::Conflict(message)) => (
            StatusCode::CONFLICT,
            json!({"error": "conflict", "message": message}),
        ),
        (Caller::Reviewer | Caller::Page, HttpError::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "unavailable", "message": "try again in a moment"}),
        ),
    };
    (status, Json(body)).into_response()
}

impl From<QaError> for HttpError {
    fn from(e: QaError) -> Self {
        match e {
            QaError::BadRequest { field, message } => Self::BadRequest { field, message },
            QaError::NotFound(what) => Self::NotFound(what),
            QaError::Conflict(message) => Self::Conflict(message),
            QaError::Dependency(e) => {
                error!(error = %e, "QA request failed on a dependency");
                Self::Unavailable
            }
        }
    }
}

impl From<ToolError> for HttpError {
    fn from(e: ToolError) -> Self {
        match e {
            ToolError::BadRequest { field, say } => Self::BadRequest {
                field,
                message: say,
            },
            ToolError::Unavailable => Self::Unavailable,
        }
    }
}

/// The deps a request runs with: the stack's, or (local runs only) the same at the time the
/// request asks for.
fn at_requested_time(
    route: &Route,
    deps: Arc<Deps>,
    host: &Host,
    headers: &HeaderMap,
) -> Result<Arc<Deps>, HttpError> {
    let Some(raw) = headers.get(NOW_HEADER) else {
        return Ok(deps);
    };
    if matches!(host, Host::Lambda) {
        warn!(
            route = route.path,
            outcome = "clock_header_ignored",
            "x-frontdesk-now is honoured by the local server only; this request runs on the real clock"
        );
        return Ok(deps);
    }
    let at: jiff::Timestamp = raw
        .to_str()
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| HttpError::BadRequest {
            field: NOW_HEADER.into(),
            message: "x-frontdesk-now must be an RFC 3339 time with an offset, such as 2026-11-23T07:00:00Z.".into(),
        })?;
    Ok(Arc::new(deps.at(at)))
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, HttpError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
            .any(|e| e.is::<http_body_util::LengthLimitError>());
        if too_large {
            HttpError::PayloadTooLarge { limit }
        } else {
            HttpError::BadRequest {
                field: "body".into(),
                message: "The request body could not be read.".into(),
            }
        }
    })
}

/// Constant-time check of the tool secret header against the configured secret (`None`: the
/// stack has none, and every call is refused).
pub fn authorize_tool(expected: Option<&str>, headers: &HeaderMap) -> Result<(), HttpError> {
    let Some(expected) = expected else {
        error!("TOOL_SECRET is not configured: every tool call is refused");
        return Err(HttpError::Unauthorized("no tool secret configured".into()));
    };
    let given = headers
        .get(TOOL_SECRET_HEADER)
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
        Err(HttpError::Unauthorized(
            "wrong or missing tool secret".into(),
        ))
    }
}

/// A tool body, understood: the request, the conversation it names, and the names of fields
/// the request type does not have (ignored, so a parameter added in the agent's settings never
/// fails a live call).
#[derive(Debug)]
pub struct ToolBody<T> {
    pub request: T,
    pub conversation_id: Option<String>,
    pub unknown_fields: Vec<String>,
}

/// Reads a tool body: a flat JSON object, no control characters except line breaks and tabs,
/// then the tool's request type, strictly for the fields it has. A wrong field is named.
pub fn read_tool_body<T: DeserializeOwned>(raw: &[u8]) -> Result<ToolBody<T>, HttpError> {
    let bad = |field: &str, message: String| HttpError::BadRequest {
        field: field.to_string(),
        message,
    };
    // Serde would also read a struct from a JSON array; tool bodies are objects.
    if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(bad("body", "The request must be a JSON object.".into()));
    }
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| bad("body", format!("The request is not valid JSON: {e}.")))?;
    if depth(&value) > MAX_TOOL_BODY_DEPTH {
        return Err(bad("body", "The request is nested too deeply.".into()));
    }
    if let Some(field) = field_with_control_characters(&value) {
        return Err(bad(
            &field,
            format!("The {field} given contains characters that are not text."),
        ));
    }
    let conversation_id = value
        .get("conversation_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut unknown_fields = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| unknown_fields.push(path.to_string());
    let ignored = serde_ignored::Deserializer::new(value, &mut note);
    let request = serde_path_to_error::deserialize(ignored).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." || field == "?" {
            "body".to_string()
        } else {
            field
        };
        let message = format!("The {field} given was not understood: {}.", e.into_inner());
        bad(&field, message)
    })?;
    Ok(ToolBody {
        request,
        conversation_id,
        unknown_fields,
    })
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The first top-level field whose name or text holds a control character (NUL, escape...).
/// Line breaks and tabs are spacing: the fields that allow them decide what to do with them.
fn field_with_control_characters(body: &Value) -> Option<String> {
    fn not_text(s: &str) -> bool {
        s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    }
    fn holds(v: &Value) -> bool {
        match v {
            Value::String(s) => not_text(s),
            Value::Array(items) => items.iter().any(holds),
            Value::Object(map) => map.iter().any(|(k, v)| not_text(k) || holds(v)),
            _ => false,
        }
    }
    let Value::Object(map) = body else {
        return None;
    };
    map.iter().find_map(|(k, v)| {
        if not_text(k) {
            Some("body".to_string())
        } else {
            holds(v).then(|| k.clone())
        }
    })
}

/// Unknown fields are logged by name (never value) and counted, so a drifted tool definition
/// shows up in the logs and the `ToolUnknownFields` metric instead of failing the call.
fn note_unknown_fields(deps: &Deps, route: &str, fields: &[String]) {
    // Names are the sender's text: only short plain identifiers are logged as they are.
    let names: Vec<&str> = fields
        .iter()
        .map(|f| {
            let plain = f.len() <= 64
                && f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if plain {
                f.as_str()
            } else {
                "<unprintable>"
            }
        })
        .collect();
    warn!(
        route,
        unknown_fields = names.join(","),
        count = names.len(),
        outcome = "unknown_fields_ignored",
        "tool request had fields the tool does not know; they were ignored"
    );
    metrics::count(
        "ToolUnknownFields",
        names.len() as u64,
        deps.config.tenant.as_str(),
    );
}

/// `POST /webhooks/elevenlabs/post-call`: verify the signature on the raw body, store the event
/// durably, answer 200 fast (processing goes on inline within a budget, then from the queue).
async fn post_call_webhook(deps: &Deps, request: Request) -> Result<Reply, HttpError> {
    let Some(secret) = deps.secrets.elevenlabs_webhook_secret.as_deref() else {
        error!("ELEVENLABS_WEBHOOK_SECRET is not configured: every post-call webhook is refused");
        return Err(HttpError::Unavailable);
    };
    let header = request
        .headers
        .get(signature::HEADER)
        .and_then(|v| v.to_str().ok());
    signature::verify(&request.body, header, secret.as_bytes(), deps.now())
        .map_err(|e| HttpError::Unauthorized(e.to_string()))?;
    match post_call::intake(deps, &request.body).await {
        Ok((outcome, event)) => Ok(Reply {
            body: json!({ "status": outcome.as_str() }),
            outcome: outcome.as_str().to_string(),
            conversation_id: event
                .as_ref()
                .and_then(|e| e.conversation_id())
                .map(|c| c.to_string()),
            event_type: event.as_ref().map(|e| e.kind().to_string()),
        }),
        Err(IntakeError::BadPayload(e)) => Err(HttpError::BadRequest {
            field: e.field.clone(),
            message: e.to_string(),
        }),
        Err(IntakeError::Dependency(e)) => {
            error!(error = %e, "intake failed before the webhook was durable");
            Err(HttpError::Unavailable)
        }
    }
}

/// `POST /webhooks/twilio/messaging`: an inbound SMS or WhatsApp message, handled inline if it
/// can be (keywords, C/R), the rest queued; if our side fails, the verified parameters go to
/// the queue so the text is still handled. Only if that fails too does Twilio get a 503.
async fn twilio_messaging(deps: &Deps, request: TwilioRequest) -> Result<Reply, HttpError> {
    let tenant = deps.tenant().await.map_err(|e| {
        error!(error = %e, "inbound text: no tenant configuration");
        HttpError::Unavailable
    })?;
    let text = messaging::inbound::parse_inbound(&request.params, &tenant.business.country)
        .map_err(|e| HttpError::BadRequest {
            field: e.field.into(),
            message: e.message,
        })?;
    let outcome = match messaging::texts::receive(deps, &text).await {
        Ok(outcome) => outcome.to_string(),
        Err(e) => {
            warn!(error = %e, message_sid = %text.message_sid, "inbound text not finished inline; queued");
            let job = crate::jobs::Job::ReceiveText {
                tenant: deps.config.tenant.to_string(),
                params: request.params,
            };
            deps.queue
                .enqueue(&job, std::time::Duration::ZERO)
                .await
                .map_err(|e| {
                    error!(error = %e, "inbound text could not be queued either");
                    HttpError::Unavailable
                })?;
            "queued".to_string()
        }
    };
    Ok(Reply {
        body: Value::Null,
        outcome,
        conversation_id: None,
        event_type: Some("message".into()),
    })
}

/// `POST /webhooks/twilio/status`: a delivery status callback.
async fn twilio_status(deps: &Deps, request: TwilioRequest) -> Result<Reply, HttpError> {
    let update =
        messaging::inbound::parse_status(&request.params).map_err(|e| HttpError::BadRequest {
            field: e.field.into(),
            message: e.message,
        })?;
    let outcome = messaging::status::record(deps, &update, &request.params, 1)
        .await
        .map_err(|e| {
            // Twilio does not retry status callbacks; the send-time record stands meanwhile.
            error!(error = %e, "status callback not recorded");
            HttpError::Unavailable
        })?;
    Ok(Reply {
        body: Value::Null,
        outcome: outcome.to_string(),
        conversation_id: None,
        event_type: Some(update.status.as_str().into()),
    })
}

/// `POST /webhooks/web-form`: a website enquiry, signed or with the form token.
async fn web_form(deps: &Deps, request: Request) -> Result<Reply, HttpError> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(axum::http::header::CONTENT_TYPE.as_str()).unwrap_or_default();
    let signature = header(web_form::SIGNATURE_HEADER);
    let header_token = header(web_form::TOKEN_HEADER);
    // Only a token may be read from the body before the body is trusted: parse to find it,
    // but authenticate before anything else is looked at or written.
    let tenant = deps.tenant().await.map_err(|e| {
        error!(error = %e, "web form: no tenant configuration");
        HttpError::Unavailable
    })?;
    let parsed = web_form::parse(&request.body, &content_type, &tenant.business.country);
    let body_token = parsed.as_ref().ok().and_then(|f| f.token.clone());
    web_form::authenticate(
        &deps.secrets,
        signature.as_deref(),
        header_token.as_deref(),
        body_token.as_deref(),
        &request.body,
    )
    .map_err(|e| HttpError::Unauthorized(e.to_string()))?;
    let form = parsed.map_err(|e| HttpError::BadRequest {
        field: e.field.into(),
        message: e.message,
    })?;
    let (lead_id, outcome) = match web_form::receive(deps, &form).await {
        Ok(lead) => (Some(lead), "lead_recorded"),
        Err(e) => {
            warn!(error = %e, "web form not finished inline; queued");
            let job = crate::jobs::Job::ReceiveWebForm {
                tenant: deps.config.tenant.to_string(),
                body: String::from_utf8_lossy(&request.body).into_owned(),
                content_type,
            };
            deps.queue
                .enqueue(&job, std::time::Duration::ZERO)
                .await
                .map_err(|e| {
                    error!(error = %e, "web form could not be queued either");
                    HttpError::Unavailable
                })?;
            (None, "queued")
        }
    };
    Ok(Reply {
        body: json!({ "ok": true, "lead_id": lead_id }),
        outcome: outcome.into(),
        conversation_id: None,
        event_type: None,
    })
}

/// The QA routes' handlers: the reviewer's request, read for the use case in `qa`.
async fn qa_flags(deps: &Deps, r: ReviewerRequest) -> Result<Value, QaError> {
    qa::list_flags(deps, &r.reviewer, &r.query).await
}

async fn qa_call(deps: &Deps, r: ReviewerRequest) -> Result<Value, QaError> {
    let conversation = r
        .params
        .get("conversation_id")
        .map(String::as_str)
        .unwrap_or("");
    qa::call_view(deps, &r.reviewer, conversation).await
}

/// A reviewer's JSON body, which is an object: serde would also read a struct from a JSON
/// array (`["dismissed"]` as a status), so anything else is refused first.
fn json_object<T: DeserializeOwned>(raw: &[u8]) -> Result<T, String> {
    if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err("the body is not a JSON object".into());
    }
    serde_json::from_slice(raw).map_err(|e| e.to_string())
}

async fn qa_resolve(deps: &Deps, r: ReviewerRequest) -> Result<Value, QaError> {
    let request: qa::ResolveFlag = json_object(&r.body).map_err(|e| QaError::BadRequest {
        field: "body".into(),
        message: format!(
            "expected {{\"status\": \"confirmed\"|\"dismissed\", \"note\": \"…\"}}: {e}"
        ),
    })?;
    let id = r.params.get("id").map(String::as_str).unwrap_or("");
    qa::resolve_flag(deps, &r.reviewer, id, request).await
}

async fn qa_rules(deps: &Deps, r: ReviewerRequest) -> Result<Value, QaError> {
    qa::rule_counts(deps, &r.reviewer).await
}

/// The owner or a reviewer sent the customer a quote: its follow-ups start.
async fn lead_quoted(deps: &Deps, r: ReviewerRequest) -> Result<Value, QaError> {
    use crate::quotes::{self, MarkQuoted, QuoteError};
    let request: MarkQuoted = if r.body.iter().all(u8::is_ascii_whitespace) {
        MarkQuoted::default()
    } else {
        json_object(&r.body).map_err(|e| QaError::BadRequest {
            field: "body".into(),
            message: format!("expected {{\"quote\": \"…\"}} (optional): {e}"),
        })?
    };
    let id = r.params.get("id").map(String::as_str).unwrap_or("");
    quotes::mark_quoted(deps, id, &request, &r.reviewer.name)
        .await
        .map_err(|e| match e {
            QuoteError::BadRequest { field, message } => QaError::BadRequest { field, message },
            QuoteError::NotFound => QaError::NotFound("lead"),
            QuoteError::Conflict(message) => QaError::Conflict(message),
            QuoteError::Dependency(e) => QaError::Dependency(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        name: String,
        #[serde(default)]
        summary: Option<String>,
    }

    fn read(raw: &str) -> Result<ToolBody<Sample>, String> {
        read_tool_body::<Sample>(raw.as_bytes()).map_err(|e| match e {
            HttpError::BadRequest { field, .. } => field,
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn unknown_fields_are_ignored_and_named() {
        let body = read(r#"{"name": "Sam", "vip": true, "note": {"x": 1}}"#).unwrap();
        assert_eq!(body.request.name, "Sam");
        let mut unknown = body.unknown_fields;
        unknown.sort();
        assert_eq!(unknown, ["note", "vip"]);
    }

    #[test]
    fn known_fields_stay_strict() {
        assert_eq!(read(r#"{"name": 5}"#).unwrap_err(), "name");
        assert_eq!(read(r#"{}"#).unwrap_err(), "body");
        assert_eq!(read("[1]").unwrap_err(), "body");
    }

    #[test]
    fn control_characters_are_refused_but_line_breaks_are_text() {
        assert_eq!(read("{\"name\": \"Bob\\u0000Smith\"}").unwrap_err(), "name");
        assert_eq!(read("{\"name\": \"Bob\\u001bSmith\"}").unwrap_err(), "name");
        assert_eq!(
            read("{\"name\": \"Bob\", \"x\\u0000\": 1}").unwrap_err(),
            "body"
        );
        let body = read("{\"name\": \"Bob\", \"summary\": \"line one\\nline two\"}").unwrap();
        assert_eq!(body.request.summary.as_deref(), Some("line one\nline two"));
    }

    #[test]
    fn deeply_nested_bodies_are_refused() {
        let deep = format!(
            "{{\"name\": \"Sam\", \"x\": {}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(read(&deep).unwrap_err(), "body");
        let nine = format!(
            "{{\"name\": \"Sam\", \"x\": {}{}}}",
            "[".repeat(9),
            "]".repeat(9)
        );
        assert_eq!(read(&nine).unwrap_err(), "body");
        let flat = format!(
            "{{\"name\": \"Sam\", \"x\": {}{}}}",
            "[".repeat(3),
            "]".repeat(3)
        );
        assert!(read(&flat).is_ok());
    }

    #[test]
    fn the_tool_secret_is_checked_whole() {
        let mut headers = HeaderMap::new();
        assert!(authorize_tool(Some("s3cret"), &headers).is_err());
        headers.insert(TOOL_SECRET_HEADER, "s3cre".parse().unwrap());
        assert!(authorize_tool(Some("s3cret"), &headers).is_err());
        headers.insert(TOOL_SECRET_HEADER, "s3cret".parse().unwrap());
        assert!(authorize_tool(Some("s3cret"), &headers).is_ok());
        assert!(authorize_tool(None, &headers).is_err());
    }

    #[test]
    fn every_route_is_listed_once() {
        let mut paths: Vec<&str> = routes().iter().map(|r| r.path).collect();
        let n = paths.len();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), n);
    }
}

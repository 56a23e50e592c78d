//! The local host (feature `local`): AWS resources created on moto from template.yaml, the demo
//! tenant loaded from prompts/, every route on one server, and a loop standing in for the
//! Lambda event source that feeds the retry queue to the worker.

pub mod poller;
pub mod resources;
pub mod scheduler;
pub mod template;

use std::sync::Arc;

use axum::Router;

use crate::deps::Deps;
use crate::http;

/// Every HTTP function's routes on one router, at the paths template.yaml gives them. Locally
/// a request may set the time it runs at (`x-frontdesk-now`), and reviewers' tokens are
/// verified here with the local key, as the HTTP API's JWT authorizer does in AWS.
pub fn all_routes(deps: Arc<Deps>, reviewer_key: &[u8]) -> Router {
    http::all_routes(
        deps,
        http::Host::Local {
            reviewer_key: reviewer_key.into(),
        },
    )
}

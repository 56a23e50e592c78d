//! reconcile: every 15 minutes (EventBridge schedule), the conversations of the last hours
//! listed through the ElevenLabs API; any finished one without a call record is processed
//! through the post-call webhook's own intake. An event `{"since": "<RFC 3339>"}` (a manual
//! invoke, or `frontdesk backfill`) looks further back.

use frontdesk::{deps::Deps, reconcile, telemetry};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move {
            let deadline = frontdesk::quality::scan::deadline_in(event.context.deadline());
            let since = match event.payload.get("since") {
                None | Some(serde_json::Value::Null) => {
                    deps.now() - jiff::SignedDuration::from_hours(reconcile::LOOKBACK_HOURS)
                }
                // A manual run over the wrong stretch would look like success: refuse it.
                Some(v) => v
                    .as_str()
                    .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                    .ok_or("\"since\" must be an RFC 3339 time such as 2026-11-30T00:00:00Z")?,
            };
            // Leave time to answer before Lambda's own deadline.
            let deadline = deadline.checked_sub(std::time::Duration::from_secs(10));
            let report = reconcile::run(&deps, since, deadline).await?;
            Ok::<_, lambda_runtime::Error>(reconcile::summary(&report))
        }
    }))
    .await
}

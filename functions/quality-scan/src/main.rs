//! quality-scan: every 15 minutes (EventBridge schedule), the calls stored since the watermark
//! checked against the tenant's quality rules.

use frontdesk::{deps::Deps, quality::scan, telemetry};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move {
            let deadline = scan::deadline_in(event.context.deadline());
            let report = scan::run(&deps, deadline, None).await?;
            Ok::<_, lambda_runtime::Error>(scan::summary(&report))
        }
    }))
    .await
}

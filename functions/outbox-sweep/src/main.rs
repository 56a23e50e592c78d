//! outbox-sweep: every five minutes (EventBridge schedule), outbox entries that should have
//! gone and did not (a lost queue message, a run that died after its write) are sent on, and
//! the owner's daily digest goes once its local time has come.

use frontdesk::{deps::Deps, digest, outbox, telemetry};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move {
            let swept = outbox::sweep(&deps).await?;
            let digest = digest::send_if_due(&deps).await?;
            Ok::<_, lambda_runtime::Error>(json!({
                "messages_requeued": swept.messages_requeued,
                "events_published": swept.events_published,
                "events_failed": swept.events_failed,
                "digest_queued": digest,
            }))
        }
    }))
    .await
}

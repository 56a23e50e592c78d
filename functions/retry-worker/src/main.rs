//! retry-worker: the SQS retry queue's consumer (partial batch failures).

use aws_lambda_events::event::sqs::SqsEvent;
use frontdesk::{deps::Deps, retry_worker, telemetry};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move { Ok::<_, lambda_runtime::Error>(retry_worker::handle(&deps, event.payload).await) }
    }))
    .await
}

//! post-call: POST /webhooks/elevenlabs/post-call (ElevenLabs post-call webhooks).

use frontdesk::{deps::Deps, http, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    lambda_http::run(http::with_fallback(http::post_call_routes(deps))).await
}

//! check-availability: POST /tools/check_availability (an ElevenLabs agent tool).

use frontdesk::{deps::Deps, http, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    lambda_http::run(http::with_fallback(http::check_availability_routes(deps))).await
}

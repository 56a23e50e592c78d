//! create-booking: POST /tools/create_booking (an ElevenLabs agent tool).

use frontdesk::{deps::Deps, http, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    lambda_http::run(http::with_fallback(http::create_booking_routes(deps))).await
}

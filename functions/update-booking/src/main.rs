//! update-booking: the HTTP routes `frontdesk::http::ROUTES` gives this function.

use frontdesk::{deps::Deps, http, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    lambda_http::run(http::function_router(env!("CARGO_PKG_NAME"), deps)).await
}

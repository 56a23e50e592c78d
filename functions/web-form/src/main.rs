//! web-form: its own rows of `frontdesk::http::routes()` (`http::rows`), and no other handler.

use frontdesk::{deps::Deps, http, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let deps = Deps::from_env().await?;
    lambda_http::run(http::function_router(
        env!("CARGO_PKG_NAME"),
        http::rows::web_form,
        deps,
    ))
    .await
}

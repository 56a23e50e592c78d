//! Logs: one JSON object per line (CloudWatch reads them), level from `RUST_LOG`.
//! `FRONTDESK_LOG_FORMAT=text` gives compact human lines for local runs.
//!
//! Rule for every log call in this crate: ids, counts, outcomes and latencies only. Never a
//! phone number, a name, a message body or transcript text.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn")
    });
    let text = std::env::var("FRONTDESK_LOG_FORMAT").is_ok_and(|v| v == "text");
    // Colour only for a person at a terminal; files and CloudWatch get plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colour);
    let result = if text {
        builder.compact().try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

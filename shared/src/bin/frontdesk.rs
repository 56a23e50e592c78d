//! `frontdesk`: the operator's CLI (validate, render, push, gate, sync-config, backfill).
//! `frontdesk --help` and `frontdesk <command> --help` say what each does.

use clap::Parser;
use frontdesk::operator::cli::{self, Cli};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // Library logs (ids and outcomes only) go to stderr; the command's answer to stdout.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let mut out = std::io::stdout();
    if let Err((code, message)) = cli::run(cli, &mut out).await {
        eprintln!("frontdesk: {message}");
        std::process::exit(code);
    }
}

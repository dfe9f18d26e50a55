use std::process::ExitCode;

use clap::Parser;

/// Rebuilds and group commits allocate and free many small rows, often on
/// different threads; mimalloc does that markedly faster than the system
/// allocator (see the projections bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    ledger_api::cli::run(ledger_api::cli::Cli::parse()).await
}

//! The `webim` binary: parse the command line, build, run.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use webim::app::{shutdown_signal, Application};
use webim::config::{Cli, Command, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_env("WEBIM_LOG").unwrap_or_else(|_| EnvFilter::new("webim=info,tower_http=warn")),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = Config::load(args)?;
            let app = Application::build(config).await?;
            tracing::info!("webim listening on http://{}", app.local_addr());
            app.run_until(shutdown_signal()).await
        }
    }
}

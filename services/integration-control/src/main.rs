//! The integration-control binary: parse config, build, serve until SIGTERM/SIGINT.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = integration_control::Config::parse();
    let _telemetry = ferry_kit::telemetry::init("integration-control", &config.common)?;
    if config.common.migrate_only {
        integration_control::migrate(&config).await?;
        tracing::info!("integration-control migrations applied; exiting (migrate-only)");
        return Ok(());
    }
    let server = integration_control::build(&config).await?;
    tracing::info!(addr = %server.local_addr(), "integration-control listening");
    server.serve(ferry_kit::server::shutdown_signal()).await?;
    Ok(())
}

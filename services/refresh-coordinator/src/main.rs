//! The refresh-coordinator binary: parse config, build, serve until SIGTERM/SIGINT.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = refresh_coordinator::Config::parse();
    let _telemetry = ferry_kit::telemetry::init("refresh-coordinator", &config.common)?;
    if config.common.migrate_only {
        refresh_coordinator::migrate(&config).await?;
        tracing::info!("refresh-coordinator migrations applied; exiting (migrate-only)");
        return Ok(());
    }
    let server = refresh_coordinator::build(&config).await?;
    tracing::info!(addr = %server.local_addr(), "refresh-coordinator listening");
    server.serve(ferry_kit::server::shutdown_signal()).await?;
    Ok(())
}

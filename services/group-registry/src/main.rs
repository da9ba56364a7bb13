//! The group-registry binary: parse config, build, serve until SIGTERM/SIGINT.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = group_registry::Config::parse();
    let _telemetry = ferry_kit::telemetry::init("group-registry", &config.common)?;
    if config.common.migrate_only {
        group_registry::migrate(&config).await?;
        tracing::info!("group-registry migrations applied; exiting (migrate-only)");
        return Ok(());
    }
    let server = group_registry::build(&config).await?;
    tracing::info!(addr = %server.local_addr(), "group-registry listening");
    server.serve(ferry_kit::server::shutdown_signal()).await?;
    Ok(())
}

//! The merge-engine binary: parse config, build, serve until SIGTERM/SIGINT.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = merge_engine::Config::parse();
    let _telemetry = ferry_kit::telemetry::init("merge-engine", &config.common)?;
    if config.common.migrate_only {
        merge_engine::migrate(&config).await?;
        tracing::info!("merge-engine migrations applied; exiting (migrate-only)");
        return Ok(());
    }
    let server = merge_engine::build(&config).await?;
    tracing::info!(addr = %server.local_addr(), "merge-engine listening");
    server.serve(ferry_kit::server::shutdown_signal()).await?;
    Ok(())
}

//! `ferry up`: the suite in the foreground until SIGINT/SIGTERM.

use std::io::Write;
use std::path::Path;

use crate::client::DEFAULT_TOKEN_FILE;

use crate::up::{self, UpOptions};

pub async fn run(opts: UpOptions, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let _telemetry = ferry_kit::telemetry::init("ferry", &opts.common)?;
    let suite = up::start(opts).await?;
    writeln!(out, "ferry is up")?;
    for (name, _) in &suite.endpoints {
        writeln!(out, "  {name:<40} {}", suite.endpoint(name))?;
    }
    if let Some(addr) = suite.metrics {
        writeln!(out, "  {:<40} http://{addr}/metrics", "metrics")?;
    }
    writeln!(out, "admin token in {}", suite.admin_token_file.display())?;
    writeln!(out, "four-eyes approvals off: one local user, who may approve their own runs (the prod overlay turns them on)")?;
    // Registry commands default to .ferry/admin.token and port 50051; say how to reach
    // this suite when it lives elsewhere.
    let registry = suite.endpoint(up::REGISTRY);
    if suite.admin_token_file != Path::new(DEFAULT_TOKEN_FILE) {
        writeln!(out, "  export FERRY_TOKEN_FILE={}", suite.admin_token_file.display())?;
    }
    if registry != "http://127.0.0.1:50051" {
        writeln!(out, "  export FERRY_REGISTRY_URL={registry}")?;
    }
    writeln!(out, "Ctrl-C stops the suite")?;
    out.flush()?;
    ferry_kit::server::shutdown_signal().await;
    tracing::info!("stopping the suite");
    suite.shutdown().await;
    Ok(())
}

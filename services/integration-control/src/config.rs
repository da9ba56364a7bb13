//! integration-control's settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use ferry_kit::config::CommonArgs;

/// How long a snapshot is kept by default: 7 days (as the registry's restore points).
pub const DEFAULT_SNAPSHOT_RETENTION_HOURS: u64 = 7 * 24;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "integration-control", about = "integrations, mappings, jobs, sealed credentials, snapshots and sync fencing")]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FERRY_INTEGRATION_LISTEN", default_value = "0.0.0.0:50053")]
    pub listen: SocketAddr,
    /// Database URL: sqlite://path/integration.db or postgres://user:pass@host/db.
    #[arg(long, env = "FERRY_INTEGRATION_DATABASE_URL", default_value = "sqlite://.ferry/integration.db", hide_env_values = true)]
    pub database_url: String,
    /// The group-registry (environments and their tiers).
    #[arg(long, env = "FERRY_REGISTRY_URL", default_value = "http://127.0.0.1:50051")]
    pub registry_url: String,
    /// File holding the 32-byte credential sealing key as 64 hex digits
    /// (see `generate_sealing_key`).
    #[arg(long, env = "FERRY_SEALING_KEY_FILE", default_value = ".ferry/sealing.key")]
    pub sealing_key_file: PathBuf,
    /// How long a snapshot is kept (hours); older ones are pruned in the background.
    #[arg(long, env = "FERRY_SNAPSHOT_RETENTION_HOURS", default_value_t = DEFAULT_SNAPSHOT_RETENTION_HOURS)]
    pub snapshot_retention_hours: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

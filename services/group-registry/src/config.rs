//! group-registry's settings.

use std::net::SocketAddr;

use ferry_kit::config::CommonArgs;

/// How long a restore point is kept by default: 7 days.
pub const DEFAULT_RESTORE_POINT_RETENTION_HOURS: u64 = 7 * 24;
/// How long what an overwrite replaced is kept by default: 7 days, merge-engine's default
/// `--job-retention-hours` (how long a merge can be reverted).
pub const DEFAULT_PRIOR_CONTENT_RETENTION_HOURS: u64 = 7 * 24;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "group-registry", about = "Ferry's system of record: environments, groups, entities, projects")]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FERRY_REGISTRY_LISTEN", default_value = "0.0.0.0:50051")]
    pub listen: SocketAddr,
    /// Database URL: sqlite://path/registry.db or postgres://user:pass@host/db.
    #[arg(long, env = "FERRY_REGISTRY_DATABASE_URL", default_value = "sqlite://.ferry/registry.db", hide_env_values = true)]
    pub database_url: String,
    /// How long a restore point is kept (hours) before it expires: it can no longer be
    /// restored and is pruned.
    #[arg(long, env = "FERRY_REGISTRY_RESTORE_POINT_RETENTION_HOURS", default_value_t = DEFAULT_RESTORE_POINT_RETENTION_HOURS)]
    pub restore_point_retention_hours: u64,
    /// How long the content a merge's overwrite replaced is kept (hours), so a revert of
    /// the merge can put it back. Keep it at least merge-engine's `--job-retention-hours`.
    #[arg(long, env = "FERRY_REGISTRY_PRIOR_CONTENT_RETENTION_HOURS", default_value_t = DEFAULT_PRIOR_CONTENT_RETENTION_HOURS)]
    pub prior_content_retention_hours: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Config {
    /// A registry on `listen` and `database_url` with the default retention.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>, common: CommonArgs) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            restore_point_retention_hours: DEFAULT_RESTORE_POINT_RETENTION_HOURS,
            prior_content_retention_hours: DEFAULT_PRIOR_CONTENT_RETENTION_HOURS,
            common,
        }
    }
}

//! merge-engine's settings.

use std::net::SocketAddr;

use ferry_kit::config::CommonArgs;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "merge-engine", about = "plans and applies clones and merges of groups and projects by key field")]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FERRY_MERGE_LISTEN", default_value = "0.0.0.0:50052")]
    pub listen: SocketAddr,
    /// Database URL: sqlite://path/merge.db or postgres://user:pass@host/db.
    #[arg(long, env = "FERRY_MERGE_DATABASE_URL", default_value = "sqlite://.ferry/merge.db", hide_env_values = true)]
    pub database_url: String,
    /// The group registry the engine reads manifests from and sends merge batches to.
    #[arg(long, env = "FERRY_REGISTRY_URL", default_value = "http://127.0.0.1:50051")]
    pub registry_url: String,
    /// Job workers this engine runs (replicas add theirs; they share the job table).
    #[arg(long, env = "FERRY_MERGE_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// Plan items per registry batch, 1-10000 (one engine transaction per chunk).
    #[arg(long, env = "FERRY_MERGE_CHUNK_SIZE", default_value_t = 5000, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub chunk_size: i64,
    /// Seconds a claimed job stays with this engine without a lease renewal.
    #[arg(long, env = "FERRY_MERGE_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
    /// How long a plan's items are kept (hours from the plan's creation); a READY plan
    /// past it reads EXPIRED, and the items are pruned in the background.
    #[arg(long, env = "FERRY_PLAN_RETENTION_HOURS", default_value_t = DEFAULT_RETENTION_HOURS)]
    pub plan_retention_hours: u64,
    /// How long an ended job's effects (what a revert needs) are kept (hours from its end);
    /// after it the job cannot be reverted, and the effects are pruned in the background.
    #[arg(long, env = "FERRY_JOB_RETENTION_HOURS", default_value_t = DEFAULT_RETENTION_HOURS)]
    pub job_retention_hours: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Plans' items and jobs' effects are kept a week by default.
pub const DEFAULT_RETENTION_HOURS: u64 = 7 * 24;

impl Config {
    /// How long plans' items and jobs' effects are kept.
    pub fn retention(&self) -> crate::service::retention::Retention {
        let hours = |h: u64| std::time::Duration::from_secs(h.saturating_mul(3600));
        crate::service::retention::Retention { plans: hours(self.plan_retention_hours), jobs: hours(self.job_retention_hours) }
    }

    /// A config with the defaults for workers, chunk size and lease.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>, registry_url: impl Into<String>, common: CommonArgs) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            registry_url: registry_url.into(),
            workers: 2,
            chunk_size: 5000,
            lease_secs: 30,
            plan_retention_hours: DEFAULT_RETENTION_HOURS,
            job_retention_hours: DEFAULT_RETENTION_HOURS,
            common,
        }
    }
}

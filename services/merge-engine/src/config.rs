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
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Config {
    /// A config with the defaults for workers, chunk size and lease.
    pub fn new(listen: SocketAddr, database_url: impl Into<String>, registry_url: impl Into<String>, common: CommonArgs) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            registry_url: registry_url.into(),
            workers: 2,
            chunk_size: 5000,
            lease_secs: 30,
            common,
        }
    }
}

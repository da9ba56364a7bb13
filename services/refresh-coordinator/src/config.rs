//! refresh-coordinator's settings.

use std::net::SocketAddr;

use ferry_kit::config::CommonArgs;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "refresh-coordinator", about = "durable refresh and promotion runs across the Ferry services")]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "FERRY_REFRESH_LISTEN", default_value = "0.0.0.0:50054")]
    pub listen: SocketAddr,
    /// Database URL: sqlite://path/refresh.db or postgres://user:pass@host/db.
    #[arg(long, env = "FERRY_REFRESH_DATABASE_URL", default_value = "sqlite://.ferry/refresh.db", hide_env_values = true)]
    pub database_url: String,
    /// The group registry (tiers, counts, environment copy).
    #[arg(long, env = "FERRY_REGISTRY_URL", default_value = "http://127.0.0.1:50051")]
    pub registry_url: String,
    /// integration-control (the refresh steps).
    #[arg(long, env = "FERRY_INTEGRATION_URL", default_value = "http://127.0.0.1:50053")]
    pub integration_url: String,
    /// merge-engine (promotion runs).
    #[arg(long, env = "FERRY_MERGE_URL", default_value = "http://127.0.0.1:50052")]
    pub merge_url: String,
    /// Seconds a claimed run stays with this coordinator without a lease renewal (another
    /// replica resumes it once the lease lapses; renewed every third of it).
    #[arg(long, env = "FERRY_REFRESH_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
    /// This coordinator's name as a lease holder. Give each live coordinator sharing a
    /// database its own, stable across restarts (e.g. the pod name): a coordinator that
    /// starts takes back at once the runs its holder id still leases, left by the process
    /// before it, instead of waiting for their leases to lapse. Default: a random id per
    /// process (runs left by a crash then wait out their lease).
    #[arg(long, env = "FERRY_REFRESH_HOLDER_ID")]
    pub holder_id: Option<String>,
    /// Attempts of a call failing with UNAVAILABLE or DEADLINE_EXCEEDED before its step
    /// fails (the run then waits in FAILED for retry or abort).
    #[arg(long, env = "FERRY_REFRESH_RETRY_ATTEMPTS", default_value_t = 8)]
    pub retry_attempts: u32,
    /// The first retry's wait in milliseconds; each next one doubles (at most 10 s), with jitter.
    #[arg(long, env = "FERRY_REFRESH_RETRY_BASE_MS", default_value_t = 500)]
    pub retry_base_ms: u64,
    /// A pause before every step, in milliseconds (0: none; demos use it to watch a run).
    #[arg(long, env = "FERRY_REFRESH_STEP_DELAY_MS", default_value_t = 0)]
    pub step_delay_ms: u64,
    /// A pause after every journaled operation, in milliseconds (0: none; tests use it to
    /// stop a coordinator between two operations of a step).
    #[arg(long, env = "FERRY_REFRESH_OP_DELAY_MS", default_value_t = 0)]
    pub op_delay_ms: u64,
    /// Hours after a refresh ends during which it can be rolled back (StartRollback).
    /// Keep it at most the registry's --restore-point-retention-hours and
    /// integration-control's --snapshot-retention-hours (both 7 days by default): a
    /// rollback needs the refresh's restore point and snapshot.
    #[arg(long, env = "FERRY_REFRESH_ROLLBACK_WINDOW_HOURS", default_value_t = 168)]
    pub rollback_window_hours: u64,
    /// The four-eyes rule: a run's approval gate is confirmed only by an identity with the
    /// approver right that did not start the run (`domain::approval`).
    #[arg(long, env = "FERRY_REFRESH_FOUR_EYES", default_value_t = false)]
    pub four_eyes: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Config {
    /// A config with the defaults for lease, retries and step delay.
    pub fn new(
        listen: SocketAddr,
        database_url: impl Into<String>,
        registry_url: impl Into<String>,
        integration_url: impl Into<String>,
        merge_url: impl Into<String>,
        common: CommonArgs,
    ) -> Self {
        Self {
            listen,
            database_url: database_url.into(),
            registry_url: registry_url.into(),
            integration_url: integration_url.into(),
            merge_url: merge_url.into(),
            lease_secs: 30,
            holder_id: None,
            retry_attempts: 8,
            retry_base_ms: 500,
            step_delay_ms: 0,
            op_delay_ms: 0,
            rollback_window_hours: 168,
            four_eyes: false,
            common,
        }
    }
}

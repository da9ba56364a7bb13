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
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// How webhooks are delivered.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// The first wait after a failed delivery (milliseconds); doubled per failure.
    #[arg(long = "webhook-min-backoff-ms", env = "FERRY_WEBHOOK_MIN_BACKOFF_MS", default_value_t = 1_000)]
    pub min_backoff_ms: u64,
    /// The longest wait between attempts (milliseconds).
    #[arg(long = "webhook-max-backoff-ms", env = "FERRY_WEBHOOK_MAX_BACKOFF_MS", default_value_t = 600_000)]
    pub max_backoff_ms: u64,
    /// Failed attempts in a row that disable a subscription.
    #[arg(long = "webhook-disable-after", env = "FERRY_WEBHOOK_DISABLE_AFTER", default_value_t = 20)]
    pub disable_after: i32,
    /// How long one delivery may take (milliseconds).
    #[arg(long = "webhook-timeout-ms", env = "FERRY_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// PEM roots https receivers are verified against (without it https URLs fail).
    #[arg(long = "webhook-ca-file", env = "FERRY_WEBHOOK_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// How long delivered webhook deliveries (with their attempts) are kept (hours).
    #[arg(long = "webhook-log-retention-hours", env = "FERRY_WEBHOOK_LOG_RETENTION_HOURS", default_value_t = 7 * 24)]
    pub log_retention_hours: u64,
    /// How long relayed outbox rows are kept (hours).
    #[arg(long = "outbox-retention-hours", env = "FERRY_OUTBOX_RETENTION_HOURS", default_value_t = 24)]
    pub outbox_retention_hours: u64,
}

impl Default for WebhookArgs {
    fn default() -> Self {
        Self {
            min_backoff_ms: 1_000,
            max_backoff_ms: 600_000,
            disable_after: 20,
            timeout_ms: 10_000,
            ca_file: None,
            log_retention_hours: 7 * 24,
            outbox_retention_hours: 24,
        }
    }
}

impl WebhookArgs {
    pub fn policy(&self) -> crate::delivery::Policy {
        crate::delivery::Policy {
            min_backoff: std::time::Duration::from_millis(self.min_backoff_ms),
            max_backoff: std::time::Duration::from_millis(self.max_backoff_ms.max(self.min_backoff_ms)),
            disable_after: self.disable_after.max(1),
            idle: std::time::Duration::from_millis(50),
            parallel: 32,
        }
    }
}

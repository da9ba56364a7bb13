//! Settings every service shares, from flags or environment variables. Each service's own
//! config flattens [`CommonArgs`] and adds its listen address and database URL.

use std::path::PathBuf;
use std::time::Duration;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Flags shared by every Ferry service.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// File of bearer tokens, one per line: `<token> <viewer|operator|admin> <*|env,env>`.
    #[arg(long, env = "FERRY_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Serve without authentication (local experiments only).
    #[arg(long, env = "FERRY_NO_AUTH", default_value_t = false)]
    pub no_auth: bool,
    /// Token this service presents when it calls another Ferry service.
    #[arg(long, env = "FERRY_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
    /// OTLP/gRPC endpoint for traces (e.g. http://otel-collector:4317); off when unset.
    #[arg(long, env = "FERRY_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Log format.
    #[arg(long, env = "FERRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Per-request timeout in seconds (streams included).
    #[arg(long, env = "FERRY_REQUEST_TIMEOUT_SECS", default_value_t = 300)]
    pub request_timeout_secs: u64,
    /// Requests served at once, over all connections.
    #[arg(long, env = "FERRY_CONCURRENCY_LIMIT", default_value_t = 256)]
    pub concurrency_limit: usize,
    /// Seconds in-flight calls get to finish after SIGTERM.
    #[arg(long, env = "FERRY_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,
    /// Serve Prometheus metrics at `GET /metrics` over plain HTTP on this address (e.g.
    /// 0.0.0.0:9090); off when unset.
    #[arg(long, env = "FERRY_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for CommonArgs {
    fn default() -> Self {
        Self {
            tokens_file: None,
            no_auth: false,
            service_token: None,
            otlp_endpoint: None,
            log_format: LogFormat::Pretty,
            request_timeout_secs: 300,
            concurrency_limit: 256,
            shutdown_grace_secs: 20,
            metrics_listen: None,
        }
    }
}

impl CommonArgs {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

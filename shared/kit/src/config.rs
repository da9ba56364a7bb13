//! Settings every service shares, from flags or environment variables. Each service's own
//! config flattens [`CommonArgs`] and adds its listen address and database URL.

use std::net::SocketAddr;
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
    /// File of bearer tokens, one per line: `<token> <viewer|operator|admin> <*|env,env> <subject>`.
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
    /// How long a mutation's reply is kept for `request_id` retries (hours); older ones
    /// are pruned in the background, and a retry after that is a new request.
    #[arg(long, env = "FERRY_REQUEST_LOG_RETENTION_HOURS", default_value_t = 168)]
    pub request_log_retention_hours: u64,
    /// How often the tokens file is read again (seconds; also on SIGHUP): a token removed
    /// from it is refused from then on, without a restart.
    #[arg(long, env = "FERRY_TOKENS_RELOAD_SECS", default_value_t = 2)]
    pub tokens_reload_secs: u64,
    /// How often rows past their retention are pruned (seconds; also at start).
    #[arg(long, env = "FERRY_PRUNE_INTERVAL_SECS", default_value_t = 60)]
    pub prune_interval_secs: u64,
    /// Connect to the database, run this service's migrations and exit 0 without serving
    /// (a Kubernetes initContainer; replicas migrating at once are safe: advisory lock).
    #[arg(long, env = "FERRY_MIGRATE_ONLY", default_value_t = false)]
    pub migrate_only: bool,
    /// PEM certificate chain: the gRPC listener serves TLS, and outgoing calls to other
    /// services present it as the client certificate (needs --tls-key-file).
    #[arg(long, env = "FERRY_TLS_CERT_FILE", value_name = "PEM")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "FERRY_TLS_KEY_FILE", value_name = "PEM")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate it signed (mutual TLS; needs
    /// --tls-cert-file).
    #[arg(long, env = "FERRY_TLS_CLIENT_CA_FILE", value_name = "PEM")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// PEM CA bundle trusted for outgoing calls to `https://` service URLs.
    #[arg(long, env = "FERRY_TLS_CA_FILE", value_name = "PEM")]
    pub tls_ca_file: Option<PathBuf>,
    /// A second, plaintext listener serving only grpc.health.v1 (for probes that cannot
    /// do TLS), e.g. 0.0.0.0:8081.
    #[arg(long, env = "FERRY_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
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
            request_log_retention_hours: 168,
            prune_interval_secs: 60,
            tokens_reload_secs: 2,
            migrate_only: false,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            tls_ca_file: None,
            health_listen: None,
            metrics_listen: None,
        }
    }
}

impl CommonArgs {
    /// How long `request_id` replies are kept.
    pub fn request_log_retention(&self) -> Duration {
        Duration::from_secs(self.request_log_retention_hours.saturating_mul(3600))
    }

    /// How often the tokens file is read again.
    pub fn tokens_reload_interval(&self) -> Duration {
        Duration::from_secs(self.tokens_reload_secs.max(1))
    }

    /// How often background pruning runs.
    pub fn prune_interval(&self) -> Duration {
        Duration::from_secs(self.prune_interval_secs.max(1))
    }

    /// The request_log pruner of a service on `db` (for `ServerBuilder::with_background`).
    pub fn request_log_pruner(&self, db: &sea_orm::DatabaseConnection) -> impl std::future::Future<Output = ()> + Send + 'static {
        crate::prune::pruner(
            db.clone(),
            crate::idempotency::REPLIES,
            self.request_log_retention(),
            self.prune_interval(),
            crate::prune::BATCH,
        )
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
    /// The listener's TLS settings (`None`: plaintext), every file read and checked.
    pub fn server_tls(&self) -> Result<Option<tonic::transport::ServerTlsConfig>, crate::Error> {
        crate::tls::server_config(self.tls_cert_file.as_deref(), self.tls_key_file.as_deref(), self.tls_client_ca_file.as_deref())
    }
    /// TLS for outgoing calls: the CA bundle, and this service's own certificate as the
    /// client identity.
    pub fn client_tls(&self) -> Result<crate::client::ClientTls, crate::Error> {
        crate::client::ClientTls::load(self.tls_ca_file.as_deref(), self.tls_cert_file.as_deref(), self.tls_key_file.as_deref())
    }
}

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
    /// File of bearer tokens, one per line:
    /// `<token> <viewer|operator|admin>[+approver][+service] <*|env,env> <subject>`.
    #[arg(long, env = "FERRY_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// JWT bearer tokens (OIDC, Kubernetes service accounts); boxed: sixteen flags would
    /// make every enum holding `CommonArgs` large.
    #[command(flatten)]
    pub jwt: Box<JwtArgs>,
    /// Under mutual TLS, client certificates as identities: one per line,
    /// `<san> <role>[+approver][+service] <*|env,env>` (a URI SAN such as a SPIFFE id, or a
    /// DNS SAN); read again on change and on SIGHUP. Needs --tls-client-ca-file.
    #[arg(long, env = "FERRY_TLS_CLIENT_IDENTITIES_FILE", value_name = "FILE")]
    pub tls_client_identities_file: Option<PathBuf>,
    /// Serve without authentication (local experiments only).
    #[arg(long, env = "FERRY_NO_AUTH", default_value_t = false)]
    pub no_auth: bool,
    /// Token this service presents when it calls another Ferry service.
    #[arg(long, env = "FERRY_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,
    /// File holding the token this service presents when it calls another Ferry service,
    /// read again when it changes (a projected Kubernetes service-account token rotates).
    #[arg(long, env = "FERRY_SERVICE_TOKEN_FILE", value_name = "FILE", conflicts_with = "service_token")]
    pub service_token_file: Option<PathBuf>,
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
    /// Record reads (Get, List, Watch, …) in the audit log too; mutations always are.
    #[arg(long, env = "FERRY_AUDIT_READS", default_value_t = false)]
    pub audit_reads: bool,
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
            jwt: Box::default(),
            tls_client_identities_file: None,
            no_auth: false,
            service_token: None,
            service_token_file: None,
            otlp_endpoint: None,
            log_format: LogFormat::Pretty,
            request_timeout_secs: 300,
            concurrency_limit: 256,
            shutdown_grace_secs: 20,
            request_log_retention_hours: 168,
            prune_interval_secs: 60,
            tokens_reload_secs: 2,
            audit_reads: false,
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
    /// How this service authenticates its calls to other services: `--service-token`, or
    /// `--service-token-file` read again when it changes.
    pub fn service_credential(&self) -> Result<crate::client::ClientInterceptor, crate::Error> {
        match &self.service_token_file {
            Some(path) => crate::client::ClientInterceptor::from_file(path),
            None => crate::client::ClientInterceptor::new(self.service_token.as_deref()),
        }
    }

    /// TLS for outgoing calls: the CA bundle, and this service's own certificate as the
    /// client identity.
    pub fn client_tls(&self) -> Result<crate::client::ClientTls, crate::Error> {
        crate::client::ClientTls::load(self.tls_ca_file.as_deref(), self.tls_cert_file.as_deref(), self.tls_key_file.as_deref())
    }
}

/// The scope of a JWT without the environments claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvironmentsDefault {
    All,
    None,
}

/// The `--jwt-*` flags: JWT bearer tokens are accepted when `--jwt-issuer` is set.
#[derive(Debug, Clone, clap::Args)]
pub struct JwtArgs {
    /// Accept JWTs from this issuer (the `iss` claim must equal it), e.g. an OIDC provider
    /// or the cluster's service-account issuer `https://kubernetes.default.svc.cluster.local`.
    #[arg(long = "jwt-issuer", env = "FERRY_JWT_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// The audience(s) accepted, comma-separated: `aud` must contain one.
    #[arg(long = "jwt-audience", env = "FERRY_JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// The issuer's JWKS: http:// or https:// (e.g. https://kubernetes.default.svc/openid/v1/jwks).
    #[arg(long = "jwt-jwks-url", env = "FERRY_JWT_JWKS_URL", value_name = "URL")]
    pub jwks_url: Option<String>,
    /// The issuer's JWKS as a file (instead of --jwt-jwks-url).
    #[arg(long = "jwt-jwks-file", env = "FERRY_JWT_JWKS_FILE", value_name = "FILE")]
    pub jwks_file: Option<PathBuf>,
    /// PEM CA bundle an https --jwt-jwks-url must chain to (required for https).
    #[arg(long = "jwt-jwks-ca-file", env = "FERRY_JWT_JWKS_CA_FILE", value_name = "PEM")]
    pub jwks_ca_file: Option<PathBuf>,
    /// A bearer token sent with JWKS fetches, read each time (on Kubernetes the pod's own
    /// /var/run/secrets/kubernetes.io/serviceaccount/token).
    #[arg(long = "jwt-jwks-token-file", env = "FERRY_JWT_JWKS_TOKEN_FILE", value_name = "FILE")]
    pub jwks_token_file: Option<PathBuf>,
    /// Signature algorithms accepted, comma-separated (RS256..RS512, PS256..PS512, ES256,
    /// ES384, EdDSA; never none or HMAC).
    #[arg(long = "jwt-algorithms", env = "FERRY_JWT_ALGORITHMS", default_value = "RS256")]
    pub algorithms: String,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    #[arg(long = "jwt-leeway-secs", env = "FERRY_JWT_LEEWAY_SECS", default_value_t = 30)]
    pub leeway_secs: u64,
    /// The claim that is the caller's subject.
    #[arg(long = "jwt-subject-claim", env = "FERRY_JWT_SUBJECT_CLAIM", default_value = "sub")]
    pub subject_claim: String,
    /// The claim whose values --jwt-role-map maps (a string or an array of strings;
    /// `sub` maps subjects one by one).
    #[arg(long = "jwt-role-claim", env = "FERRY_JWT_ROLE_CLAIM", default_value = "groups")]
    pub role_claim: String,
    /// `value=role[+approver][+service]` entries, comma-separated; rights alone
    /// (`ferry-approvers=+approver`) add to a role. The highest role matched wins.
    #[arg(long = "jwt-role-map", env = "FERRY_JWT_ROLE_MAP", default_value = "")]
    pub role_map: String,
    /// The role of a valid token that matches no role in --jwt-role-map; unset: such a
    /// token is refused (PERMISSION_DENIED).
    #[arg(long = "jwt-default-role", env = "FERRY_JWT_DEFAULT_ROLE", value_name = "ROLE")]
    pub default_role: Option<String>,
    /// The claim that scopes a token to environments (an array, or a comma-separated
    /// string; `*` is every environment).
    #[arg(long = "jwt-environments-claim", env = "FERRY_JWT_ENVIRONMENTS_CLAIM")]
    pub environments_claim: Option<String>,
    /// The scope of a token without that claim; default `none` when
    /// --jwt-environments-claim is set, `all` when it is not.
    #[arg(long = "jwt-environments-default", env = "FERRY_JWT_ENVIRONMENTS_DEFAULT", value_enum)]
    pub environments_default: Option<EnvironmentsDefault>,
    /// Least seconds between two JWKS fetches for tokens with an unknown `kid` (at least 1).
    #[arg(long = "jwt-jwks-refetch-secs", env = "FERRY_JWT_JWKS_REFETCH_SECS", default_value_t = 5)]
    pub jwks_refetch_secs: u64,
    /// How often the JWKS is fetched again anyway (seconds; also on SIGHUP).
    #[arg(long = "jwt-jwks-refresh-secs", env = "FERRY_JWT_JWKS_REFRESH_SECS", default_value_t = 300)]
    pub jwks_refresh_secs: u64,
}

impl Default for JwtArgs {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: None,
            jwks_url: None,
            jwks_file: None,
            jwks_ca_file: None,
            jwks_token_file: None,
            algorithms: "RS256".into(),
            leeway_secs: 30,
            subject_claim: "sub".into(),
            role_claim: "groups".into(),
            role_map: String::new(),
            default_role: None,
            environments_claim: None,
            environments_default: None,
            jwks_refetch_secs: 5,
            jwks_refresh_secs: 300,
        }
    }
}

impl JwtArgs {
    /// The JWT settings (`None` without --jwt-issuer), every flag checked; an error names
    /// the flag.
    pub fn config(&self) -> Result<Option<crate::auth::JwtConfig>, crate::Error> {
        use crate::auth::jwt::{JwtConfig, KeySource, parse_algorithm, parse_role_map};
        let bad = |flag: &str, env: &str, e: String| crate::Error::Config(format!("--{flag} ({env}): {e}"));
        let Some(issuer) = self.issuer.as_deref().map(str::trim).filter(|i| !i.is_empty()) else {
            let set = [
                ("jwt-audience", self.audience.is_some()),
                ("jwt-jwks-url", self.jwks_url.is_some()),
                ("jwt-jwks-file", self.jwks_file.is_some()),
                ("jwt-role-map", !self.role_map.is_empty()),
            ];
            return match set.iter().find(|(_, on)| *on) {
                Some((flag, _)) => Err(crate::Error::Config(format!("--{flag} is set without --jwt-issuer (FERRY_JWT_ISSUER)"))),
                None => Ok(None),
            };
        };
        let audiences: Vec<String> =
            self.audience.iter().flat_map(|a| a.split(',')).map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
        if audiences.is_empty() {
            return Err(bad(
                "jwt-audience",
                "FERRY_JWT_AUDIENCE",
                "required with --jwt-issuer: the audience Ferry's tokens are minted for".into(),
            ));
        }
        let keys = match (&self.jwks_url, &self.jwks_file) {
            (Some(_), Some(_)) => return Err(crate::Error::Config("--jwt-jwks-url and --jwt-jwks-file are both set: pick one".into())),
            (None, None) => {
                return Err(crate::Error::Config(
                    "--jwt-issuer needs --jwt-jwks-url (FERRY_JWT_JWKS_URL) or --jwt-jwks-file (FERRY_JWT_JWKS_FILE)".into(),
                ));
            }
            (Some(url), None) => {
                let url: http::Uri = url.parse().map_err(|e| bad("jwt-jwks-url", "FERRY_JWT_JWKS_URL", format!("{url}: {e}")))?;
                if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
                    return Err(bad("jwt-jwks-url", "FERRY_JWT_JWKS_URL", format!("{url}: not an http:// or https:// URL")));
                }
                if url.scheme_str() == Some("http") && self.jwks_ca_file.is_some() {
                    return Err(crate::Error::Config(format!("--jwt-jwks-ca-file is set but --jwt-jwks-url {url} is plain http")));
                }
                KeySource::Url { url, ca_file: self.jwks_ca_file.clone(), token_file: self.jwks_token_file.clone() }
            }
            (None, Some(file)) => {
                if self.jwks_ca_file.is_some() || self.jwks_token_file.is_some() {
                    return Err(crate::Error::Config(
                        "--jwt-jwks-ca-file and --jwt-jwks-token-file apply to --jwt-jwks-url, not --jwt-jwks-file".into(),
                    ));
                }
                KeySource::File(file.clone())
            }
        };
        let mut config = JwtConfig::new(issuer, "", keys);
        config.audiences = audiences;
        config.algorithms = self
            .algorithms
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(parse_algorithm)
            .collect::<Result<_, _>>()
            .map_err(|e| bad("jwt-algorithms", "FERRY_JWT_ALGORITHMS", e))?;
        if config.algorithms.is_empty() {
            return Err(bad("jwt-algorithms", "FERRY_JWT_ALGORITHMS", "no algorithm".into()));
        }
        config.leeway = Duration::from_secs(self.leeway_secs);
        config.subject_claim = self.subject_claim.clone();
        config.role_claim = self.role_claim.clone();
        config.role_map = parse_role_map(&self.role_map).map_err(|e| bad("jwt-role-map", "FERRY_JWT_ROLE_MAP", e))?;
        if let Some(role) = &self.default_role {
            config.default_grant.role = Some(role.parse().map_err(|e| bad("jwt-default-role", "FERRY_JWT_DEFAULT_ROLE", e))?);
        }
        config.environments_claim = self.environments_claim.clone().filter(|c| !c.is_empty());
        config.environments_default_all = match self.environments_default {
            Some(d) => d == EnvironmentsDefault::All,
            None => config.environments_claim.is_none(),
        };
        config.refetch_interval = Duration::from_secs(self.jwks_refetch_secs.max(1));
        config.refresh_interval = Duration::from_secs(self.jwks_refresh_secs.max(1));
        Ok(Some(config))
    }
}

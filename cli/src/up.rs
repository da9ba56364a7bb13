//! The whole suite in one process: what `ferry up` runs and what the cross-service tests
//! start on port 0.
//!
//! [`start`] prepares the data folder (an admin token and the tokens file that grants it,
//! written once and reused), builds the four services with their own `build(&Config)`,
//! binds them and serves each on its own tokio task. [`Suite::shutdown`] stops them all
//! gracefully; dropping the [`Suite`] triggers the same shutdown without waiting for it.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ferry_kit::auth::TokenTable;
use ferry_kit::config::CommonArgs;
use ferry_kit::server::Server;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// `ferry.registry.v1.RegistryService`, served by group-registry.
pub const REGISTRY: &str = ferry_proto::registry::v1::registry_service_server::SERVICE_NAME;
/// `ferry.merge.v1.MergeService`, served by merge-engine.
pub const MERGE: &str = ferry_proto::merge::v1::merge_service_server::SERVICE_NAME;
/// `ferry.integration.v1.IntegrationService`, served by integration-control.
pub const INTEGRATION: &str = ferry_proto::integration::v1::integration_service_server::SERVICE_NAME;
/// `ferry.refresh.v1.RefreshService`, served by refresh-coordinator.
pub const REFRESH: &str = ferry_proto::refresh::v1::refresh_service_server::SERVICE_NAME;

/// The file in the data folder holding the admin token (one line, mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// The tokens file every service of the suite loads (`<token> <role> <scope>` lines).
pub const TOKENS_FILE: &str = "tokens";
/// The subject of the admin token `ferry up` writes: the one local user.
pub const LOCAL_ADMIN: &str = "local-admin";
/// The file in the data folder holding integration-control's credential sealing key.
pub const SEALING_KEY_FILE: &str = "sealing.key";
/// The file in the data folder holding the coordinator's lease holder id: the suite that
/// starts on this folder next takes back at once the runs the last one left running.
pub const HOLDER_ID_FILE: &str = "coordinator.holder";
/// The file `ferry up` holds locked while it runs, so one data folder has one suite (and
/// its holder id one live coordinator).
pub const LOCK_FILE: &str = "lock";

/// Where and how `ferry up` runs the suite.
#[derive(Debug, Clone, clap::Args)]
#[command(
    mut_arg("tokens_file", |a| a.hide(true)),
    mut_arg("service_token", |a| a.hide(true)),
    mut_arg("service_token_file", |a| a.hide(true)),
    mut_arg("health_listen", |a| a.hide(true))
)]
pub struct UpOptions {
    /// Folder for the databases, the admin token, the tokens file and the sealing key.
    #[arg(long, env = "FERRY_DATA_DIR", default_value = ".ferry")]
    pub data_dir: PathBuf,
    /// Address every service listens on.
    #[arg(long, env = "FERRY_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// group-registry port (0 picks a free port).
    #[arg(long, default_value_t = 50051)]
    pub registry_port: u16,
    /// merge-engine port (0 picks a free port).
    #[arg(long, default_value_t = 50052)]
    pub merge_port: u16,
    /// integration-control port (0 picks a free port).
    #[arg(long, default_value_t = 50053)]
    pub integration_port: u16,
    /// refresh-coordinator port (0 picks a free port).
    #[arg(long, default_value_t = 50054)]
    pub refresh_port: u16,
    /// Seconds the coordinator keeps a run's lease without renewing it. A restarted
    /// `ferry up` resumes its own runs at once whatever this is (its holder id is kept in
    /// the data folder); the lease only matters to another coordinator taking over.
    #[arg(long, env = "FERRY_REFRESH_LEASE_SECS", default_value_t = 30)]
    pub refresh_lease_secs: u64,
    /// A pause before every refresh or promotion step, in milliseconds (0: none), to
    /// watch a run step by step.
    #[arg(long, env = "FERRY_REFRESH_STEP_DELAY_MS", default_value_t = 0)]
    pub refresh_step_delay_ms: u64,
    /// Settings shared by every service. `tokens_file` and `service_token` (or
    /// `service_token_file`) are replaced by the data folder's tokens file and admin token. With a TLS certificate every
    /// service serves TLS and they call each other on `https://` (the certificate then
    /// needs the listen host among its names, and `--tls-ca-file` must trust it).
    #[command(flatten, next_help_heading = "Service settings")]
    pub common: CommonArgs,
}

impl Default for UpOptions {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".ferry"),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            registry_port: 50051,
            merge_port: 50052,
            integration_port: 50053,
            refresh_port: 50054,
            refresh_lease_secs: 30,
            refresh_step_delay_ms: 0,
            common: CommonArgs::default(),
        }
    }
}

/// The running suite.
#[derive(Debug)]
pub struct Suite {
    /// The bearer token with the admin role on every environment.
    pub admin_token: String,
    /// Where that token is stored (`<data_dir>/admin.token`).
    pub admin_token_file: PathBuf,
    /// Each service's full gRPC name and the address it listens on, in start order:
    /// registry, merge, integration, refresh.
    pub endpoints: Vec<(&'static str, SocketAddr)>,
    /// `https` when the services serve TLS, else `http`.
    scheme: &'static str,
    /// The `/metrics` endpoint (all four services' metrics), with `--metrics-listen`.
    pub metrics: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), ferry_kit::Error>>)>,
    /// Held (locked) for the suite's life: see [`LOCK_FILE`].
    _lock: std::fs::File,
}

impl Suite {
    /// The URL a client dials for `service` (a full name such as [`REGISTRY`]), e.g.
    /// `http://127.0.0.1:50051` (`https://` with TLS); an unspecified listen host becomes
    /// loopback.
    ///
    /// # Panics
    /// When `service` is not one of [`REGISTRY`], [`MERGE`], [`INTEGRATION`], [`REFRESH`]
    /// (a programming error; see [`Suite::try_endpoint`]).
    pub fn endpoint(&self, service: &str) -> String {
        match self.try_endpoint(service) {
            Some(url) => url,
            None => panic!("the suite has no service named {service:?}"),
        }
    }

    /// Like [`Suite::endpoint`], `None` for an unknown service name.
    pub fn try_endpoint(&self, service: &str) -> Option<String> {
        self.endpoints.iter().find(|(name, _)| *name == service).map(|(_, addr)| url(self.scheme, *addr))
    }

    /// Turns every service's health NOT_SERVING, stops accepting, drains in-flight calls
    /// (within the grace period) and waits for all four servers to finish.
    pub async fn shutdown(self) {
        let Suite { shutdown, tasks, _lock, .. } = self;
        // Receivers also resolve when the sender is gone, so a failed send changes nothing.
        let _ = shutdown.send(true);
        for (name, task) in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(service = name, error = %e, "server stopped with an error"),
                Err(e) => tracing::error!(service = name, error = %e, "server task failed"),
            }
        }
    }
}

/// The URL a client on this machine dials to reach a listener on `addr`.
fn url(scheme: &str, addr: SocketAddr) -> String {
    format!("{scheme}://{}", dialable(addr))
}

/// The address a client on this machine dials to reach a listener on `addr`.
fn dialable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// Prepares the data folder, builds and binds the four services, and serves them.
pub async fn start(opts: UpOptions) -> anyhow::Result<Suite> {
    create_private_dir(&opts.data_dir)?;
    let lock = lock_data_dir(&opts.data_dir)?;
    let holder_id = ensure_holder_id(&opts.data_dir)?;
    let admin_token_file = opts.data_dir.join(ADMIN_TOKEN_FILE);
    let admin_token = ensure_tokens(&opts.data_dir)?;
    let db_path = opts.data_dir.join("registry.db");
    let db_path = db_path.to_str().with_context(|| format!("data folder {} is not valid UTF-8", opts.data_dir.display()))?;

    if let Some(addr) = opts.common.health_listen {
        bail!(
            "--health-listen (FERRY_HEALTH_LISTEN) {addr}: ferry up runs four services in one process, they cannot share one health port"
        );
    }
    let scheme = if opts.common.tls_cert_file.is_some() { "https" } else { "http" };
    let mut common = opts.common.clone();
    common.tokens_file = Some(opts.data_dir.join(TOKENS_FILE));
    common.service_token = Some(admin_token.clone());
    common.service_token_file = None;
    let at = |port| SocketAddr::new(opts.host, port);

    // Build (and so bind) all four before serving any: a port in use fails the start
    // without leaving a partial suite behind.
    let registry =
        group_registry::build(&group_registry::Config::new(at(opts.registry_port), format!("sqlite://{db_path}"), common.clone()))
            .await
            .with_context(|| format!("starting group-registry on {}", at(opts.registry_port)))?;
    // Metrics are one registry per process: the registry's endpoint (--metrics-listen)
    // serves all four services' metrics, so the others bind none.
    common.metrics_listen = None;
    let metrics = registry.metrics_addr();
    // The merge engine and integration control call the registry at the address it bound.
    let registry_url = url(scheme, registry.local_addr());
    let sqlite = |file: &str| -> anyhow::Result<String> {
        let path = opts.data_dir.join(file);
        let path = path.to_str().with_context(|| format!("data folder {} is not valid UTF-8", opts.data_dir.display()))?;
        Ok(format!("sqlite://{path}"))
    };
    let merge_config = merge_engine::Config::new(at(opts.merge_port), sqlite("merge.db")?, registry_url.clone(), common.clone());
    let merge = merge_engine::build(&merge_config).await.with_context(|| format!("starting merge-engine on {}", at(opts.merge_port)))?;
    let sealing_key_file = opts.data_dir.join(SEALING_KEY_FILE);
    integration_control::generate_sealing_key(&sealing_key_file)
        .with_context(|| format!("creating the sealing key {}", sealing_key_file.display()))?;
    let integration = integration_control::build(&integration_control::Config {
        listen: at(opts.integration_port),
        database_url: sqlite("integration.db")?,
        registry_url: registry_url.clone(),
        sealing_key_file,
        snapshot_retention_hours: integration_control::config::DEFAULT_SNAPSHOT_RETENTION_HOURS,
        webhooks: integration_control::config::WebhookArgs::default(),
        common: common.clone(),
    })
    .await
    .with_context(|| format!("starting integration-control on {}", at(opts.integration_port)))?;
    // The coordinator calls the three services below it at the addresses they bound.
    let mut refresh_config = refresh_coordinator::Config::new(
        at(opts.refresh_port),
        sqlite("refresh.db")?,
        registry_url,
        url(scheme, integration.local_addr()),
        url(scheme, merge.local_addr()),
        common,
    );
    refresh_config.holder_id = Some(holder_id);
    refresh_config.lease_secs = opts.refresh_lease_secs;
    refresh_config.step_delay_ms = opts.refresh_step_delay_ms;
    let refresh = refresh_coordinator::build(&refresh_config)
        .await
        .with_context(|| format!("starting refresh-coordinator on {}", at(opts.refresh_port)))?;

    let (shutdown, signal) = watch::channel(false);
    let servers: [(&'static str, Server); 4] = [(REGISTRY, registry), (MERGE, merge), (INTEGRATION, integration), (REFRESH, refresh)];
    let mut endpoints = Vec::with_capacity(servers.len());
    let mut tasks = Vec::with_capacity(servers.len());
    for (name, server) in servers {
        endpoints.push((name, server.local_addr()));
        let mut signal = signal.clone();
        let stop = async move {
            // Resolves on `send(true)` and when the sender is dropped with the suite.
            let _ = signal.changed().await;
        };
        tasks.push((name, tokio::spawn(server.serve(stop))));
    }
    Ok(Suite { admin_token, admin_token_file, endpoints, scheme, metrics, shutdown, tasks, _lock: lock })
}

/// Reads the admin token, or creates it and the tokens file that grants it on first start.
fn ensure_tokens(dir: &Path) -> anyhow::Result<String> {
    let token_path = dir.join(ADMIN_TOKEN_FILE);
    let token = match std::fs::read_to_string(&token_path) {
        Ok(text) => {
            let token = text.trim().to_owned();
            if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bail!(
                    "{} does not hold a usable token (16 or more characters, no spaces); delete it to get a new one",
                    token_path.display()
                );
            }
            token
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = hex::encode(rand::random::<[u8; 32]>());
            write_private(&token_path, &format!("{token}\n"))?;
            token
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", token_path.display())),
    };
    let tokens_path = dir.join(TOKENS_FILE);
    if !tokens_path.exists() {
        let text = format!(
            "# Written by `ferry up`. One token per line: <token> <viewer|operator|admin>[+approver][+service] <*|env,env> <subject>\n\
             # Read again within seconds of a change: a removed line is refused without a restart.\n\
             {token} admin+service * {LOCAL_ADMIN}\n"
        );
        write_private(&tokens_path, &text)?;
    }
    let table = TokenTable::load(&tokens_path)?;
    if table.get(&token).is_none() {
        bail!(
            "{} does not grant the token in {}; add the line `<token> admin *` or delete both files",
            tokens_path.display(),
            token_path.display()
        );
    }
    Ok(token)
}

/// Locks the data folder for this suite: a second `ferry up` on it is refused.
fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another `ferry up` is running on {} (it holds {}): stop it, or give this one another --data-dir",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Reads the coordinator's holder id, or creates it on first start.
fn ensure_holder_id(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(HOLDER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_owned();
            if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bail!("{} does not hold a holder id (one word); delete it to get a new one", path.display());
            }
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = format!("ferry-up-{}", hex::encode(rand::random::<[u8; 8]>()));
            write_private(&path, &format!("{id}\n"))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("creating data folder {}", dir.display()))
}

/// Writes a new file readable by its owner only; never overwrites.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).with_context(|| format!("writing {}", path.display()))
}

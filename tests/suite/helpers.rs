//! `spawn_suite()`: a fresh suite on port 0 in a temporary data folder, typed clients for
//! it, the CLI pointed at it, and polling with a deadline.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_cli::up::{self, Suite, UpOptions};
use ferry_kit::client::{ClientInterceptor, channel};
use ferry_kit::config::CommonArgs;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A temporary folder, removed when dropped (also when a test panics).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("ferry-tests-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Options for a suite on port 0 with data in `dir`.
pub fn options(dir: &Path) -> UpOptions {
    UpOptions {
        data_dir: dir.join("data"),
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        registry_port: 0,
        merge_port: 0,
        integration_port: 0,
        refresh_port: 0,
        refresh_lease_secs: 30,
        refresh_step_delay_ms: 0,
        common: CommonArgs { shutdown_grace_secs: 2, ..CommonArgs::default() },
    }
}

/// A running suite and the folder it keeps its data in.
pub struct TestSuite {
    pub suite: Suite,
    pub dir: TempDir,
}

pub async fn spawn_suite() -> TestSuite {
    let dir = TempDir::new();
    let suite = up::start(options(dir.path())).await.expect("start the suite");
    let app = TestSuite { suite, dir };
    // Serving starts on spawned tasks; wait until the registry answers.
    let url = app.suite.endpoint(up::REGISTRY);
    eventually("registry health", || serving(health_status(url.clone(), up::REGISTRY))).await;
    app
}

async fn serving(status: impl Future<Output = Result<i32, String>>) -> Result<(), String> {
    match status.await? {
        1 => Ok(()),
        other => Err(format!("status {other}")),
    }
}

/// The grpc.health.v1 status of `service` at `url` (1 is SERVING).
pub async fn health_status(url: String, service: &str) -> Result<i32, String> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut client = HealthClient::new(channel(&url).map_err(|e| e.to_string())?);
    let reply =
        client.check(HealthCheckRequest { service: service.to_owned() }).await.map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
    Ok(reply.into_inner().status)
}

pub type Registry = RegistryServiceClient<InterceptedService<Channel, ClientInterceptor>>;

impl TestSuite {
    /// A registry client presenting `token` (none when `None`).
    pub fn registry(&self, token: Option<&str>) -> Registry {
        let channel = channel(&self.suite.endpoint(up::REGISTRY)).expect("channel");
        RegistryServiceClient::with_interceptor(channel, ClientInterceptor::new(token).expect("token"))
    }

    /// Runs a `ferry` command against this suite (all four services) with the admin token.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        for (flag, service) in
            [("--registry", up::REGISTRY), ("--merge", up::MERGE), ("--integration", up::INTEGRATION), ("--refresh", up::REFRESH)]
        {
            argv.extend([flag.to_owned(), self.suite.endpoint(service)]);
        }
        argv.extend(["--token".to_owned(), self.suite.admin_token.clone()]);
        ferry_cli::run(argv).await
    }

    /// Like [`TestSuite::cli`] with `-o json`, parsed.
    pub async fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut argv = args.to_vec();
        argv.extend(["-o", "json"]);
        let text = match self.cli(&argv).await {
            Ok(text) => text,
            Err(e) => panic!("ferry {}: {}", args.join(" "), ferry_cli::render_error(&e)),
        };
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("ferry {}: not JSON ({e}): {text}", args.join(" ")))
    }

    pub async fn stop(self) {
        let TestSuite { suite, dir } = self;
        suite.shutdown().await;
        drop(dir);
    }
}

/// Polls `check` until it succeeds, for at most ten seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("{what}: still failing after 10s: {e}"),
            Err(_) => tokio::time::sleep(ferry_kit::server::POLL_INTERVAL).await,
        }
    }
}

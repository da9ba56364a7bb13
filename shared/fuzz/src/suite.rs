//! Starts the four real services in-process on port 0, each on the database URL the
//! caller gives (SQLite or PostgreSQL), as `ferry up` and the refresh tests do: the
//! registry first, then merge-engine, integration-control (with a fresh sealing key) and
//! the refresh coordinator. Exposes the endpoints, the tokens, a health check of all four
//! and a shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_kit::config::CommonArgs;
use rand::Rng;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::call::Tokens;

/// One database URL per service.
#[derive(Debug, Clone)]
pub struct Databases {
    pub registry: String,
    pub merge: String,
    pub integration: String,
    pub refresh: String,
}

impl Databases {
    /// SQLite files in `dir`.
    pub fn sqlite(dir: &Path) -> Self {
        let file = |name: &str| format!("sqlite://{}/{name}", dir.display());
        Self { registry: file("registry.db"), merge: file("merge.db"), integration: file("integration.db"), refresh: file("refresh.db") }
    }
}

/// A served server: its shutdown trigger and its task.
struct Running {
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ferry_kit::Error>>,
}

fn serve(server: ferry_kit::server::Server) -> Running {
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));
    Running { shutdown, task }
}

/// The four services, running.
pub struct Suite {
    /// (service full name, `http://127.0.0.1:port`), registry first.
    pub endpoints: Vec<(String, String)>,
    pub tokens: Tokens,
    servers: Vec<Running>,
    // Held rather than detached (as `build` would) so that a shutdown stops the job
    // workers and the run driver too: nothing keeps using the databases afterwards.
    workers: Option<merge_engine::Workers>,
    driver: Option<refresh_coordinator::Driver>,
}

/// A random token (hex), so no two suites of one process share one.
fn token(rng: &mut impl Rng, role: &str) -> String {
    format!("fuzz-{role}-{:032x}", rng.random::<u128>())
}

impl Suite {
    /// Starts the services on `dbs`; `dir` receives the tokens file and the sealing key.
    pub async fn start(dbs: &Databases, dir: &Path) -> Result<Self, crate::Error> {
        std::fs::create_dir_all(dir)?;
        let mut rng = rand::rng();
        let tokens = Tokens { admin: token(&mut rng, "admin"), operator: token(&mut rng, "operator"), viewer: token(&mut rng, "viewer") };
        let service = token(&mut rng, "service");
        let tokens_file = dir.join("tokens");
        std::fs::write(
            &tokens_file,
            format!("{} admin *\n{} operator *\n{} viewer *\n{service} admin+service *\n", tokens.admin, tokens.operator, tokens.viewer),
        )?;
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        let common =
            CommonArgs { tokens_file: Some(tokens_file), shutdown_grace_secs: 1, service_token: Some(service), ..CommonArgs::default() };
        let mut suite = Self { endpoints: Vec::new(), tokens, servers: Vec::new(), workers: None, driver: None };
        let url = |addr: SocketAddr| format!("http://{addr}");

        let config = group_registry::Config::new(any, dbs.registry.clone(), common.clone());
        let registry = group_registry::build(&config).await?;
        let registry_url = url(registry.local_addr());
        suite.add("ferry.registry.v1.RegistryService", &registry_url, registry);

        let (merge, workers) =
            merge_engine::start(&merge_engine::Config::new(any, dbs.merge.clone(), registry_url.clone(), common.clone())).await?;
        let merge_url = url(merge.local_addr());
        suite.workers = Some(workers);
        suite.add("ferry.merge.v1.MergeService", &merge_url, merge);

        let sealing_key_file: PathBuf = dir.join("sealing.key");
        integration_control::generate_sealing_key(&sealing_key_file)?;
        let config = integration_control::Config {
            listen: any,
            database_url: dbs.integration.clone(),
            registry_url: registry_url.clone(),
            sealing_key_file,
            snapshot_retention_hours: integration_control::config::DEFAULT_SNAPSHOT_RETENTION_HOURS,
            webhooks: integration_control::config::WebhookArgs::default(),
            common: common.clone(),
        };
        let integration = integration_control::build(&config).await?;
        let integration_url = url(integration.local_addr());
        suite.add("ferry.integration.v1.IntegrationService", &integration_url, integration);

        let config = refresh_coordinator::Config::new(any, dbs.refresh.clone(), registry_url, integration_url, merge_url, common);
        let (coordinator, driver) = refresh_coordinator::start(&config).await?;
        let coordinator_url = url(coordinator.local_addr());
        suite.driver = Some(driver);
        suite.add("ferry.refresh.v1.RefreshService", &coordinator_url, coordinator);
        Ok(suite)
    }

    fn add(&mut self, service: &str, url: &str, server: ferry_kit::server::Server) {
        self.endpoints.push((service.to_owned(), url.to_owned()));
        self.servers.push(serve(server));
    }

    /// The URL serving `service` (a full name such as `ferry.registry.v1.RegistryService`).
    pub fn url(&self, service: &str) -> Option<&str> {
        self.endpoints.iter().find(|(s, _)| s == service).map(|(_, u)| u.as_str())
    }

    /// grpc.health.v1 `Check` on every service, with the empty service name (the server)
    /// and with the service's own name: one line per check, `SERVING` when all is well.
    pub async fn health(&self) -> Vec<(String, Result<ServingStatus, String>)> {
        let mut checks = Vec::new();
        for (service, url) in &self.endpoints {
            let channel = match ferry_kit::client::channel(url) {
                Ok(c) => c,
                Err(e) => {
                    checks.push((service.clone(), Err(e.to_string())));
                    continue;
                }
            };
            let mut client = HealthClient::new(channel);
            for name in [String::new(), service.clone()] {
                let mut request = tonic::Request::new(HealthCheckRequest { service: name.clone() });
                request.set_timeout(Duration::from_secs(10));
                let answer = match tokio::time::timeout(Duration::from_secs(12), client.check(request)).await {
                    Ok(Ok(r)) => Ok(r.into_inner().status()),
                    Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
                    Err(_) => Err("no answer in 12 s".to_owned()),
                };
                checks.push((format!("{service} (\"{name}\") at {url}"), answer));
            }
        }
        checks
    }

    /// Whether every check of [`Suite::health`] says SERVING.
    pub async fn all_serving(&self) -> bool {
        self.health().await.iter().all(|(_, s)| matches!(s, Ok(ServingStatus::Serving)))
    }

    /// Stops the coordinator's driver and the engine's workers, then every server
    /// (coordinator first: calls go down the picture only).
    pub async fn shutdown(mut self) {
        if let Some(d) = self.driver.take() {
            d.stop();
        }
        if let Some(w) = self.workers.take() {
            w.abort();
        }
        while let Some(server) = self.servers.pop() {
            let _ = server.shutdown.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), server.task).await;
        }
    }
}

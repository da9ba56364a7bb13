//! `spawn_app`: the real registry and integration-control on port 0, each with a fresh
//! database of the chosen backend, and typed clients for an admin, a viewer and an operator
//! scoped to `dev` only.

use std::net::SocketAddr;
use std::path::PathBuf;

use ferry_kit::client::{ClientInterceptor, channel};
use ferry_kit::config::CommonArgs;
use ferry_proto::integration::v1 as pb;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;
use ferry_proto::registry::v1 as rpb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
pub use ferry_testkit::Backend;
use ferry_testkit::{database, unique};
pub use integration_control::config::WebhookArgs;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = IntegrationServiceClient<InterceptedService<Channel, ClientInterceptor>>;
pub type Registry = RegistryServiceClient<InterceptedService<Channel, ClientInterceptor>>;

pub const ADMIN: &str = "admin-token-for-tests-0001";
pub const VIEWER: &str = "viewer-token-for-tests-0001";
pub const DEV_OPERATOR: &str = "dev-operator-token-for-tests";
pub const DEV_ADMIN: &str = "dev-admin-token-for-tests-01";
pub const SERVICE: &str = "service-token-for-tests-0001";
/// The subjects the tokens file names (the viewer's line keeps the format without one).
pub const ADMIN_SUBJECT: &str = "ada@example.com";
pub const DEV_OPERATOR_SUBJECT: &str = "otto@example.com";
pub struct TestApp {
    pub admin: Client,
    pub viewer: Client,
    pub dev_operator: Client,
    /// An admin scoped to `dev`: environment-wide steps need admin.
    pub dev_admin: Client,
    pub registry: Registry,
    /// integration-control's own database.
    pub database_url: String,
    pub dir: PathBuf,
    registry_url: String,
    webhooks: WebhookArgs,
    shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Stops the integration-control server now serving.
    control: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for tx in self.shutdown.drain(..).chain(self.control.take()) {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn client(addr: SocketAddr, token: Option<&str>) -> Client {
    let ch = channel(&format!("http://{addr}")).expect("channel");
    IntegrationServiceClient::with_interceptor(ch, ClientInterceptor::new(token).expect("token"))
}

fn serve(server: ferry_kit::server::Server) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));
    tx
}

/// Starts the registry and integration-control on `backend`; `None` when that backend is
/// unavailable here.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, integration_control::config::DEFAULT_SNAPSHOT_RETENTION_HOURS, 60).await
}

/// [`spawn_app`] keeping snapshots `retention_hours` and pruning every `prune_secs`.
pub async fn spawn_app_with(backend: Backend, retention_hours: u64, prune_secs: u64) -> Option<TestApp> {
    spawn_app_full(backend, retention_hours, prune_secs, fast_webhooks(1_000)).await
}

/// Webhook delivery paced for tests: 20 ms first backoff, 200 ms at most, disabled after
/// `disable_after` failures in a row, 2 s timeout.
pub fn fast_webhooks(disable_after: i32) -> WebhookArgs {
    WebhookArgs { min_backoff_ms: 20, max_backoff_ms: 200, disable_after, timeout_ms: 2_000, ..WebhookArgs::default() }
}

/// [`spawn_app`] with webhook delivery paced by `webhooks`, pruning every `prune_secs`.
pub async fn spawn_app_webhooks(backend: Backend, webhooks: WebhookArgs, prune_secs: u64) -> Option<TestApp> {
    spawn_app_full(backend, integration_control::config::DEFAULT_SNAPSHOT_RETENTION_HOURS, prune_secs, webhooks).await
}

async fn spawn_app_full(backend: Backend, retention_hours: u64, prune_secs: u64, webhooks: WebhookArgs) -> Option<TestApp> {
    let dir = std::env::temp_dir().join(unique("ferry-integration-test"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let registry_db = database(backend, &dir, "registry.db").await?;
    let database_url = database(backend, &dir, "integration.db").await?;
    let tokens = dir.join("tokens");
    std::fs::write(
        &tokens,
        format!(
            "{ADMIN} admin * {ADMIN_SUBJECT}\n{VIEWER} viewer *\n{DEV_OPERATOR} operator dev {DEV_OPERATOR_SUBJECT}\n{DEV_ADMIN} admin dev dana@example.com\n{SERVICE} viewer * integration-control\n"
        ),
    )
    .expect("tokens file");
    let common = CommonArgs { tokens_file: Some(tokens), shutdown_grace_secs: 1, ..CommonArgs::default() };
    let registry = group_registry::build(&group_registry::Config::new("127.0.0.1:0".parse().expect("addr"), registry_db, common.clone()))
        .await
        .expect("build registry");
    let registry_addr = registry.local_addr();
    let shutdown = vec![serve(registry)];
    let sealing_key_file = dir.join("sealing.key");
    assert!(integration_control::generate_sealing_key(&sealing_key_file).expect("sealing key"));
    let registry_url = format!("http://{registry_addr}");
    let (addr, control) =
        start_control(&dir, &database_url, &registry_url, retention_hours, prune_secs, &webhooks).await.expect("build integration-control");
    let rch = channel(&format!("http://{registry_addr}")).expect("channel");
    Some(TestApp {
        admin: client(addr, Some(ADMIN)),
        viewer: client(addr, Some(VIEWER)),
        dev_operator: client(addr, Some(DEV_OPERATOR)),
        dev_admin: client(addr, Some(DEV_ADMIN)),
        registry: RegistryServiceClient::with_interceptor(rch, ClientInterceptor::new(Some(ADMIN)).expect("token")),
        database_url,
        dir,
        registry_url,
        webhooks,
        shutdown,
        control: Some(control),
    })
}

/// Builds and serves integration-control on `database_url` with the key file in `dir`.
async fn start_control(
    dir: &std::path::Path,
    database_url: &str,
    registry_url: &str,
    retention_hours: u64,
    prune_secs: u64,
    webhooks: &WebhookArgs,
) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>), ferry_kit::Error> {
    let common = CommonArgs { tokens_file: Some(dir.join("tokens")), shutdown_grace_secs: 1, ..CommonArgs::default() };
    let server = integration_control::build(&integration_control::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: database_url.to_owned(),
        registry_url: registry_url.to_owned(),
        sealing_key_file: dir.join("sealing.key"),
        snapshot_retention_hours: retention_hours,
        webhooks: webhooks.clone(),
        common: CommonArgs { service_token: Some(SERVICE.into()), prune_interval_secs: prune_secs, ..common },
    })
    .await?;
    let addr = server.local_addr();
    Ok((addr, serve(server)))
}

impl TestApp {
    /// Stops integration-control and starts it again on the same database with the key
    /// file `keys`; the clients then talk to the new server. On an error none is serving.
    pub async fn restart_control(&mut self, keys: &str) -> Result<(), ferry_kit::Error> {
        if let Some(tx) = self.control.take() {
            let _ = tx.send(());
        }
        std::fs::write(self.dir.join("sealing.key"), keys).expect("key file");
        let hours = integration_control::config::DEFAULT_SNAPSHOT_RETENTION_HOURS;
        let (addr, control) = start_control(&self.dir, &self.database_url, &self.registry_url, hours, 60, &self.webhooks).await?;
        self.control = Some(control);
        self.admin = client(addr, Some(ADMIN));
        self.viewer = client(addr, Some(VIEWER));
        self.dev_operator = client(addr, Some(DEV_OPERATOR));
        self.dev_admin = client(addr, Some(DEV_ADMIN));
        Ok(())
    }
}

// Arrange helpers. Each panics with context: they set up, they are not under test.

pub async fn env(app: &TestApp, id: &str, production: bool) {
    let tier = if production { 1 } else { 2 };
    app.registry
        .clone()
        .create_environment(rpb::CreateEnvironmentRequest {
            environment_id: id.into(),
            environment: Some(rpb::Environment { tier, ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("create environment");
}

pub fn new_integration(active: bool) -> pb::Integration {
    pb::Integration { external_system: "rally".into(), base_url: "https://rally.example.com".into(), active, ..Default::default() }
}

pub async fn create_integration(app: &TestApp, env: &str, id: &str, api_key: &str, active: bool) -> Result<pb::Integration, tonic::Status> {
    app.admin
        .clone()
        .create_integration(pb::CreateIntegrationRequest {
            parent: format!("environments/{env}"),
            integration_id: id.into(),
            integration: Some(new_integration(active)),
            api_key: api_key.into(),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn integration(app: &TestApp, env: &str, id: &str, api_key: &str, active: bool) -> pb::Integration {
    create_integration(app, env, id, api_key, active).await.expect("create integration")
}

pub async fn create_mapping(app: &TestApp, parent: &str, id: &str, target: &str, active: bool) -> Result<pb::Mapping, tonic::Status> {
    app.admin
        .clone()
        .create_mapping(pb::CreateMappingRequest {
            parent: parent.into(),
            mapping_id: id.into(),
            mapping: Some(pb::Mapping {
                target_environment: target.into(),
                active,
                field_mapping_json: r#"{"title":"name"}"#.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn mapping(app: &TestApp, parent: &str, id: &str, target: &str, active: bool) -> pb::Mapping {
    create_mapping(app, parent, id, target, active).await.expect("create mapping")
}

/// A sync job created without saying whether it is external (so it is).
pub async fn job(app: &TestApp, env: &str, id: &str, integration: &str, paused: bool) -> pb::SyncJob {
    app.admin
        .clone()
        .create_sync_job(pb::CreateSyncJobRequest {
            parent: format!("environments/{env}"),
            sync_job_id: id.into(),
            sync_job: Some(pb::SyncJob {
                integration: integration.into(),
                schedule: "*/15 * * * *".into(),
                state: if paused { 2 } else { 1 },
                // Unset: the default is external (what a refresh pauses).
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create sync job")
        .into_inner()
}

pub async fn get_integration(app: &TestApp, name: &str) -> pb::Integration {
    app.admin.clone().get_integration(pb::GetIntegrationRequest { name: name.into() }).await.expect("get integration").into_inner()
}

pub async fn get_mapping(app: &TestApp, name: &str) -> pb::Mapping {
    app.admin.clone().get_mapping(pb::GetMappingRequest { name: name.into() }).await.expect("get mapping").into_inner()
}

pub async fn get_job(app: &TestApp, name: &str) -> pb::SyncJob {
    app.admin.clone().get_sync_job(pb::GetSyncJobRequest { name: name.into() }).await.expect("get job").into_inner()
}

pub async fn authorize(app: &TestApp, mapping: &str, job: &str) -> pb::AuthorizeSyncResponse {
    app.viewer
        .clone()
        .authorize_sync(pb::AuthorizeSyncRequest { mapping: mapping.into(), job: job.into() })
        .await
        .expect("authorize sync")
        .into_inner()
}

/// The field names of a BadRequest detail.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status.get_details_bad_request().map(|b| b.field_violations.into_iter().map(|f| f.field).collect()).unwrap_or_default()
}

/// The subjects of a PreconditionFailure detail.
pub fn precondition_subjects(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status.get_details_precondition_failure().map(|p| p.violations.into_iter().map(|v| v.subject).collect()).unwrap_or_default()
}

/// The resources a ChangeSet changed, in order.
pub fn changed(cs: &pb::ChangeSet) -> Vec<String> {
    cs.changes.iter().map(|c| c.resource.clone()).collect()
}

/// The resources a ChangeSet skipped.
pub fn skipped(cs: &pb::ChangeSet) -> Vec<String> {
    cs.skipped.iter().map(|s| s.resource.clone()).collect()
}

pub const ACTIVE: i32 = 1;
pub const SUSPENDED: i32 = 2;
pub const NONE: i32 = 3;
pub const RUNNING: i32 = 1;
pub const PAUSED: i32 = 2;

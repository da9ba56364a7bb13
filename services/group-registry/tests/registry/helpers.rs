//! `spawn_app`: the real registry on port 0 with a fresh database of the chosen backend,
//! and typed clients for an admin, a viewer and an operator scoped to `dev` only.

use std::net::SocketAddr;
use std::path::PathBuf;

use ferry_kit::client::{ClientInterceptor, channel};
use ferry_kit::config::CommonArgs;
use ferry_proto::registry::v1 as pb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
pub use ferry_testkit::Backend;
use ferry_testkit::{database, temp_dir};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = RegistryServiceClient<InterceptedService<Channel, ClientInterceptor>>;

pub const ADMIN: &str = "admin-token-for-tests-0001";
pub const VIEWER: &str = "viewer-token-for-tests-0001";
pub const DEV_OPERATOR: &str = "dev-operator-token-for-tests";
pub struct TestApp {
    pub addr: SocketAddr,
    /// The registry's database, for tests that arrange rows the API would refuse.
    pub database_url: String,
    pub admin: Client,
    pub viewer: Client,
    pub dev_operator: Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    dir: PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn client(addr: SocketAddr, token: Option<&str>) -> Client {
    let ch = channel(&format!("http://{addr}")).expect("channel");
    RegistryServiceClient::with_interceptor(ch, ClientInterceptor::new(token).expect("token"))
}

/// Starts the registry on `backend`; `None` when that backend is unavailable here.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, group_registry::config::DEFAULT_RESTORE_POINT_RETENTION_HOURS).await
}

/// [`spawn_app`] keeping restore points `retention_hours` (0: they expire at once) and
/// pruning them every second.
pub async fn spawn_app_with(backend: Backend, retention_hours: u64) -> Option<TestApp> {
    let dir = temp_dir("ferry-registry-test");
    let database_url = database(backend, &dir, "registry.db").await?;
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{ADMIN} admin *\n{VIEWER} viewer *\n{DEV_OPERATOR} operator dev\n")).expect("tokens file");
    let common = CommonArgs { tokens_file: Some(tokens), shutdown_grace_secs: 1, ..CommonArgs::default() };
    let mut config = group_registry::Config::new("127.0.0.1:0".parse().expect("addr"), database_url.clone(), common);
    config.restore_point_retention_hours = retention_hours;
    config.common.prune_interval_secs = 1;
    let server = group_registry::build(&config).await.expect("build registry");
    let addr = server.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));
    Some(TestApp {
        addr,
        database_url,
        admin: client(addr, Some(ADMIN)),
        viewer: client(addr, Some(VIEWER)),
        dev_operator: client(addr, Some(DEV_OPERATOR)),

        shutdown: Some(tx),
        dir,
    })
}

// Arrange helpers. Each panics with context: they set up, they are not under test.

pub async fn env(app: &TestApp, id: &str, production: bool) {
    let tier = if production { 1 } else { 2 };
    app.admin
        .clone()
        .create_environment(pb::CreateEnvironmentRequest {
            environment_id: id.into(),
            environment: Some(pb::Environment { tier, ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("create environment");
}

pub async fn group(app: &TestApp, env: &str, id: &str) -> String {
    app.admin
        .clone()
        .create_group(pb::CreateGroupRequest { parent: format!("environments/{env}"), group_id: id.into(), ..Default::default() })
        .await
        .expect("create group")
        .into_inner()
        .name
}

pub fn entity(kind: i32, key: &str, payload: &str) -> pb::Entity {
    pb::Entity { kind, key: key.into(), payload_json: payload.into(), ..Default::default() }
}

pub async fn create(app: &TestApp, group: &str, e: pb::Entity) -> Result<pb::Entity, tonic::Status> {
    app.admin
        .clone()
        .create_entity(pb::CreateEntityRequest { parent: group.into(), entity: Some(e), request_id: String::new() })
        .await
        .map(|r| r.into_inner())
}

pub async fn keys_of(app: &TestApp, group: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .admin
            .clone()
            .list_entities(pb::ListEntitiesRequest { parent: group.into(), page_size: 1000, page_token: token, kinds: vec![] })
            .await
            .expect("list entities")
            .into_inner();
        out.extend(page.entities.into_iter().map(|e| (e.kind, e.key)));
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

pub async fn revision(app: &TestApp, group: &str) -> i64 {
    app.admin
        .clone()
        .get_group(pb::GetGroupRequest { name: group.into(), ..Default::default() })
        .await
        .expect("get group")
        .into_inner()
        .revision
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

pub const DATA_SOURCE: i32 = 1;
pub const LOOKUP: i32 = 2;
pub const PORTAL: i32 = 6;
pub const SERVICE: i32 = 7;
pub const TABLE: i32 = 8;
pub const MAP: i32 = 9;
pub const SHARED: i32 = 2;
pub const DUPLICATED: i32 = 1;

//! `spawn_app`: the real group registry and the real merge engine on port 0, each with a
//! fresh database of the chosen backend, and typed clients. The engine can be stopped as
//! if it crashed and started again on the same database, and a second engine can share
//! the first one's job table.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferry_kit::client::{ClientInterceptor, channel};
use ferry_kit::config::CommonArgs;
use ferry_proto::merge::v1 as mpb;
use ferry_proto::merge::v1::merge_service_client::MergeServiceClient;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
pub use ferry_testkit::Backend;
use ferry_testkit::{database, unique};
use sea_orm::{ConnectionTrait, Database};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Registry = RegistryServiceClient<InterceptedService<Channel, ClientInterceptor>>;
pub type Merge = MergeServiceClient<InterceptedService<Channel, ClientInterceptor>>;

pub const ADMIN: &str = "admin-token-for-merge-tests-01";
/// Whom the tokens file names for `ADMIN`: what its plans and jobs record as `created_by`.
pub const ADMIN_SUBJECT: &str = "merge-admin@example.com";
/// An operator scoped to environment `b`, and its subject.
pub const SCOPED_TO_B: &str = "scoped-token-for-merge-tests-b";
pub const SCOPED_SUBJECT: &str = "bea@example.com";
/// A running engine: its server's shutdown and its workers.
pub struct EngineHandle {
    pub client: Merge,
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    workers: merge_engine::Workers,
}

impl EngineHandle {
    /// Stops the engine as a crash would: workers die where they are, the server stops.
    pub fn kill(mut self) {
        self.workers.abort();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.workers.abort();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub struct TestApp {
    pub registry: Registry,
    pub merge: Merge,
    pub engine: Option<EngineHandle>,
    pub engine_db: String,
    registry_url: String,
    tokens: PathBuf,
    registry_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    dir: PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.engine.take();
        if let Some(tx) = self.registry_shutdown.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn merge_client(addr: SocketAddr, token: &str) -> Merge {
    MergeServiceClient::with_interceptor(
        channel(&format!("http://{addr}")).expect("channel"),
        ClientInterceptor::new(Some(token)).expect("token"),
    )
}

fn common(tokens: &std::path::Path) -> CommonArgs {
    CommonArgs { tokens_file: Some(tokens.to_owned()), service_token: Some(ADMIN.into()), shutdown_grace_secs: 1, ..CommonArgs::default() }
}

impl TestApp {
    /// The registry's URL.
    pub fn registry_url(&self) -> &str {
        &self.registry_url
    }

    /// Starts another engine on this app's engine database (chunk size `chunk`).
    pub async fn start_engine(&self, chunk: i64) -> EngineHandle {
        self.start_engine_with(|c| c.chunk_size = chunk).await
    }

    /// Starts another engine on this app's engine database, configured by `tune`.
    pub async fn start_engine_with(&self, tune: impl FnOnce(&mut merge_engine::Config)) -> EngineHandle {
        let mut config =
            merge_engine::Config::new("127.0.0.1:0".parse().expect("addr"), &self.engine_db, &self.registry_url, common(&self.tokens));
        config.chunk_size = 50;
        config.lease_secs = 2;
        tune(&mut config);
        let (server, workers) = merge_engine::start(&config).await.expect("start merge engine");
        let addr = server.local_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        EngineHandle { client: merge_client(addr, ADMIN), addr, shutdown: Some(tx), workers }
    }

    /// Replaces the engine with a new one on the same database.
    pub async fn restart_engine(&mut self, chunk: i64) {
        self.restart_engine_with(|c| c.chunk_size = chunk).await
    }

    /// Replaces the engine with a new one on the same database, configured by `tune`.
    pub async fn restart_engine_with(&mut self, tune: impl FnOnce(&mut merge_engine::Config)) {
        if let Some(e) = self.engine.take() {
            e.kill();
        }
        let e = self.start_engine_with(tune).await;
        self.merge = e.client.clone();
        self.engine = Some(e);
    }
}

/// Starts the registry and the engine on `backend`; `None` when it is unavailable here.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with_chunk(backend, 50).await
}

pub async fn spawn_app_with_chunk(backend: Backend, chunk: i64) -> Option<TestApp> {
    let dir = std::env::temp_dir().join(unique("ferry-merge-test"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let registry_db = database(backend, &dir, "registry.db").await?;
    let engine_db = database(backend, &dir, "merge.db").await?;
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{ADMIN} admin+service * {ADMIN_SUBJECT}\n{SCOPED_TO_B} operator b {SCOPED_SUBJECT}\n"))
        .expect("tokens file");
    let rconfig = group_registry::Config::new("127.0.0.1:0".parse().expect("addr"), registry_db, common(&tokens));
    let server = group_registry::build(&rconfig).await.expect("build registry");
    let raddr = server.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));
    let registry = RegistryServiceClient::with_interceptor(
        channel(&format!("http://{raddr}")).expect("channel"),
        ClientInterceptor::new(Some(ADMIN)).expect("token"),
    )
    .max_decoding_message_size(64 * 1024 * 1024);
    let mut app = TestApp {
        registry,
        merge: merge_client(raddr, ADMIN),
        engine: None,
        engine_db,
        registry_url: format!("http://{raddr}"),
        tokens,
        registry_shutdown: Some(tx),
        dir,
    };
    app.restart_engine(chunk).await;
    Some(app)
}

// Registry content (environments, groups, entities) is set up by `content.rs`.
pub use crate::content::*;

pub fn plan_req(source: &str, recipient: &str) -> mpb::CreateMergePlanRequest {
    mpb::CreateMergePlanRequest { source: source.into(), recipient: recipient.into(), ..Default::default() }
}

pub async fn plan(app: &TestApp, req: mpb::CreateMergePlanRequest) -> mpb::MergePlan {
    app.merge.clone().create_merge_plan(req).await.expect("create merge plan").into_inner()
}

pub async fn get_plan(app: &TestApp, name: &str) -> mpb::MergePlan {
    app.merge.clone().get_merge_plan(mpb::GetMergePlanRequest { name: name.into() }).await.expect("get plan").into_inner()
}

pub async fn items(app: &TestApp, plan: &str, outcomes: Vec<i32>) -> Vec<mpb::MergePlanItem> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .merge
            .clone()
            .list_merge_plan_items(mpb::ListMergePlanItemsRequest {
                parent: plan.into(),
                page_size: 1000,
                page_token: token,
                outcomes: outcomes.clone(),
                kinds: vec![],
            })
            .await
            .expect("list plan items")
            .into_inner();
        out.extend(page.items);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

pub async fn apply(app: &TestApp, plan: &str, proceed: bool) -> Result<mpb::Job, tonic::Status> {
    app.merge
        .clone()
        .apply_merge_plan(mpb::ApplyMergePlanRequest {
            name: plan.into(),
            proceed_with_missing_dependencies: proceed,
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn get_job(client: &Merge, job: &str) -> mpb::Job {
    client.clone().get_job(mpb::GetJobRequest { name: job.into() }).await.expect("get job").into_inner()
}

/// Polls the job until it ends (deadline 60 s).
pub async fn wait_job(client: &Merge, job: &str) -> mpb::Job {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = get_job(client, job).await;
        if matches!(j.state, SUCCEEDED | FAILED | CANCELLED) {
            return j;
        }
        assert!(Instant::now() < deadline, "job {job} did not end in time: {j:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Applies and waits; panics unless the job succeeded.
pub async fn apply_ok(app: &TestApp, plan: &str) -> mpb::Job {
    let job = apply(app, plan, false).await.expect("apply");
    let done = wait_job(&app.merge, &job.name).await;
    assert_eq!(done.state, SUCCEEDED, "job failed: {:?}", done.error);
    done
}

/// Asserts that a group holds each (kind, key) once and returns how many it holds.
pub async fn assert_keys_unique(app: &TestApp, group: &str) -> usize {
    let all = entities_of(app, group).await;
    let mut keys: Vec<(i32, String)> = all.iter().map(|e| (e.kind, e.key.clone())).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "G1: {group} holds a (kind, key) twice");
    n
}

pub fn counts(p: &mpb::MergePlan) -> (i64, i64, i64, i64, i64) {
    let c = p.counts.unwrap_or_default();
    (c.creates, c.links, c.skips, c.conflicts, c.missing_dependencies)
}

pub fn result(j: &mpb::Job) -> mpb::JobResult {
    j.result.unwrap_or_default()
}

pub fn precondition_subjects(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status.get_details_precondition_failure().map(|p| p.violations.into_iter().map(|v| v.subject).collect()).unwrap_or_default()
}

pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status.get_details_bad_request().map(|b| b.field_violations.into_iter().map(|f| f.field).collect()).unwrap_or_default()
}

pub const DATA_SOURCE: i32 = 1;
pub const LOOKUP: i32 = 2;
pub const SERVICE: i32 = 7;
pub const TABLE: i32 = 8;

pub const CREATE: i32 = 1;
pub const LINK: i32 = 2;
pub const SKIP: i32 = 3;
pub const CONFLICT: i32 = 4;
pub const MISSING: i32 = 5;

pub const READY: i32 = 1;
pub const APPLIED: i32 = 3;
pub const STALE: i32 = 4;
pub const PLAN_CANCELLED: i32 = 5;
pub const PLAN_EXPIRED: i32 = 6;

pub const SUCCEEDED: i32 = 3;
pub const FAILED: i32 = 4;
pub const CANCELLED: i32 = 5;

pub const TAKE_SOURCE: i32 = 2;
pub const FAIL: i32 = 3;

/// Rows of `table` in the engine's database (not in the API).
pub async fn rows(app: &TestApp, table: &str) -> u64 {
    let db = Database::connect(&app.engine_db).await.expect("connect to the engine database");
    let sql = ferry_kit::db::stmt(db.get_database_backend(), &format!("SELECT COUNT(*) FROM {table}"), []);
    let n: i64 = db.query_one_raw(sql).await.expect("query").expect("a count").try_get_by_index(0).expect("count");
    let n = n as u64;
    db.close().await.ok();
    n
}

/// Edits the payload of the entity `name` in the registry (a change made since a merge).
pub async fn edit_payload(app: &TestApp, name: &str, payload_json: &str) {
    use ferry_proto::registry::v1 as rpb;
    app.registry
        .clone()
        .update_entity(rpb::UpdateEntityRequest {
            entity: Some(rpb::Entity { name: name.into(), payload_json: payload_json.into(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["payload_json".into()] }),
            request_id: String::new(),
        })
        .await
        .expect("edit the entity");
}

/// The work the engines' pending-work gauges report, read from the engine's database.
pub async fn pending(app: &TestApp) -> Vec<merge_engine::store::work::Pending> {
    let db = Database::connect(&app.engine_db).await.expect("connect to the engine database");
    let p = merge_engine::store::work::pending(&db).await.expect("pending work");
    db.close().await.ok();
    p
}

/// The violations' types in a FAILED_PRECONDITION.
pub fn precondition_types(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status.get_details_precondition_failure().map(|p| p.violations.into_iter().map(|v| v.r#type).collect()).unwrap_or_default()
}

/// How many times engines claimed a job (read from the engine's database: not in the API).
pub async fn claims(app: &TestApp, job: &str) -> i64 {
    let id = job.strip_prefix("jobs/").expect("job name");
    let db = Database::connect(&app.engine_db).await.expect("connect to the engine database");
    let sql = ferry_kit::db::stmt(db.get_database_backend(), "SELECT claims FROM jobs WHERE id = ?", [id.into()]);
    let row = db.query_one_raw(sql).await.expect("query").expect("job row");
    let n: i64 = row.try_get_by_index(0).expect("claims");
    db.close().await.ok();
    n
}

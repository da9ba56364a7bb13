//! `spawn_suite`: the registry, merge-engine, integration-control and the refresh
//! coordinator on port 0, each with a fresh database of the chosen backend; typed clients;
//! and ways to stop and restart integration-control and the coordinator on their databases
//! (a crash, an outage).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ferry_kit::client::{ClientInterceptor, channel};
use ferry_kit::config::CommonArgs;
use ferry_proto::audit::v1::audit_service_client::AuditServiceClient;
use ferry_proto::integration::v1 as ipb;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;
use ferry_proto::refresh::v1 as pb;
use ferry_proto::refresh::v1::refresh_service_client::RefreshServiceClient;
use ferry_proto::registry::v1 as rpb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
pub use ferry_testkit::Backend;
use ferry_testkit::{database, unique};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Svc = InterceptedService<Channel, ClientInterceptor>;
pub type Refresh = RefreshServiceClient<Svc>;
pub type Integration = IntegrationServiceClient<Svc>;
pub type Registry = RegistryServiceClient<Svc>;

pub const ADMIN: &str = "admin-token-for-refresh-tests";
pub const VIEWER: &str = "viewer-token-for-refresh-test";
pub const SERVICE: &str = "service-token-for-refresh-tes";
pub const PERSON: &str = "person-token-for-refresh-test";
/// The subject the tokens file names for [`ADMIN`] (who also has the approver right).
pub const ADMIN_SUBJECT: &str = "ada@example.com";
/// An operator with the approver right, and its subject.
pub const APPROVER: &str = "approver-token-for-refresh-tests";
pub const APPROVER_SUBJECT: &str = "vic@example.com";
/// An operator scoped to the environments `other` and `sandbox`.
pub const SCOPED: &str = "scoped-token-for-refresh-tests";
/// A served server: its shutdown trigger and its task.
struct Running {
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn serve(server: ferry_kit::server::Server) -> Running {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server
            .serve(async move {
                let _ = rx.await;
            })
            .await;
    });
    Running { shutdown: tx, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Coordinator knobs a test may change before starting it.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub step_delay_ms: u64,
    pub retry_attempts: u32,
    pub retry_base_ms: u64,
    /// Seconds of a run's lease (1: a crashed coordinator's runs are free at once).
    pub lease_secs: u64,
    /// The coordinator's holder id, the same on every restart; `None`: a new random one
    /// each time (a restart is another coordinator taking over).
    pub holder_id: Option<String>,
    /// A pause after every journaled operation (a test stops the coordinator in it).
    pub op_delay_ms: u64,
    /// How long after its end a refresh can be rolled back.
    pub rollback_window_hours: u64,
    /// The four-eyes rule on approval gates.
    pub four_eyes: bool,
    /// JWT bearer tokens every service accepts beside the tokens file (set when the suite
    /// starts).
    pub jwt: Option<ferry_kit::config::JwtArgs>,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            step_delay_ms: 0,
            retry_attempts: 30,
            retry_base_ms: 100,
            lease_secs: 1,
            holder_id: None,
            op_delay_ms: 0,
            rollback_window_hours: 168,
            four_eyes: false,
            jwt: None,
        }
    }
}

pub struct Suite {
    pub refresh: Refresh,
    pub refresh_viewer: Refresh,
    pub integration: Integration,
    pub person: Integration,
    pub registry: Registry,
    /// The registry's `/metrics` endpoint (every service of this process serves the same
    /// process-wide registry).
    pub metrics: SocketAddr,
    dir: PathBuf,
    common: CommonArgs,
    registry_url: String,
    merge_url: String,
    integration_addr: SocketAddr,
    integration_db: String,
    sealing_key_file: PathBuf,
    refresh_db: String,
    knobs: Knobs,
    others: Vec<Running>,
    integration_server: Option<Running>,
    coordinator: Option<(Running, refresh_coordinator::Driver)>,
    /// Where the coordinator started last listens.
    refresh_addr: Option<SocketAddr>,
    /// More coordinators on the same database (`start_replica`).
    replicas: Vec<(Running, refresh_coordinator::Driver)>,
}

impl Drop for Suite {
    fn drop(&mut self) {
        for (r, d) in self.coordinator.take().into_iter().chain(self.replicas.drain(..)) {
            d.stop();
            let _ = r.shutdown.send(());
        }
        if let Some(r) = self.integration_server.take() {
            let _ = r.shutdown.send(());
        }
        for r in self.others.drain(..) {
            let _ = r.shutdown.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn client_channel(addr: SocketAddr, token: &str) -> (Channel, ClientInterceptor) {
    (channel(&format!("http://{addr}")).expect("channel"), ClientInterceptor::new(Some(token)).expect("token"))
}

/// Starts the four services on `backend`; `None` when that backend is unavailable here.
pub async fn spawn_suite(backend: Backend, knobs: Knobs) -> Option<Suite> {
    let dir = std::env::temp_dir().join(unique("ferry-refresh-test"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let registry_db = database(backend, &dir, "registry.db").await?;
    let merge_db = database(backend, &dir, "merge.db").await?;
    let integration_db = database(backend, &dir, "integration.db").await?;
    let refresh_db = database(backend, &dir, "refresh.db").await?;
    let tokens = dir.join("tokens");
    std::fs::write(
        &tokens,
        format!(
            "{ADMIN} admin+approver * {ADMIN_SUBJECT}
{VIEWER} viewer *
{SERVICE} admin+service * refresh-coordinator
{PERSON} operator * pat@example.com
{APPROVER} operator+approver * {APPROVER_SUBJECT}
{SCOPED} operator other,sandbox sam@example.com
"
        ),
    )
    .expect("tokens file");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let common = CommonArgs {
        tokens_file: Some(tokens),
        shutdown_grace_secs: 1,
        service_token: Some(SERVICE.into()),
        metrics_listen: Some(any),
        jwt: Box::new(knobs.jwt.clone().unwrap_or_default()),
        ..CommonArgs::default()
    };

    let registry = group_registry::build(&group_registry::Config::new(any, registry_db, common.clone())).await.expect("build registry");
    let registry_addr = registry.local_addr();
    let metrics = registry.metrics_addr().expect("metrics endpoint");
    let registry_url = format!("http://{registry_addr}");
    let mut others = vec![serve(registry)];

    let merge = merge_engine::build(&merge_engine::Config::new(any, merge_db, registry_url.clone(), common.clone()))
        .await
        .expect("build merge-engine");
    let merge_url = format!("http://{}", merge.local_addr());
    others.push(serve(merge));

    let sealing_key_file = dir.join("sealing.key");
    integration_control::generate_sealing_key(&sealing_key_file).expect("sealing key");
    let mut suite = Suite {
        refresh: RefreshServiceClient::with_interceptor(channel("http://127.0.0.1:1").expect("channel"), ClientInterceptor::default()),
        refresh_viewer: RefreshServiceClient::with_interceptor(
            channel("http://127.0.0.1:1").expect("channel"),
            ClientInterceptor::default(),
        ),
        integration: IntegrationServiceClient::with_interceptor(
            channel("http://127.0.0.1:1").expect("channel"),
            ClientInterceptor::default(),
        ),
        person: IntegrationServiceClient::with_interceptor(channel("http://127.0.0.1:1").expect("channel"), ClientInterceptor::default()),
        registry: {
            let (ch, i) = client_channel(registry_addr, ADMIN);
            RegistryServiceClient::with_interceptor(ch, i)
        },
        metrics,
        dir,
        common,
        registry_url,
        merge_url,
        integration_addr: any,
        integration_db,
        sealing_key_file,
        refresh_db,
        knobs,
        others,
        integration_server: None,
        coordinator: None,
        refresh_addr: None,
        replicas: Vec::new(),
    };
    suite.start_integration().await;
    let (ch, i) = client_channel(suite.integration_addr, ADMIN);
    suite.integration = IntegrationServiceClient::with_interceptor(ch, i);
    let (ch, i) = client_channel(suite.integration_addr, PERSON);
    suite.person = IntegrationServiceClient::with_interceptor(ch, i);
    suite.start_coordinator().await;
    Some(suite)
}

impl Suite {
    /// Starts integration-control on its database, on the port it had before (if any).
    pub async fn start_integration(&mut self) {
        let mut attempts = 0;
        let server = loop {
            let config = integration_control::Config {
                listen: self.integration_addr,
                database_url: self.integration_db.clone(),
                registry_url: self.registry_url.clone(),
                sealing_key_file: self.sealing_key_file.clone(),
                snapshot_retention_hours: integration_control::config::DEFAULT_SNAPSHOT_RETENTION_HOURS,
                webhooks: integration_control::config::WebhookArgs { min_backoff_ms: 20, max_backoff_ms: 200, ..Default::default() },
                common: self.common.clone(),
            };
            match integration_control::build(&config).await {
                Ok(s) => break s,
                Err(e) if attempts < 50 => {
                    attempts += 1;
                    eprintln!("integration-control rebind: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("build integration-control: {e}"),
            }
        };
        self.integration_addr = server.local_addr();
        self.integration_server = Some(serve(server));
    }

    /// Stops integration-control (an outage); the coordinator's calls fail UNAVAILABLE.
    pub async fn stop_integration(&mut self) {
        if let Some(r) = self.integration_server.take() {
            r.stop().await;
        }
    }

    fn coordinator_config(&self) -> refresh_coordinator::Config {
        let mut config = refresh_coordinator::Config::new(
            "127.0.0.1:0".parse().expect("addr"),
            self.refresh_db.clone(),
            self.registry_url.clone(),
            format!("http://{}", self.integration_addr),
            self.merge_url.clone(),
            self.common.clone(),
        );
        config.lease_secs = self.knobs.lease_secs;
        config.holder_id = self.knobs.holder_id.clone();
        config.step_delay_ms = self.knobs.step_delay_ms;
        config.op_delay_ms = self.knobs.op_delay_ms;
        config.retry_attempts = self.knobs.retry_attempts;
        config.retry_base_ms = self.knobs.retry_base_ms;
        config.rollback_window_hours = self.knobs.rollback_window_hours;
        config.four_eyes = self.knobs.four_eyes;
        config
    }

    /// A client of integration-control presenting `token`.
    pub fn integration_as(&self, token: &str) -> Integration {
        let (ch, i) = client_channel(self.integration_addr, token);
        IntegrationServiceClient::with_interceptor(ch, i)
    }

    /// A client of the coordinator presenting `token`.
    pub fn refresh_as(&self, token: &str) -> Refresh {
        let (ch, i) = client_channel(self.refresh_addr.expect("a coordinator started"), token);
        RefreshServiceClient::with_interceptor(ch, i)
    }

    /// The audit client of one service (`group-registry`, `merge-engine`,
    /// `integration-control`, `refresh-coordinator`), as the admin.
    pub fn audit(&self, service: &str) -> AuditServiceClient<Svc> {
        let (ch, i) = client_channel(self.service_addr(service), ADMIN);
        AuditServiceClient::with_interceptor(ch, i)
    }

    /// Where `service` listens.
    pub fn service_addr(&self, service: &str) -> SocketAddr {
        let url = match service {
            "group-registry" => &self.registry_url,
            "merge-engine" => &self.merge_url,
            "integration-control" => return self.integration_addr,
            "refresh-coordinator" => return self.refresh_addr.expect("a coordinator started"),
            other => panic!("no service {other}"),
        };
        url.trim_start_matches("http://").parse().expect("a service address")
    }

    /// The database URL of integration-control.
    pub fn integration_database(&self) -> &str {
        &self.integration_db
    }

    /// The knobs of the next coordinator started (`start_coordinator`).
    pub fn set_knobs(&mut self, knobs: Knobs) {
        self.knobs = knobs;
    }

    /// Starts a coordinator on the coordinator's database (a restart resumes its runs).
    pub async fn start_coordinator(&mut self) {
        let (server, driver) = refresh_coordinator::start(&self.coordinator_config()).await.expect("build refresh-coordinator");
        let addr = server.local_addr();
        self.refresh_addr = Some(addr);
        self.coordinator = Some((serve(server), driver));
        let (ch, i) = client_channel(addr, ADMIN);
        self.refresh = RefreshServiceClient::with_interceptor(ch, i);
        let (ch, i) = client_channel(addr, VIEWER);
        self.refresh_viewer = RefreshServiceClient::with_interceptor(ch, i);
    }

    /// Starts one more coordinator on the same database, with a holder id of its own.
    pub async fn start_replica(&mut self) {
        let mut config = self.coordinator_config();
        config.holder_id = Some(format!("replica-{}", self.replicas.len() + 1));
        let (server, driver) = refresh_coordinator::start(&config).await.expect("build a replica");
        self.replicas.push((serve(server), driver));
    }

    /// Makes schedule `id` due at `at` (microseconds), as if time had passed: its next due
    /// time, in its row and its document.
    pub async fn make_due(&self, id: &str, at: i64) {
        use sea_orm::ConnectionTrait;
        let db = ferry_kit::db::connect(&self.refresh_db).await.expect("the coordinator's database");
        let backend = db.get_database_backend();
        let row = db
            .query_one_raw(ferry_kit::db::stmt(backend, "SELECT body FROM schedules WHERE id = ?", vec![id.into()]))
            .await
            .expect("read schedule")
            .expect("schedule row");
        let mut body: serde_json::Value = serde_json::from_str(&row.try_get_by_index::<String>(0).expect("body")).expect("json");
        body["next_due"] = at.into();
        let sql = "UPDATE schedules SET next_due = ?, body = ? WHERE id = ?";
        db.execute_raw(ferry_kit::db::stmt(backend, sql, vec![at.into(), body.to_string().into(), id.into()])).await.expect("make due");
        let _ = db.close().await;
    }

    /// The operations in run `id`'s journal, as (step, op), in the order they were recorded.
    pub async fn journal(&self, id: &str) -> Vec<(i32, String)> {
        use sea_orm::ConnectionTrait;
        let db = ferry_kit::db::connect(&self.refresh_db).await.expect("the coordinator's database");
        let sql = "SELECT step, op FROM journal WHERE run_id = ? ORDER BY recorded_at, step, op";
        let rows = db.query_all_raw(ferry_kit::db::stmt(db.get_database_backend(), sql, vec![id.into()])).await.expect("journal");
        let entries = rows.iter().map(|r| (r.try_get_by_index(0).expect("step"), r.try_get_by_index(1).expect("op"))).collect();
        let _ = db.close().await;
        entries
    }

    /// Stops the coordinator at once, wherever its runs are (as a crash would).
    pub async fn crash_coordinator(&mut self) {
        if let Some((r, d)) = self.coordinator.take() {
            d.stop();
            r.stop().await;
        }
    }
}

// Arrange helpers: they set up, they are not under test, so they panic with context.

pub async fn env(s: &Suite, id: &str, production: bool) {
    s.registry
        .clone()
        .create_environment(rpb::CreateEnvironmentRequest {
            environment_id: id.into(),
            environment: Some(rpb::Environment { tier: if production { 1 } else { 2 }, ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("create environment");
}

pub async fn group(s: &Suite, env: &str, id: &str, keys: &[&str]) -> String {
    let g = s
        .registry
        .clone()
        .create_group(rpb::CreateGroupRequest {
            parent: format!("environments/{env}"),
            group_id: id.into(),
            group: None,
            request_id: String::new(),
        })
        .await
        .expect("create group")
        .into_inner();
    for k in keys {
        s.registry
            .clone()
            .create_entity(rpb::CreateEntityRequest {
                parent: g.name.clone(),
                entity: Some(rpb::Entity { kind: 7, key: (*k).into(), payload_json: format!(r#"{{"key":"{k}"}}"#), ..Default::default() }),
                request_id: String::new(),
            })
            .await
            .expect("create entity");
    }
    g.name
}

pub async fn project(s: &Suite, env: &str, id: &str, groups: Vec<String>) {
    s.registry
        .clone()
        .create_project(rpb::CreateProjectRequest {
            parent: format!("environments/{env}"),
            project_id: id.into(),
            project: Some(rpb::Project { groups, ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("create project");
}

pub async fn integration(s: &Suite, env: &str, id: &str, active: bool) -> String {
    s.integration
        .clone()
        .create_integration(ipb::CreateIntegrationRequest {
            parent: format!("environments/{env}"),
            integration_id: id.into(),
            integration: Some(ipb::Integration {
                external_system: "rally".into(),
                base_url: "https://rally.example.com".into(),
                active,
                ..Default::default()
            }),
            api_key: format!("key-of-{env}-{id}"),
            request_id: String::new(),
        })
        .await
        .expect("create integration")
        .into_inner()
        .name
}

pub async fn mapping(s: &Suite, integration: &str, id: &str, target: &str, active: bool) -> String {
    s.integration
        .clone()
        .create_mapping(ipb::CreateMappingRequest {
            parent: integration.into(),
            mapping_id: id.into(),
            mapping: Some(ipb::Mapping {
                target_environment: target.into(),
                active,
                field_mapping_json: r#"{"title":"name"}"#.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create mapping")
        .into_inner()
        .name
}

pub async fn job(s: &Suite, env: &str, id: &str, integration: &str) -> String {
    s.integration
        .clone()
        .create_sync_job(ipb::CreateSyncJobRequest {
            parent: format!("environments/{env}"),
            sync_job_id: id.into(),
            sync_job: Some(ipb::SyncJob {
                integration: integration.into(),
                schedule: "*/15 * * * *".into(),
                external: Some(true),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create sync job")
        .into_inner()
        .name
}

/// A person pauses a job by hand.
pub async fn pause_by_person(s: &Suite, job: &str) {
    s.person
        .clone()
        .pause_sync_job(ipb::PauseSyncJobRequest { name: job.into(), reason: "maintenance".into(), request_id: String::new() })
        .await
        .expect("pause job");
}

pub async fn get_integration(s: &Suite, name: &str) -> ipb::Integration {
    s.integration.clone().get_integration(ipb::GetIntegrationRequest { name: name.into() }).await.expect("get integration").into_inner()
}

pub async fn get_mapping(s: &Suite, name: &str) -> ipb::Mapping {
    s.integration.clone().get_mapping(ipb::GetMappingRequest { name: name.into() }).await.expect("get mapping").into_inner()
}

pub async fn get_job(s: &Suite, name: &str) -> ipb::SyncJob {
    s.integration.clone().get_sync_job(ipb::GetSyncJobRequest { name: name.into() }).await.expect("get job").into_inner()
}

pub async fn authorize(s: &Suite, mapping: &str) -> Result<ipb::AuthorizeSyncResponse, tonic::Status> {
    s.integration
        .clone()
        .authorize_sync(ipb::AuthorizeSyncRequest { mapping: mapping.into(), job: String::new() })
        .await
        .map(|r| r.into_inner())
}

pub async fn fence(s: &Suite, env: &str) -> ipb::EnvironmentFence {
    s.integration
        .clone()
        .get_environment_fence(ipb::GetEnvironmentFenceRequest { name: format!("environments/{env}/fence") })
        .await
        .expect("get fence")
        .into_inner()
}

pub fn options(mode: pb::RefreshMode, require_approval: bool) -> Option<pb::RefreshOptions> {
    Some(pb::RefreshOptions { mode: mode as i32, suspend_credentials_instead: false, require_approval, profile: None, lease_drain: 0 })
}

pub async fn start(s: &Suite, source: &str, destination: &str, opts: Option<pb::RefreshOptions>) -> Result<pb::RefreshRun, tonic::Status> {
    s.refresh
        .clone()
        .start_refresh(pb::StartRefreshRequest {
            source: format!("environments/{source}"),
            destination: format!("environments/{destination}"),
            options: opts,
            plan_etag: String::new(),
            request_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn get_run(s: &Suite, name: &str) -> pb::RefreshRun {
    s.refresh.clone().get_refresh_run(pb::GetRefreshRunRequest { name: name.into() }).await.expect("get run").into_inner()
}

/// The run ended (or failed and waits).
pub fn terminal(run: &pb::RefreshRun) -> bool {
    matches!(run.state, SUCCEEDED | FAILED | ABORTED)
}

pub const SUCCEEDED: i32 = pb::RunState::Succeeded as i32;
pub const FAILED: i32 = pb::RunState::Failed as i32;
pub const WAITING: i32 = pb::RunState::Waiting as i32;
pub const ABORTED: i32 = pb::RunState::Aborted as i32;
pub const STEP_SUCCEEDED: i32 = pb::StepState::Succeeded as i32;
pub const STEP_RUNNING: i32 = pb::StepState::Running as i32;

/// Polls the run until `done` holds, for at most `secs` seconds.
pub async fn wait_for(s: &Suite, name: &str, secs: u64, done: impl Fn(&pb::RefreshRun) -> bool) -> pb::RefreshRun {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(r) = s.refresh.clone().get_refresh_run(pb::GetRefreshRunRequest { name: name.into() }).await {
            let run = r.into_inner();
            if done(&run) {
                return run;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "run {name} did not get there in {secs}s; state {} steps {:?}",
                    run.state,
                    run.steps.iter().map(|s| (s.number, s.state, s.log.clone())).collect::<Vec<_>>()
                );
            }
        } else if tokio::time::Instant::now() > deadline {
            panic!("run {name} unreadable for {secs}s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The process's metrics, scraped over HTTP.
pub async fn scrape(s: &Suite) -> ferry_testkit::Scrape {
    ferry_testkit::scrape(s.metrics, "/metrics").await.expect("scrape /metrics")
}

pub fn steps_done(run: &pb::RefreshRun) -> usize {
    run.steps.iter().filter(|s| s.state == STEP_SUCCEEDED).count()
}

pub fn precondition_subjects(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status.get_details_precondition_failure().map(|p| p.violations.into_iter().map(|v| v.subject).collect()).unwrap_or_default()
}

/// The fields an INVALID_ARGUMENT names.
pub fn field_violations(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status.get_details_bad_request().map(|b| b.field_violations.into_iter().map(|v| v.field).collect()).unwrap_or_default()
}

//! `ferry-bench refresh`: a MANAGED refresh through the four real services (in-process, on
//! SQLite in a temporary folder or on PostgreSQL) of a production environment with 100
//! integrations, 1,000 mappings, 500 jobs and 100,000 entities over a sandbox. Prints each
//! step's time, the time its calls to other services took, the coordinator's own share
//! (the rest), its operations, and the rows the coordinator wrote for it (the run row, the
//! journal), from the coordinator's metrics; then one JSON line.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferry_fuzz::{Databases, Suite};
use ferry_kit::client::{ClientInterceptor, channel};
use ferry_proto::integration::v1 as ipb;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;
use ferry_proto::refresh::v1 as pb;
use ferry_proto::refresh::v1::refresh_service_client::RefreshServiceClient;
use ferry_proto::registry::v1 as rpb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use serde_json::json;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Svc = InterceptedService<Channel, ClientInterceptor>;

const DATABASES: [&str; 4] =
    ["ferry_bench_refresh_registry", "ferry_bench_refresh_merge", "ferry_bench_refresh_integration", "ferry_bench_refresh_coordinator"];

#[derive(Debug, clap::Args)]
pub struct RefreshArgs {
    /// Entities in production (over 10 groups).
    #[arg(long, default_value_t = 100_000)]
    entities: usize,
    /// Integrations in production; each has mappings and jobs (below), the sandbox a tenth.
    #[arg(long, default_value_t = 100)]
    integrations: usize,
    #[arg(long, default_value_t = 10)]
    mappings_per_integration: usize,
    #[arg(long, default_value_t = 5)]
    jobs_per_integration: usize,
    /// A PostgreSQL URL whose user may create databases (the bench creates one per
    /// service and drops them afterwards); default: SQLite files in a temporary folder.
    #[arg(long)]
    database_url: Option<String>,
}

struct Clients {
    registry: RegistryServiceClient<Svc>,
    integration: IntegrationServiceClient<Svc>,
    refresh: RefreshServiceClient<Svc>,
}

impl Clients {
    fn connect(suite: &Suite) -> anyhow::Result<Self> {
        let interceptor = ClientInterceptor::new(Some(&suite.tokens.admin))?;
        let svc = |name: &str| -> anyhow::Result<Svc> {
            let url = suite.url(name).with_context(|| format!("{name} is not running"))?;
            Ok(InterceptedService::new(channel(url)?, interceptor.clone()))
        };
        Ok(Self {
            registry: RegistryServiceClient::new(svc("ferry.registry.v1.RegistryService")?).max_encoding_message_size(64 << 20),
            integration: IntegrationServiceClient::new(svc("ferry.integration.v1.IntegrationService")?),
            refresh: RefreshServiceClient::new(svc("ferry.refresh.v1.RefreshService")?).max_decoding_message_size(64 << 20),
        })
    }
}

/// An environment with `entities` over 10 groups and `integrations` integrations, each
/// with its mappings and jobs.
async fn environment(
    c: &mut Clients,
    id: &str,
    production: bool,
    entities: usize,
    integrations: usize,
    a: &RefreshArgs,
) -> anyhow::Result<()> {
    let env = format!("environments/{id}");
    let tier = if production { 1 } else { 2 };
    let environment = Some(rpb::Environment { tier, ..Default::default() });
    c.registry
        .create_environment(rpb::CreateEnvironmentRequest { environment_id: id.into(), environment, request_id: String::new() })
        .await?;
    for g in 0..10 {
        let group = format!("{env}/groups/g{g}");
        c.registry.create_group(rpb::CreateGroupRequest { parent: env.clone(), group_id: format!("g{g}"), ..Default::default() }).await?;
        let range = (g * entities / 10)..((g + 1) * entities / 10);
        crate::data::import(&c.registry, &group, range, "source").await?;
    }
    for i in 0..integrations {
        let integration = Some(ipb::Integration {
            external_system: "rally".into(),
            base_url: "https://rally.example.com".into(),
            active: true,
            ..Default::default()
        });
        let req = ipb::CreateIntegrationRequest {
            parent: env.clone(),
            integration_id: format!("i{i}"),
            integration,
            api_key: format!("key-{id}-{i}"),
            request_id: String::new(),
        };
        let name = c.integration.create_integration(req).await?.into_inner().name;
        for m in 0..a.mappings_per_integration {
            let mapping = Some(ipb::Mapping { active: true, field_mapping_json: r#"{"title":"name"}"#.into(), ..Default::default() });
            let req = ipb::CreateMappingRequest { parent: name.clone(), mapping_id: format!("m{m}"), mapping, request_id: String::new() };
            c.integration.create_mapping(req).await?;
        }
        for j in 0..a.jobs_per_integration {
            let sync_job = Some(ipb::SyncJob {
                integration: name.clone(),
                schedule: "*/15 * * * *".into(),
                external: Some(true),
                ..Default::default()
            });
            let req =
                ipb::CreateSyncJobRequest { parent: env.clone(), sync_job_id: format!("i{i}-j{j}"), sync_job, request_id: String::new() };
            c.integration.create_sync_job(req).await?;
        }
    }
    Ok(())
}

/// The coordinator's per-step sums from the metrics exposition: (remote seconds, remote
/// calls, run-row writes, journal writes) by step label.
fn per_step(text: &str) -> BTreeMap<String, (f64, f64, f64, f64)> {
    let mut out: BTreeMap<String, (f64, f64, f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let label = |key: &str| series.split(&format!("{key}=\"")).nth(1).and_then(|r| r.split('"').next()).map(str::to_owned);
        let Some(step) = label("step") else { continue };
        let e = out.entry(step).or_default();
        if series.starts_with("ferry_refresh_remote_call_duration_seconds_sum{") {
            e.0 += value;
        } else if series.starts_with("ferry_refresh_remote_call_duration_seconds_count{") {
            e.1 += value;
        } else if series.starts_with("ferry_refresh_run_writes_total{") {
            match label("table").as_deref() {
                Some("runs") => e.2 += value,
                Some("journal") => e.3 += value,
                _ => {}
            }
        }
    }
    out
}

fn seconds(t: Option<&prost_types::Timestamp>) -> f64 {
    t.map_or(0.0, |t| t.seconds as f64 + f64::from(t.nanos) / 1e9)
}

pub async fn run(a: RefreshArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let dbs = match &a.database_url {
        Some(url) => {
            let [registry, merge, integration, refresh] = crate::data::fresh_databases(url, DATABASES).await?;
            Databases { registry, merge, integration, refresh }
        }
        None => Databases::sqlite(dir.path()),
    };
    let backend = if a.database_url.is_some() { "postgres" } else { "sqlite" };
    let suite = Suite::start(&dbs, dir.path()).await?;
    let mut c = Clients::connect(&suite)?;
    let loading = Instant::now();
    eprintln!("loading production ({} entities, {} integrations) and the sandbox (not timed)", a.entities, a.integrations);
    environment(&mut c, "prod", true, a.entities, a.integrations, &a).await?;
    environment(&mut c, "sandbox", false, a.entities / 10, a.integrations / 10, &a).await?;
    eprintln!("loaded in {:.1} s; refreshing", loading.elapsed().as_secs_f64());

    let before = per_step(&ferry_kit::metrics::render());
    let started = Instant::now();
    let req = pb::StartRefreshRequest {
        source: "environments/prod".into(),
        destination: "environments/sandbox".into(),
        options: Some(pb::RefreshOptions { mode: pb::RefreshMode::Managed as i32, ..Default::default() }),
        plan_etag: String::new(),
        request_id: String::new(),
    };
    let run = c.refresh.start_refresh(req).await?.into_inner();
    let start_s = started.elapsed().as_secs_f64();
    let mut watch = c.refresh.watch_refresh_run(pb::WatchRefreshRunRequest { name: run.name.clone() }).await?.into_inner();
    let mut last = run;
    while let Some(r) =
        tokio::time::timeout(Duration::from_secs(1800), watch.message()).await.context("the refresh took over 30 minutes")??
    {
        last = r;
    }
    let total_s = started.elapsed().as_secs_f64();
    if last.state != pb::RunState::Succeeded as i32 {
        bail!("the refresh ended {:?}: {:?}", pb::RunState::try_from(last.state), last.error);
    }
    let after = per_step(&ferry_kit::metrics::render());
    suite.shutdown().await;
    if let Some(url) = &a.database_url {
        crate::data::drop_databases(url, DATABASES).await;
    }

    const LABELS: [&str; 9] = [
        "check",
        "deactivate_source_integrations",
        "pause_jobs",
        "snapshot_destination",
        "copy",
        "disable_source_mappings",
        "restore_destination_mappings",
        "reactivate_source_integrations",
        "resume_jobs",
    ];
    println!(
        "{:<3} {:<48} {:>9} {:>9} {:>11} {:>5} {:>9} {:>6} {:>8}",
        "#", "step", "step ms", "remote ms", "own ms", "ops", "own/op ms", "runs", "journal"
    );
    let mut steps = Vec::new();
    for (st, label) in last.steps.iter().zip(LABELS) {
        let ms = (seconds(st.end_time.as_ref()) - seconds(st.start_time.as_ref())) * 1000.0;
        let (b, e) = (before.get(label).copied().unwrap_or_default(), after.get(label).copied().unwrap_or_default());
        let (remote_ms, calls, runs, journal) = ((e.0 - b.0) * 1000.0, e.1 - b.1, e.2 - b.2, e.3 - b.3);
        let own_ms = (ms - remote_ms).max(0.0);
        let per_op = if calls > 0.0 { own_ms / calls } else { own_ms };
        println!(
            "{:<3} {:<48} {ms:>9.1} {remote_ms:>9.1} {own_ms:>11.1} {calls:>5} {per_op:>9.2} {runs:>6} {journal:>8}",
            st.number, st.title
        );
        steps.push(json!({
            "step": st.number, "title": st.title, "ms": crate::round(ms), "remote_ms": crate::round(remote_ms),
            "own_ms": crate::round(own_ms), "remote_calls": calls, "own_ms_per_call": crate::round(per_op),
            "run_row_writes": runs, "journal_writes": journal,
        }));
    }
    println!(
        "{}",
        json!({
            "backend": backend,
            "entities": a.entities,
            "integrations": a.integrations,
            "mappings": a.integrations * a.mappings_per_integration,
            "jobs": a.integrations * a.jobs_per_integration,
            "start_s": crate::round(start_s),
            "total_s": crate::round(total_s),
            "steps": steps,
        })
    );
    Ok(())
}

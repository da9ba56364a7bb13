//! `ferry-bench leases`: sync leases as runtimes use them, against the four real services
//! (in-process, authentication and the audit log on, SQLite in a temporary folder or
//! PostgreSQL). An open-loop generator grants and renews leases at a fixed rate (half
//! AcquireSyncLease, half RenewSyncLease of a lease granted before) and reports each one's
//! latency; then runtimes renewing every `--renew-every` hold leases while the
//! environment is fenced, and the time from the fence's reply to each one's first refused
//! renewal is reported. Prints a table, then one JSON line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ferry_fuzz::{Databases, Suite};
use ferry_kit::client::{ClientInterceptor, channel};
use ferry_proto::integration::v1 as ipb;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;
use ferry_proto::registry::v1 as rpb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Client = IntegrationServiceClient<InterceptedService<Channel, ClientInterceptor>>;

const DATABASES: [&str; 4] =
    ["ferry_bench_leases_registry", "ferry_bench_leases_merge", "ferry_bench_leases_integration", "ferry_bench_leases_coordinator"];

#[derive(Debug, clap::Args)]
pub struct LeasesArgs {
    /// Lease calls per second (half grants, half renewals).
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Length of the fixed-rate phase: 30s, 500ms, 2m.
    #[arg(long, default_value = "30s", value_parser = crate::load::parse_duration)]
    duration: Duration,
    /// Mappings leased (10 per integration).
    #[arg(long, default_value_t = 100)]
    mappings: usize,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Runtimes holding a lease while the environment is fenced.
    #[arg(long, default_value_t = 20)]
    runtimes: usize,
    /// How often those runtimes renew.
    #[arg(long, default_value = "100ms", value_parser = crate::load::parse_duration)]
    renew_every: Duration,
    /// A PostgreSQL URL whose user may create databases (the bench creates one per
    /// service and drops them afterwards); default: SQLite files in a temporary folder.
    #[arg(long)]
    database_url: Option<String>,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    crate::round(h.value_at_quantile(q) as f64 / 1000.0)
}

fn acquire(mapping: &str) -> ipb::AcquireSyncLeaseRequest {
    ipb::AcquireSyncLeaseRequest { mapping: mapping.into(), job: String::new(), ttl: None, request_id: String::new() }
}

/// The sandbox with `n` mappings over n/10 integrations; their names.
async fn seed(suite: &Suite, c: &mut Client, n: usize) -> anyhow::Result<Vec<String>> {
    let interceptor = ClientInterceptor::new(Some(&suite.tokens.admin))?;
    let url = suite.url("ferry.registry.v1.RegistryService").context("the registry is not running")?;
    let mut registry = RegistryServiceClient::with_interceptor(channel(url)?, interceptor);
    let environment = Some(rpb::Environment { tier: 2, ..Default::default() });
    let req = rpb::CreateEnvironmentRequest { environment_id: "sandbox".into(), environment, request_id: String::new() };
    registry.create_environment(req).await?;
    let mut mappings = Vec::with_capacity(n);
    for i in 0..n.div_ceil(10) {
        let integration = Some(ipb::Integration {
            external_system: "rally".into(),
            base_url: "https://rally.example.com".into(),
            active: true,
            ..Default::default()
        });
        let req = ipb::CreateIntegrationRequest {
            parent: "environments/sandbox".into(),
            integration_id: format!("i{i}"),
            integration,
            api_key: format!("key-{i}"),
            request_id: String::new(),
        };
        let parent = c.create_integration(req).await?.into_inner().name;
        for m in 0..10.min(n - i * 10) {
            let mapping = Some(ipb::Mapping { active: true, field_mapping_json: "{}".into(), ..Default::default() });
            let req = ipb::CreateMappingRequest { parent: parent.clone(), mapping_id: format!("m{m}"), mapping, request_id: String::new() };
            mappings.push(c.create_mapping(req).await?.into_inner().name);
        }
    }
    Ok(mappings)
}

/// What the fixed-rate phase measured.
struct Phase {
    acquire: Histogram<u64>,
    renew: Histogram<u64>,
    failures: u64,
    elapsed: Duration,
    max_send_lag: Duration,
}

async fn fixed_rate(clients: &[Client], mappings: &[String], rate: u32, duration: Duration) -> anyhow::Result<Phase> {
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let held: Arc<Mutex<Vec<String>>> = Arc::default();
    let (mut acquire_h, mut renew_h, mut failures) = (histogram()?, histogram()?, 0u64);
    let mut record = |(renewal, elapsed, ok): (bool, Duration, bool)| {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1);
        if renewal {
            renew_h.saturating_record(us)
        } else {
            acquire_h.saturating_record(us)
        }
        failures += u64::from(!ok);
    };
    let mut tasks = JoinSet::new();
    let mut max_send_lag = Duration::ZERO;
    let start = Instant::now();
    for seq in 0..total {
        let at = start + Duration::from_secs_f64(seq as f64 / f64::from(rate));
        let now = Instant::now();
        if now < at {
            tokio::time::sleep_until(at).await;
        } else {
            max_send_lag = max_send_lag.max(now - at);
        }
        let mut c = clients[seq as usize % clients.len()].clone();
        let renewal = seq % 2 == 1;
        let target = if renewal {
            let h = held.lock().map_err(|_| anyhow::anyhow!("lease list poisoned"))?;
            (!h.is_empty()).then(|| h[(seq as usize / 2) % h.len()].clone())
        } else {
            None
        };
        let mapping = mappings[(seq as usize / 2) % mappings.len()].clone();
        let held = held.clone();
        tasks.spawn(async move {
            let ok = match &target {
                Some(lease) => c.renew_sync_lease(ipb::RenewSyncLeaseRequest { name: lease.clone(), ttl: None }).await.is_ok(),
                None => match c.acquire_sync_lease(acquire(&mapping)).await {
                    Ok(l) => {
                        if let Ok(mut h) = held.lock() {
                            h.push(l.into_inner().name);
                        }
                        true
                    }
                    Err(_) => false,
                },
            };
            (target.is_some(), at.elapsed(), ok)
        });
        while let Some(done) = tasks.try_join_next() {
            record(done?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(done?);
    }
    Ok(Phase { acquire: acquire_h, renew: renew_h, failures, elapsed: start.elapsed().max(duration), max_send_lag })
}

/// Runtimes renewing every `every` hold a lease each; the environment is fenced. The
/// fence call's latency, each runtime's time from the fence's reply to its first refused
/// renewal (microseconds), and how many renewals succeeded after the fence replied
/// (none should).
async fn fence_to_refusal(
    c: &Client,
    mappings: &[String],
    runtimes: usize,
    every: Duration,
) -> anyhow::Result<(Duration, Histogram<u64>, u64)> {
    let mut leases = Vec::with_capacity(runtimes);
    for i in 0..runtimes {
        leases.push(c.clone().acquire_sync_lease(acquire(&mappings[i % mappings.len()])).await?.into_inner().name);
    }
    let fenced_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut tasks = JoinSet::new();
    for lease in leases {
        let (mut c, fenced_at) = (c.clone(), fenced_at.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut late = 0u64;
            loop {
                tick.tick().await;
                let asked = Instant::now();
                let renewed = c.renew_sync_lease(ipb::RenewSyncLeaseRequest { name: lease.clone(), ttl: None }).await.is_ok();
                let fenced = fenced_at.lock().ok().and_then(|f| *f);
                match (renewed, fenced) {
                    (true, Some(f)) if asked > f => late += 1,
                    (true, _) => {}
                    (false, fenced) => return fenced.map(|f| (Instant::now().saturating_duration_since(f), late)),
                }
            }
        });
    }
    tokio::time::sleep(every * 3).await;
    let req = ipb::FenceEnvironmentRequest {
        environment: "environments/sandbox".into(),
        holder: "ferry-bench".into(),
        reason: "fence to refusal".into(),
        include_resources: false,
        request_id: String::new(),
    };
    let called = Instant::now();
    c.clone().fence_environment(req).await?;
    let fence = called.elapsed();
    if let Ok(mut f) = fenced_at.lock() {
        *f = Some(Instant::now());
    }
    let (mut after, mut late) = (histogram()?, 0);
    while let Some(done) = tasks.join_next().await {
        let (waited, renewed) = done?.context("a renewal was refused before the fence")?;
        after.saturating_record(u64::try_from(waited.as_micros()).unwrap_or(u64::MAX).max(1));
        late += renewed;
    }
    Ok((fence, after, late))
}

pub async fn run(a: LeasesArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.rate > 0 && a.connections > 0 && a.mappings > 0 && a.runtimes > 0,
        "--rate, --connections, --mappings, --runtimes must be > 0"
    );
    let load_before = crate::load::load_average();
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
    let url = suite.url("ferry.integration.v1.IntegrationService").context("integration-control is not running")?;
    let interceptor = ClientInterceptor::new(Some(&suite.tokens.admin))?;
    let clients = (0..a.connections)
        .map(|_| Ok(IntegrationServiceClient::with_interceptor(channel(url)?, interceptor.clone())))
        .collect::<anyhow::Result<Vec<Client>>>()?;
    let mut c = clients[0].clone();
    eprintln!("seeding {} mappings in a sandbox on {backend} (not timed)", a.mappings);
    let mappings = seed(&suite, &mut c, a.mappings).await?;
    eprintln!("fixed rate: {} lease calls/s for {:?} over {} connections", a.rate, a.duration, a.connections);
    let phase = fixed_rate(&clients, &mappings, a.rate, a.duration).await?;
    eprintln!("fence to refusal: {} runtimes renewing every {:?}", a.runtimes, a.renew_every);
    let (fence, after, late) = fence_to_refusal(&c, &mappings, a.runtimes, a.renew_every).await?;
    let load_after = crate::load::load_average();
    suite.shutdown().await;
    if let Some(url) = &a.database_url {
        crate::data::drop_databases(url, DATABASES).await;
    }

    let calls = phase.acquire.len() + phase.renew.len();
    let achieved = calls as f64 / phase.elapsed.as_secs_f64();
    println!("backend {backend}: {calls} lease calls in {:.1} s ({achieved:.0}/s), {} failed", phase.elapsed.as_secs_f64(), phase.failures);
    println!("{:<22} {:>8} {:>8} {:>8} {:>8}", "call", "calls", "p50 ms", "p99 ms", "max ms");
    for (name, h) in [("AcquireSyncLease", &phase.acquire), ("RenewSyncLease", &phase.renew)] {
        println!("{name:<22} {:>8} {:>8.2} {:>8.2} {:>8.2}", h.len(), ms(h, 0.5), ms(h, 0.99), crate::round(h.max() as f64 / 1000.0));
    }
    println!(
        "fence: {:.2} ms; fence reply to first refused renewal ({} runtimes renewing every {:?}): p50 {:.2} ms, max {:.2} ms; renewals granted after the fence replied: {late}",
        fence.as_secs_f64() * 1000.0,
        after.len(),
        a.renew_every,
        ms(&after, 0.5),
        crate::round(after.max() as f64 / 1000.0)
    );
    let figures = json!({
        "backend": backend,
        "rate": a.rate,
        "achieved_per_s": crate::round(achieved),
        "calls": calls,
        "failures": phase.failures,
        "max_send_lag_ms": crate::round(phase.max_send_lag.as_secs_f64() * 1000.0),
        "acquire_p50_ms": ms(&phase.acquire, 0.5),
        "acquire_p99_ms": ms(&phase.acquire, 0.99),
        "renew_p50_ms": ms(&phase.renew, 0.5),
        "renew_p99_ms": ms(&phase.renew, 0.99),
        "fence_ms": crate::round(fence.as_secs_f64() * 1000.0),
        "renew_every_ms": a.renew_every.as_millis() as u64,
        "fence_to_refusal_p50_ms": ms(&after, 0.5),
        "fence_to_refusal_max_ms": crate::round(after.max() as f64 / 1000.0),
        "renewals_after_fence": late,
        "load_average_before": load_before,
        "load_average_after": load_after,
    });
    println!("{figures}");
    Ok(())
}

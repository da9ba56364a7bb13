//! `ferry-bench webhooks`: the registry and integration-control in this process (SQLite
//! in a temporary folder, or PostgreSQL with --database-url), a local HTTP receiver, and
//! changes made as fast as `--concurrency` callers can (credentials suspended and restored
//! in turn). Prints the events delivered per second, from the first change to the last
//! event received, and the lag from each change's commit (the event's time, taken in the
//! change's transaction) to its receipt: p50, p99, max.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferry_kit::client::{ClientInterceptor, channel};
use ferry_kit::config::CommonArgs;
use ferry_proto::integration::v1 as pb;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;
use ferry_proto::registry::v1 as rpb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use ferry_testkit::receiver::Receiver;
use hdrhistogram::Histogram;

#[derive(Debug, clap::Args)]
pub struct WebhooksArgs {
    /// Changes to make (each one event).
    #[arg(long, default_value_t = 2_000)]
    events: usize,
    /// Callers making changes at once (each on integrations of its own).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// A pause after each change, per caller (milliseconds): below the delivery rate the
    /// lag is the pipeline's own, not a queue's.
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
    /// Subscriptions receiving every event (each one receiver connection at a time).
    #[arg(long, default_value_t = 1)]
    subscriptions: usize,
    /// PostgreSQL URLs of two empty databases, registry then integration-control
    /// (default: SQLite files in a temporary folder).
    #[arg(long, num_args = 2, value_names = ["REGISTRY_URL", "INTEGRATION_URL"])]
    database_url: Vec<String>,
}

fn serve(server: ferry_kit::server::Server) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));
    tx
}

fn micros(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.timestamp_micros())
}

pub async fn run(args: WebhooksArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 || args.events < args.concurrency {
        bail!("--events must be at least --concurrency, which must be at least 1");
    }
    let dir = tempfile::tempdir()?;
    let (registry_db, control_db) = match &args.database_url[..] {
        [r, i] => (r.clone(), i.clone()),
        _ => (
            format!("sqlite://{}/registry.db?mode=rwc", dir.path().display()),
            format!("sqlite://{}/integration.db?mode=rwc", dir.path().display()),
        ),
    };
    let common = CommonArgs { no_auth: true, shutdown_grace_secs: 1, ..CommonArgs::default() };
    let registry = group_registry::build(&group_registry::Config::new("127.0.0.1:0".parse()?, registry_db, common.clone())).await?;
    let registry_url = format!("http://{}", registry.local_addr());
    let mut stops = vec![serve(registry)];
    let key_file = dir.path().join("sealing.key");
    integration_control::generate_sealing_key(&key_file)?;
    let control = integration_control::build(&integration_control::Config {
        listen: "127.0.0.1:0".parse()?,
        database_url: control_db,
        registry_url: registry_url.clone(),
        sealing_key_file: key_file,
        snapshot_retention_hours: integration_control::config::DEFAULT_SNAPSHOT_RETENTION_HOURS,
        webhooks: integration_control::config::WebhookArgs { min_backoff_ms: 20, max_backoff_ms: 500, ..Default::default() },
        common,
    })
    .await?;
    let control_url = format!("http://{}", control.local_addr());
    stops.push(serve(control));
    let client = IntegrationServiceClient::with_interceptor(channel(&control_url)?, ClientInterceptor::new(None)?);
    let mut registry = RegistryServiceClient::with_interceptor(channel(&registry_url)?, ClientInterceptor::new(None)?);
    let env = rpb::Environment { tier: 2, ..Default::default() };
    registry
        .create_environment(rpb::CreateEnvironmentRequest {
            environment_id: "bench".into(),
            environment: Some(env),
            request_id: String::new(),
        })
        .await?;

    // One integration per caller, with credentials to suspend and restore.
    let mut names = Vec::new();
    for i in 0..args.concurrency {
        let req = pb::CreateIntegrationRequest {
            parent: "environments/bench".into(),
            integration_id: format!("i{i}"),
            integration: Some(pb::Integration {
                external_system: "rally".into(),
                base_url: "https://rally.example.com".into(),
                ..Default::default()
            }),
            api_key: format!("bench-key-{i}"),
            request_id: String::new(),
        };
        names.push(client.clone().create_integration(req).await?.into_inner().name);
    }
    let receivers = {
        let mut v = Vec::new();
        for s in 0..args.subscriptions {
            let r = Receiver::start().await;
            let sub = pb::WebhookSubscription { url: r.url(), secret: "bench-secret-0123456789".into(), ..Default::default() };
            let req = pb::CreateWebhookSubscriptionRequest {
                webhook_subscription_id: format!("s{s}"),
                webhook_subscription: Some(sub),
                request_id: String::new(),
            };
            client.clone().create_webhook_subscription(req).await?;
            v.push(r);
        }
        v
    };

    eprintln!("webhooks: {} changes by {} callers, {} subscription(s)", args.events, args.concurrency, args.subscriptions);
    let started = Instant::now();
    let per = args.events / args.concurrency;
    let mut callers = tokio::task::JoinSet::new();
    for name in names {
        let mut c = client.clone();
        let pause = Duration::from_millis(args.pause_ms);
        callers.spawn(async move {
            for n in 0..per {
                if n % 2 == 0 {
                    c.suspend_credentials(pb::SuspendCredentialsRequest { name: name.clone(), request_id: String::new() }).await?;
                } else {
                    c.restore_credentials(pb::RestoreCredentialsRequest { name: name.clone(), request_id: String::new() }).await?;
                }
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
            Ok::<_, tonic::Status>(())
        });
    }
    while let Some(done) = callers.join_next().await {
        done?.context("a change failed")?;
    }
    let changes_s = started.elapsed().as_secs_f64();
    let total = per * args.concurrency;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut lag = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut delivered_s = 0.0;
    for r in &receivers {
        loop {
            let got = r.received();
            let mut seen = std::collections::HashSet::new();
            let unique: Vec<_> = got.iter().filter(|g| seen.insert(g.header("ferry-event-id").to_owned())).collect();
            if unique.len() >= total {
                delivered_s = f64::max(delivered_s, started.elapsed().as_secs_f64());
                for g in unique {
                    if let Some(t) = g.json()["time"].as_str().and_then(micros) {
                        lag.record((g.at_micros - t).max(1) as u64)?;
                    }
                }
                break;
            }
            if Instant::now() > deadline {
                bail!("only {} of {total} events arrived in 600 s", unique.len());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for tx in stops {
        let _ = tx.send(());
    }
    let ms = |q: f64| lag.value_at_quantile(q) as f64 / 1000.0;
    let rate = (total * args.subscriptions) as f64 / delivered_s.max(1e-9);
    eprintln!(
        "{total} changes in {changes_s:.2} s; {} deliveries in {delivered_s:.2} s ({rate:.0}/s); lag commit→receipt p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        total * args.subscriptions,
        ms(0.5),
        ms(0.99),
        lag.max() as f64 / 1000.0
    );
    println!(
        "{}",
        serde_json::json!({
            "workload": "webhooks",
            "backend": if args.database_url.is_empty() { "sqlite" } else { "postgres" },
            "events": total,
            "subscriptions": args.subscriptions,
            "concurrency": args.concurrency,
            "pause_ms": args.pause_ms,
            "changes_s": crate::round(changes_s),
            "delivered_s": crate::round(delivered_s),
            "deliveries_per_s": crate::round(rate),
            "lag_p50_ms": crate::round(ms(0.5)),
            "lag_p99_ms": crate::round(ms(0.99)),
            "lag_max_ms": crate::round(lag.max() as f64 / 1000.0),
        })
    );
    Ok(())
}

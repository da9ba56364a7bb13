//! `ferry-bench fuzz`: the long run of Ferry's descriptor-driven fuzzer (the `fuzz` test
//! runs a bounded one). Starts the four services in-process on SQLite in a temporary
//! folder, or on PostgreSQL (one fresh database per service, dropped afterwards), seeds
//! a small world, sends random well-formed requests to every RPC and prints the report,
//! then one JSON line. Exits non-zero when a call got UNKNOWN, INTERNAL, UNAVAILABLE or
//! DATA_LOSS, or a service is no longer SERVING.

use std::time::Duration;

use anyhow::bail;
use ferry_fuzz::{Databases, FuzzConfig, Suite};
use serde_json::json;
use tonic_health::pb::health_check_response::ServingStatus;

/// The databases created with `--database-url` (dropped afterwards).
const DATABASES: [&str; 4] = ["ferry_fuzz_registry", "ferry_fuzz_merge", "ferry_fuzz_integration", "ferry_fuzz_refresh"];

#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// Calls to make (1,000,000 when neither this nor --duration is given).
    #[arg(long)]
    calls: Option<u64>,
    /// Fuzz for this long instead (30s, 10m); with --calls too, whichever ends first.
    #[arg(long, value_parser = crate::load::parse_duration)]
    duration: Option<Duration>,
    /// Calls in flight (workers, each on its own connections).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seed of the run (printed; pass it again to replay); default a random one.
    #[arg(long, env = "FERRY_FUZZ_SEED")]
    seed: Option<u64>,
    /// Deadline of each call, in seconds.
    #[arg(long, default_value_t = 10)]
    deadline_secs: u64,
    /// A PostgreSQL URL whose user may create databases (the bench creates one per
    /// service and drops them afterwards); default: SQLite files in a temporary folder.
    #[arg(long)]
    database_url: Option<String>,
}

/// Service warnings and errors on stderr; `RUST_LOG` replaces the filter.
fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(ferry_fuzz::LOG_FILTER));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub async fn run(args: FuzzArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.concurrency > 0 && args.deadline_secs > 0, "--concurrency and --deadline-secs must be > 0");
    logs();
    let dir = tempfile::tempdir()?;
    let dbs = match &args.database_url {
        Some(url) => {
            let [registry, merge, integration, refresh] = crate::data::fresh_databases(url, DATABASES).await?;
            Databases { registry, merge, integration, refresh }
        }
        None => Databases::sqlite(dir.path()),
    };
    let backend = if args.database_url.is_some() { "postgres" } else { "sqlite" };
    let mut config = FuzzConfig::new()?;
    config.seed = args.seed.unwrap_or(config.seed);
    config.concurrency = args.concurrency;
    config.deadline = Duration::from_secs(args.deadline_secs);
    config.duration = args.duration;
    config.calls = args.calls.or(if args.duration.is_none() { Some(1_000_000) } else { None });

    let suite = Suite::start(&dbs, dir.path()).await?;
    let report = ferry_fuzz::fuzz_suite(&suite, &config).await;
    let health = suite.health().await;
    suite.shutdown().await;
    if let Some(url) = &args.database_url {
        crate::data::drop_databases(url, DATABASES).await;
    }
    let report = report?;

    print!("{report}");
    let not_serving: Vec<String> =
        health.iter().filter(|(_, s)| !matches!(s, Ok(ServingStatus::Serving))).map(|(what, s)| format!("{what}: {s:?}")).collect();
    println!("  health      {}", if not_serving.is_empty() { "all four SERVING".to_owned() } else { not_serving.join("; ") });
    println!(
        "{}",
        json!({
            "backend": backend,
            "seed": report.seed,
            "concurrency": config.concurrency,
            "calls": report.calls,
            "seconds": (report.elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "calls_per_second": report.calls_per_second().round(),
            "codes": report.codes,
            "bad": report.bad_count,
            "distinct_bad": report.distinct.len(),
            "malformed_replies": report.malformed_replies.len(),
            "harness_errors": report.harness_errors.len(),
            "serving": not_serving.is_empty(),
        })
    );
    if !report.clean() || !not_serving.is_empty() {
        bail!("{} bad calls ({} distinct); replay with --seed {}", report.bad_count, report.distinct.len(), report.seed);
    }
    Ok(())
}

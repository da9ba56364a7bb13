//! `ferry-bench`: figures, not tests. `merge` and `clone` build a source and a recipient
//! group of N entities on PostgreSQL, run plan + apply through the real services over
//! gRPC (merge-engine as its own process, its peak RSS read from /proc), then do the same
//! work on an identical fresh copy with raw set-based SQL, and print one JSON line.
//! `load` drives the registry at a fixed rate with a mix of calls and compares its
//! GetEntity maximum rate with a bare tonic echo server's (see `load/mod.rs`). `fuzz` is
//! the long run of the descriptor-driven fuzzer (see `fuzz.rs`). `refresh` runs a MANAGED
//! refresh of a large environment and prints each step's figures (see `refresh.rs`);
//! `refresh-copy` the registry's restore point and copy at scale against raw SQL;
//! `webhooks` events delivered per second to a local receiver and their lag (see
//! `webhooks.rs`).

#![forbid(unsafe_code)]

mod data;
mod engine;
mod fuzz;
mod leases;
mod load;
mod prune;
mod raw;
mod refresh;
mod refresh_copy;
mod webhooks;

use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "ferry-bench", about = "Ferry benchmarks (they print figures; they are not tests)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
enum Workload {
    Merge,
    Clone,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Merge a source group of N into a recipient of N (half the keys shared).
    Merge(Args),
    /// Clone a group of N into a new group.
    Clone(Args),
    /// Fixed-rate mixed registry load, and GetEntity's maximum rate against a bare tonic echo server.
    Load(load::LoadArgs),
    /// Random well-formed requests to every RPC of the four services; fails on a bad code.
    Fuzz(fuzz::FuzzArgs),
    /// Sync leases granted and renewed at a fixed rate; the time from a fence to the first refused renewal.
    Leases(leases::LeasesArgs),
    /// A MANAGED refresh of a large environment: each step's time, the coordinator's own share, its writes.
    Refresh(refresh::RefreshArgs),
    /// The registry's part of a refresh at scale: restore point + copy against raw SQL, and a restore.
    RefreshCopy(refresh_copy::RefreshCopyArgs),
    /// Events delivered per second to a local receiver, and the lag from a change's commit to its receipt.
    Webhooks(webhooks::WebhooksArgs),
}

#[derive(Debug, clap::Args)]
struct Args {
    /// Entities per group.
    #[arg(long, default_value_t = 100_000)]
    entities: usize,
    /// A PostgreSQL URL whose user may create databases (the benchmark creates its own).
    #[arg(long, env = "FERRY_BENCH_DATABASE_URL")]
    database_url: String,
    /// Keep the benchmark's databases afterwards (to inspect them).
    #[arg(long)]
    keep: bool,
    /// The merge-engine binary (default: beside this one).
    #[arg(long)]
    engine_bin: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (workload, args) = match cli.command {
        Command::Merge(a) => (Workload::Merge, a),
        Command::Clone(a) => (Workload::Clone, a),
        Command::Load(a) => return load::run(a).await,
        Command::Fuzz(a) => return fuzz::run(a).await,
        Command::Leases(a) => return leases::run(a).await,
        Command::Refresh(a) => return refresh::run(a).await,
        Command::RefreshCopy(a) => return refresh_copy::run(a).await,
        Command::Webhooks(a) => return webhooks::run(a).await,
    };
    if args.entities < 2 {
        bail!("--entities must be at least 2");
    }
    let n = args.entities;
    let dbs = data::Databases::create(&args.database_url).await?;

    eprintln!("loading {n} + {n} entities through the registry (not timed)");
    let loading = data::start_registry(&dbs.services_registry).await?;
    data::load(&loading, n, workload == Workload::Merge).await?;
    loading.stop().await;
    dbs.vacuum().await?;
    dbs.copy_for_raw().await?;
    let registry = data::start_registry(&dbs.services_registry).await?;

    let bin = match args.engine_bin {
        Some(b) => b,
        None => std::env::current_exe()?.parent().context("no folder beside ferry-bench")?.join("merge-engine"),
    };
    let mut engine = engine::Engine::spawn(&bin, &dbs.merge, &registry).await?;

    eprintln!("{workload:?}: plan + apply through the services");
    let t0 = Instant::now();
    let plan = engine.plan(workload).await?;
    let plan_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    engine.apply(&plan).await?;
    let apply_s = t1.elapsed().as_secs_f64();
    let total_s = plan_s + apply_s;
    let rss_mb = engine.peak_rss_mb()?;
    engine.stop();
    let verified = data::verify(&registry, workload).await?;
    registry.stop().await;

    eprintln!("{workload:?}: the same work as raw SQL on an identical copy");
    let raw_s = raw::run(&dbs.raw_registry, workload).await?;
    let ratio = total_s / raw_s.max(1e-9);
    // After the raw SQL, so its writes cannot slow the figure compared.
    eprintln!("{workload:?}: pruning what the run left, as if its retention had passed");
    let pruned = prune::run(&dbs.merge).await?;
    eprintln!("{}", pruned.line());
    if !args.keep {
        dbs.drop_all().await;
    }
    let mut figures = serde_json::json!({
        "workload": format!("{workload:?}").to_lowercase(),
        "entities": n,
        "plan_s": round(plan_s),
        "apply_s": round(apply_s),
        "total_s": round(total_s),
        "raw_sql_s": round(raw_s),
        "ratio": round(ratio),
        "engine_peak_rss_mb": round(rss_mb),
        "recipient_entities_after": verified,
    });
    if let (Some(f), serde_json::Value::Object(p)) = (figures.as_object_mut(), pruned.json()) {
        f.extend(p);
    }
    println!("{figures}");
    Ok(())
}

pub(crate) fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

//! `ferry-bench load`: the registry as production runs it (authentication on), seeded with
//! a realistic data set, driven over loopback (several HTTP/2 connections) by an open-loop
//! generator at a fixed rate with a mix of reads, lists and writes; then closed loops at
//! the same concurrency find the maximum rate of a bare tonic echo server, of Ferry's
//! layers alone and of Ferry's GetEntity (with `--jwt`, GetEntity again presenting a JWT
//! instead of the static token), taken in turn over several rounds. Prints a table, then
//! one JSON line.

mod drive;
mod echo;
mod seed;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use drive::{FixedRate, MaxRate, Mix, Op, OpStats, Workload};
use ferry_kit::client::{ClientInterceptor, channel};
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use serde_json::json;
use tonic::transport::Channel;

/// The PostgreSQL database the bench creates (and drops afterwards) with `--database-url`.
const DATABASE: &str = "ferry_bench_load";

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Calls per second of the fixed-rate phase.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Length of each phase (fixed rate; echo, layers and GetEntity maximum, each over
    /// its rounds): 30s, 500ms, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Entities seeded (over two environments of four groups).
    #[arg(long, default_value_t = 5000)]
    entities: usize,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Calls in flight in the maximum-rate phases.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Rounds the maximum-rate phases are split into, taken in turn (echo, layers,
    /// GetEntity, echo, …) so a slow spell of the machine weighs on all three alike.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Percentages of GetEntity, ListEntities (a page of 50) and writes (half UpdateEntity,
    /// half CreateEntity, each with a request_id).
    #[arg(long, default_value = "70,15,15")]
    mix: Mix,
    /// A PostgreSQL URL whose user may create databases (the bench creates
    /// `ferry_bench_load` and drops it afterwards); default: a SQLite file in a temporary folder.
    #[arg(long)]
    database_url: Option<String>,
    /// Also take GetEntity's maximum rate presenting a JWT (RS256, checked against a JWKS
    /// file; the registry accepts both) in each round, beside the static token.
    #[arg(long, default_value_t = false)]
    jwt: bool,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.find(|c: char| c.is_ascii_alphabetic()).map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = number.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        other => return Err(format!("{s:?}: unit {other:?} (use ms, s or m)")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{s:?}: must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The one-minute load average, to note beside the figures (the machine is shared).
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0 && args.connections > 0 && args.concurrency > 0 && args.rounds > 0,
        "--rate, --connections, --concurrency, --rounds must be > 0"
    );
    anyhow::ensure!(args.entities > 0, "--entities must be > 0");
    let _telemetry = ferry_kit::telemetry::init("ferry-bench", &ferry_kit::config::CommonArgs::default())?;
    let load_before = load_average();
    let database_url = match &args.database_url {
        Some(admin) => Some(crate::data::fresh_databases(admin, [DATABASE]).await?[0].clone()),
        None => None,
    };
    let backend = if database_url.is_some() { "postgres" } else { "sqlite" };
    eprintln!("seeding {} entities into the registry on {backend} (not timed)", args.entities);
    let seeded = seed::seed(database_url.as_deref(), args.entities, args.jwt).await?;
    let clients = clients(&seeded.registry.url, &seeded.operator_token, args.connections, RegistryServiceClient::with_interceptor)?;
    let workload = Arc::new(Workload::new(clients, seeded.entities.clone(), seeded.groups.clone())?);
    let jwt_workload = match &seeded.operator_jwt {
        Some(jwt) => {
            let jwt_clients = self::clients(&seeded.registry.url, jwt, args.connections, RegistryServiceClient::with_interceptor)?;
            Some(Arc::new(Workload::new(jwt_clients, seeded.entities.clone(), seeded.groups.clone())?))
        }
        None => None,
    };

    eprintln!("fixed rate: {} calls/s for {:?} over {} connections", args.rate, args.duration, args.connections);
    let fixed = drive::fixed_rate(workload.clone(), args.mix, args.rate, args.duration).await?;

    // Each loop runs `rounds` slices of `duration / rounds`, the three in turn.
    let slice = args.duration / args.rounds;
    let echo = echo::EchoServer::start().await?;
    let (mut echo_max, mut layers_max, mut get_max) = (MaxRate::default(), MaxRate::default(), MaxRate::default());
    let mut get_jwt_max = jwt_workload.as_ref().map(|_| MaxRate::default());
    let mut ratios = Vec::new();
    for round in 1..=args.rounds {
        eprintln!("maximum rate, round {round} of {}: {} in flight, {slice:?} each", args.rounds, args.concurrency);
        let e = echo_loop(&echo.url, &seeded.operator_token, &args, slice, seeded.entities[0].clone()).await?;
        let l = health_loop(&seeded.registry.url, &seeded.operator_token, &args, slice).await?;
        let g = get_entity_loop(&workload, &args, slice).await?;
        if let (Some(w), Some(total)) = (&jwt_workload, get_jwt_max.as_mut()) {
            total.add(&get_entity_loop(w, &args, slice).await?);
        }
        ratios.push(g.rps() / e.rps().max(1e-9));
        echo_max.add(&e);
        layers_max.add(&l);
        get_max.add(&g);
    }
    echo.stop().await?;
    seeded.registry.stop().await;
    if let Some(admin) = &args.database_url {
        crate::data::drop_databases(admin, [DATABASE]).await;
    }

    let report = Report {
        args: &args,
        backend,
        fixed: &fixed,
        echo: &echo_max,
        layers: &layers_max,
        get: &get_max,
        get_jwt: get_jwt_max.as_ref(),
        ratios: &ratios,
        load: [load_before, load_average()],
    };
    report.print()
}

/// `n` clients, each on a connection of its own, all with the registry clients' interceptor,
/// so every phase does the same work on the client side.
fn clients<C>(url: &str, token: &str, n: usize, make: impl Fn(Channel, ClientInterceptor) -> C) -> anyhow::Result<Vec<C>> {
    (0..n).map(|_| Ok(make(channel(url)?, ClientInterceptor::new(Some(token))?))).collect()
}

async fn get_entity_loop(workload: &Arc<Workload>, args: &LoadArgs, duration: Duration) -> anyhow::Result<MaxRate> {
    let (w, n) = (workload.clone(), workload.entity_count());
    drive::max_rate(args.concurrency, duration, move |seq| {
        let w = w.clone();
        async move { w.call(Op::GetEntity, seq, drive::spread(seq) % n).await }
    })
    .await
}

async fn echo_loop(url: &str, token: &str, args: &LoadArgs, duration: Duration, payload: String) -> anyhow::Result<MaxRate> {
    let clients = Arc::new(clients(url, token, args.connections, echo::pb::echo_service_client::EchoServiceClient::with_interceptor)?);
    drive::max_rate(args.concurrency, duration, move |seq| {
        let mut c = clients[(seq % clients.len() as u64) as usize].clone();
        let payload = payload.clone();
        async move {
            let got = c.echo(echo::pb::EchoRequest { payload: payload.clone() }).await.map_err(|s| format!("{:?}", s.code()))?;
            if got.into_inner().payload != payload {
                return Err("WrongReply".to_owned());
            }
            Ok(())
        }
    })
    .await
}

/// Health checks through the registry's server: the layers a Ferry call passes (metrics,
/// timeout, concurrency limit, span; health skips auth), no database. Tells the layers'
/// cost apart from the storage's.
async fn health_loop(url: &str, token: &str, args: &LoadArgs, duration: Duration) -> anyhow::Result<MaxRate> {
    let clients = Arc::new(clients(url, token, args.connections, tonic_health::pb::health_client::HealthClient::with_interceptor)?);
    drive::max_rate(args.concurrency, duration, move |seq| {
        let mut c = clients[(seq % clients.len() as u64) as usize].clone();
        async move {
            let got =
                c.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.map_err(|s| format!("{:?}", s.code()))?;
            if got.into_inner().status != tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
                return Err("WrongReply".to_owned());
            }
            Ok(())
        }
    })
    .await
}

struct Report<'a> {
    args: &'a LoadArgs,
    backend: &'static str,
    fixed: &'a FixedRate,
    echo: &'a MaxRate,
    layers: &'a MaxRate,
    get: &'a MaxRate,
    /// GetEntity presenting a JWT (`--jwt`).
    get_jwt: Option<&'a MaxRate>,
    /// GetEntity / echo in each round.
    ratios: &'a [f64],
    load: [Option<f64>; 2],
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Report<'_> {
    fn print(&self) -> anyhow::Result<()> {
        let total = self.fixed.total()?;
        let secs = self.fixed.elapsed.as_secs_f64();
        let achieved = (total.calls() - total.errors()) as f64 / secs;
        let ratio = self.get.rps() / self.echo.rps().max(1e-9);
        let a = self.args;
        println!(
            "fixed rate {} calls/s for {:.1} s, {} connections, {} entities on {} (latency from scheduled send, ms)",
            a.rate,
            a.duration.as_secs_f64(),
            a.connections,
            a.entities,
            self.backend
        );
        println!("{:<14} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}", "call", "calls", "errors", "rate/s", "p50", "p99", "p99.9", "max");
        let row = |name: &str, s: &OpStats| {
            println!(
                "{:<14} {:>8} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                name,
                s.calls(),
                s.errors(),
                (s.calls() - s.errors()) as f64 / secs,
                s.ms(0.5),
                s.ms(0.99),
                s.ms(0.999),
                s.max_ms()
            )
        };
        for (op, s) in &self.fixed.by_op {
            row(&format!("{op:?}"), s);
        }
        row("all", &total);
        println!("generator lag (max): {:.2} ms", self.fixed.max_send_lag.as_secs_f64() * 1000.0);
        println!("maximum rate, {} in flight over {} connections, {} rounds:", a.concurrency, a.connections, a.rounds);
        println!("  bare tonic echo  {:>10.0} calls/s  errors {}", self.echo.rps(), self.echo.errors());
        println!("  Ferry layers     {:>10.0} calls/s  errors {}  (health Check, no database)", self.layers.rps(), self.layers.errors());
        println!("  Ferry GetEntity  {:>10.0} calls/s  errors {}  (static token)", self.get.rps(), self.get.errors());
        if let Some(jwt) = self.get_jwt {
            println!("  Ferry GetEntity  {:>10.0} calls/s  errors {}  (JWT, RS256)", jwt.rps(), jwt.errors());
        }
        let rounds: Vec<String> = self.ratios.iter().map(|r| format!("{r:.3}")).collect();
        println!("  ratio GetEntity/echo {ratio:.3} (rounds: {})", rounds.join(", "));
        let fmt_load = |l: Option<f64>| l.map_or("?".to_owned(), |l| format!("{l:.2}"));
        println!("load average (1 min) before {} after {}", fmt_load(self.load[0]), fmt_load(self.load[1]));
        let ops: serde_json::Map<String, serde_json::Value> = self
            .fixed
            .by_op
            .iter()
            .map(|(op, s)| {
                let v = json!({
                    "calls": s.calls(), "errors": s.errors(), "errors_by_code": s.failures,
                    "p50_ms": round(s.ms(0.5)), "p99_ms": round(s.ms(0.99)), "p999_ms": round(s.ms(0.999)), "max_ms": round(s.max_ms()),
                });
                (format!("{op:?}"), v)
            })
            .collect();
        let line = json!({
            "rate_target": a.rate,
            "duration_s": round(a.duration.as_secs_f64()),
            "backend": self.backend,
            "entities": a.entities,
            "connections": a.connections,
            "concurrency": a.concurrency,
            "rate_achieved": round(achieved),
            "p50_ms": round(total.ms(0.5)),
            "p99_ms": round(total.ms(0.99)),
            "p999_ms": round(total.ms(0.999)),
            "max_ms": round(total.max_ms()),
            "errors": total.errors(),
            "errors_by_code": total.failures,
            "ops": ops,
            "generator_lag_max_ms": round(self.fixed.max_send_lag.as_secs_f64() * 1000.0),
            "getentity_max_rps": round(self.get.rps()),
            "getentity_max_errors": self.get.errors(),
            "getentity_jwt_max_rps": self.get_jwt.map(|m| round(m.rps())),
            "getentity_jwt_max_errors": self.get_jwt.map(MaxRate::errors),
            "layers_max_rps": round(self.layers.rps()),
            "layers_max_errors": self.layers.errors(),
            "echo_max_rps": round(self.echo.rps()),
            "echo_max_errors": self.echo.errors(),
            "ratio": round(ratio),
            "ratio_rounds": self.ratios.iter().map(|r| round(*r)).collect::<Vec<_>>(),
            "load_avg_before": self.load[0],
            "load_avg_after": self.load[1],
        });
        println!("{}", serde_json::to_string(&line).context("json")?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_ms_s_m_or_bare_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("s").is_err());
    }
}

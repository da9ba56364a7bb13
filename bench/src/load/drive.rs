//! The two ways of driving calls: an open-loop generator at a fixed rate, whose latency is
//! measured from each call's scheduled send time (a slow server cannot slow the schedule
//! down and hide its own queueing: no coordinated omission), and a closed loop that keeps
//! a fixed number of calls in flight to find the maximum rate.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use ferry_proto::registry::v1 as pb;
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::data::Client;

/// A call not answered within this counts as DEADLINE_EXCEEDED.
const DEADLINE: Duration = Duration::from_secs(10);
/// Entities per ListEntities page.
const LIST_PAGE: i32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    GetEntity,
    ListEntities,
    UpdateEntity,
    CreateEntity,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::GetEntity, Op::ListEntities, Op::UpdateEntity, Op::CreateEntity];
}

/// Percentages of GetEntity and ListEntities; the rest are writes (half updates, half creates).
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    get: u32,
    list: u32,
}

impl std::str::FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<u32> = s.split(',').map(|p| p.trim().parse::<u32>().map_err(|e| format!("{p:?}: {e}"))).collect::<Result<_, _>>()?;
        let [get, list, write] = parts.as_slice() else {
            return Err("expected three percentages: get,list,write (e.g. 70,15,15)".into());
        };
        if get + list + write != 100 {
            return Err(format!("percentages add up to {}, not 100", get + list + write));
        }
        Ok(Mix { get: *get, list: *list })
    }
}

impl Mix {
    fn pick(&self, rng: &mut SmallRng) -> Op {
        let r = rng.random_range(0..100);
        if r < self.get {
            Op::GetEntity
        } else if r < self.get + self.list {
            Op::ListEntities
        } else if rng.random_bool(0.5) {
            Op::UpdateEntity
        } else {
            Op::CreateEntity
        }
    }
}

/// Why a call failed: its gRPC code, or `WrongReply` when the answer was not the one asked for.
type Failure = String;

fn code(status: tonic::Status) -> Failure {
    format!("{:?}", status.code())
}

/// Runs `call` with the deadline.
async fn timed<F: Future<Output = Result<(), Failure>>>(call: F) -> Result<(), Failure> {
    tokio::time::timeout(DEADLINE, call).await.unwrap_or_else(|_| Err(code(tonic::Status::deadline_exceeded("no reply"))))
}

/// Latencies (microseconds, every call, failed ones included) and failures of one kind of call.
pub struct OpStats {
    pub latency: Histogram<u64>,
    pub failures: BTreeMap<Failure, u64>,
}

impl OpStats {
    fn new() -> anyhow::Result<Self> {
        // 1 µs to 1 min at three significant digits.
        Ok(Self { latency: Histogram::new_with_bounds(1, 60_000_000, 3)?, failures: BTreeMap::new() })
    }

    fn record(&mut self, elapsed: Duration, result: Result<(), Failure>) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency.saturating_record(us.max(1));
        if let Err(f) = result {
            *self.failures.entry(f).or_default() += 1;
        }
    }

    pub fn calls(&self) -> u64 {
        self.latency.len()
    }

    pub fn errors(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn add(&mut self, other: &OpStats) -> anyhow::Result<()> {
        self.latency.add(&other.latency)?;
        for (f, n) in &other.failures {
            *self.failures.entry(f.clone()).or_default() += n;
        }
        Ok(())
    }

    /// The latency at `q` (0–1) in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }
}

/// The registry calls of the workload, spread over several connections.
pub struct Workload {
    clients: Vec<Client>,
    entities: Vec<String>,
    groups: Vec<String>,
    /// Makes this run's request ids and new keys unique.
    run: String,
}

impl Workload {
    pub fn new(clients: Vec<Client>, entities: Vec<String>, groups: Vec<String>) -> anyhow::Result<Self> {
        if clients.is_empty() || entities.is_empty() || groups.is_empty() {
            bail!("the workload needs clients, entities and groups");
        }
        let run = format!("{:08x}", rand::rng().random::<u32>());
        Ok(Self { clients, entities, groups, run })
    }

    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    /// Call number `seq` of kind `op`; `pick` chooses the entity or group.
    pub async fn call(&self, op: Op, seq: u64, pick: usize) -> Result<(), Failure> {
        let mut c = self.clients[(seq % self.clients.len() as u64) as usize].clone();
        let entity = &self.entities[pick % self.entities.len()];
        let group = &self.groups[pick % self.groups.len()];
        let payload = || format!(r#"{{"id":{seq},"run":"{}","settings":{{"enabled":true,"retries":3}}}}"#, self.run);
        let request_id = || format!("load-{}-{seq}", self.run);
        match op {
            Op::GetEntity => {
                let got = c.get_entity(pb::GetEntityRequest { name: entity.clone() }).await.map_err(code)?.into_inner();
                if &got.name != entity {
                    return Err("WrongReply".into());
                }
            }
            Op::ListEntities => {
                let page = pb::ListEntitiesRequest { parent: group.clone(), page_size: LIST_PAGE, ..Default::default() };
                let got = c.list_entities(page).await.map_err(code)?.into_inner();
                if got.entities.is_empty() {
                    return Err("WrongReply".into());
                }
            }
            Op::UpdateEntity => {
                let body = pb::Entity { name: entity.clone(), payload_json: payload(), ..Default::default() };
                let mask = prost_types::FieldMask { paths: vec!["payload_json".into()] };
                c.update_entity(pb::UpdateEntityRequest { entity: Some(body), update_mask: Some(mask), request_id: request_id() })
                    .await
                    .map_err(code)?;
            }
            Op::CreateEntity => {
                // SERVICE: duplicated, a new row and a membership in the group.
                let body =
                    pb::Entity { kind: 7, key: format!("load-{}-{seq:09}", self.run), payload_json: payload(), ..Default::default() };
                c.create_entity(pb::CreateEntityRequest { parent: group.clone(), entity: Some(body), request_id: request_id() })
                    .await
                    .map_err(code)?;
            }
        }
        Ok(())
    }
}

/// What the fixed-rate phase measured.
pub struct FixedRate {
    pub by_op: BTreeMap<Op, OpStats>,
    /// From the first scheduled send to the last reply, at least the phase's duration.
    pub elapsed: Duration,
    /// The most a send left after its scheduled time (the generator's own lag).
    pub max_send_lag: Duration,
}

impl FixedRate {
    pub fn total(&self) -> anyhow::Result<OpStats> {
        let mut all = OpStats::new()?;
        for s in self.by_op.values() {
            all.add(s)?;
        }
        Ok(all)
    }
}

/// Sends `rate` calls per second for `duration`, each on its own task at its scheduled time.
pub async fn fixed_rate(w: Arc<Workload>, mix: Mix, rate: u32, duration: Duration) -> anyhow::Result<FixedRate> {
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let mut by_op = BTreeMap::new();
    for op in Op::ALL {
        by_op.insert(op, OpStats::new()?);
    }
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut tasks = JoinSet::new();
    let mut max_send_lag = Duration::ZERO;
    let start = Instant::now();
    for seq in 0..total {
        let at = start + Duration::from_secs_f64(seq as f64 / f64::from(rate));
        let now = Instant::now();
        // A timer set in the past still waits for the next tick: only sleep when early.
        if now < at {
            tokio::time::sleep_until(at).await;
        } else {
            max_send_lag = max_send_lag.max(now - at);
        }
        let op = mix.pick(&mut rng);
        let pick = rng.random_range(0..usize::MAX);
        let w = w.clone();
        tasks.spawn(async move {
            let result = timed(w.call(op, seq, pick)).await;
            (op, at.elapsed(), result)
        });
        while let Some(done) = tasks.try_join_next() {
            record(&mut by_op, done?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(&mut by_op, done?);
    }
    Ok(FixedRate { by_op, elapsed: start.elapsed().max(duration), max_send_lag })
}

fn record(by_op: &mut BTreeMap<Op, OpStats>, (op, elapsed, result): (Op, Duration, Result<(), Failure>)) {
    if let Some(s) = by_op.get_mut(&op) {
        s.record(elapsed, result);
    }
}

/// What a closed-loop phase measured.
#[derive(Default)]
pub struct MaxRate {
    pub ok: u64,
    pub failures: BTreeMap<Failure, u64>,
    /// Time the calls were kept in flight (not the warm-up).
    pub elapsed: Duration,
}

impl MaxRate {
    /// Completed calls per second.
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Failed calls.
    pub fn errors(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Adds another round of the same loop.
    pub fn add(&mut self, round: &MaxRate) {
        self.ok += round.ok;
        self.elapsed += round.elapsed;
        for (f, n) in &round.failures {
            *self.failures.entry(f.clone()).or_default() += n;
        }
    }
}

/// Keeps `concurrency` calls of `call(seq)` in flight for `duration` (after one warm-up
/// call per slot, which also opens the connections) and counts what completed.
pub async fn max_rate<F, Fut>(concurrency: usize, duration: Duration, call: F) -> anyhow::Result<MaxRate>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let call = Arc::new(call);
    let mut warm = JoinSet::new();
    for slot in 0..concurrency as u64 {
        warm.spawn(timed(call(slot)));
    }
    while let Some(r) = warm.join_next().await {
        if let Err(f) = r? {
            bail!("warm-up call failed: {f}");
        }
    }
    let start = Instant::now();
    let end = start + duration;
    let mut slots = JoinSet::new();
    for slot in 0..concurrency as u64 {
        let call = call.clone();
        slots.spawn(async move {
            let (mut ok, mut failures) = (0u64, BTreeMap::<Failure, u64>::new());
            let mut seq = slot;
            while Instant::now() < end {
                match timed(call(seq)).await {
                    Ok(()) => ok += 1,
                    Err(f) => *failures.entry(f).or_default() += 1,
                }
                seq += concurrency as u64;
            }
            (ok, failures)
        });
    }
    let mut total = MaxRate::default();
    while let Some(r) = slots.join_next().await {
        let (ok, failures) = r?;
        total.ok += ok;
        for (f, n) in failures {
            *total.failures.entry(f).or_default() += n;
        }
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// Spreads call numbers over entities (closed loops have no generator to draw from).
pub fn spread(seq: u64) -> usize {
    // SplitMix64's finaliser.
    let mut z = seq.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce5_b9b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_add_up_to_calls_over_time() {
        let round = |ok, secs, failed: u64| MaxRate {
            ok,
            failures: if failed > 0 { BTreeMap::from([("Unavailable".to_owned(), failed)]) } else { BTreeMap::new() },
            elapsed: Duration::from_secs(secs),
        };
        let mut total = MaxRate::default();
        total.add(&round(300, 1, 0));
        total.add(&round(100, 1, 2));
        total.add(&round(200, 2, 1));
        assert_eq!((total.ok, total.errors(), total.elapsed), (600, 3, Duration::from_secs(4)));
        assert_eq!(total.rps(), 150.0, "calls over time, not the mean of the rounds' rates");
        assert_eq!(MaxRate::default().rps(), 0.0);
    }

    #[test]
    fn a_mix_is_three_percentages_adding_up_to_100() {
        assert!("70,15,15".parse::<Mix>().is_ok());
        assert!("100,0,0".parse::<Mix>().is_ok());
        assert!("70,15,10".parse::<Mix>().is_err());
        assert!("70,30".parse::<Mix>().is_err());
        assert!("70,x,15".parse::<Mix>().is_err());
    }

    #[test]
    fn a_mix_picks_each_kind_near_its_share() {
        let mix: Mix = "70,15,15".parse().expect("mix");
        let mut rng = SmallRng::seed_from_u64(1);
        let mut counts = BTreeMap::<Op, u32>::new();
        for _ in 0..10_000 {
            *counts.entry(mix.pick(&mut rng)).or_default() += 1;
        }
        let share = |op| f64::from(counts.get(&op).copied().unwrap_or(0)) / 100.0;
        assert!((share(Op::GetEntity) - 70.0).abs() < 2.0, "{counts:?}");
        assert!((share(Op::ListEntities) - 15.0).abs() < 2.0, "{counts:?}");
        assert!((share(Op::UpdateEntity) - 7.5).abs() < 1.5, "{counts:?}");
        assert!((share(Op::CreateEntity) - 7.5).abs() < 1.5, "{counts:?}");
    }
}

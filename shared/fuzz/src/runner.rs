//! The run: N workers, each with its own RNG derived from one seed, call random methods
//! with random requests until a budget of calls or of time is spent, feed every reply's
//! names back into the pool and tally the codes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, Value};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::call::{Caller, Outcome, StreamRead, Who};
use crate::generate::{Generator, Holds, MESSAGE_BUDGET, STREAM_BUDGET, holds};
use crate::methods::Method;
use crate::pool::NamePool;
use crate::render::render;
use crate::report::Report;
use crate::shapes::Shapes;

/// Bytes of request text kept per bad call.
const REQUEST_TEXT: usize = 4096;
/// Messages of one client stream, at most.
const MAX_STREAM: usize = 50;

/// How long and how hard to fuzz. A run stops at whichever budget is spent first.
#[derive(Debug, Clone)]
pub struct FuzzConfig {
    pub concurrency: usize,
    pub calls: Option<u64>,
    pub duration: Option<Duration>,
    pub seed: u64,
    /// Deadline of each call (sent as grpc-timeout; the client gives up a little later).
    pub deadline: Duration,
}

impl FuzzConfig {
    /// 8 workers, the seed from `FERRY_FUZZ_SEED` or a random one, 10 s deadlines, and no
    /// budget yet (set `calls` or `duration`).
    pub fn new() -> Result<Self, crate::Error> {
        Ok(Self { concurrency: 8, calls: None, duration: None, seed: seed_from_env()?, deadline: Duration::from_secs(10) })
    }
}

/// `FERRY_FUZZ_SEED` when set (to replay a run), otherwise a fresh random seed.
pub fn seed_from_env() -> Result<u64, crate::Error> {
    match std::env::var("FERRY_FUZZ_SEED") {
        Ok(s) if !s.trim().is_empty() => s.trim().parse().map_err(|_| crate::Error::Config(format!("FERRY_FUZZ_SEED={s:?} is not a u64"))),
        _ => Ok(rand::random()),
    }
}

/// Fuzzes `methods` through `caller` until a budget runs out; the pool should hold the
/// seeded world's names.
pub async fn fuzz(caller: &Caller, methods: &[Method], shapes: Arc<Shapes>, pool: Arc<NamePool>, config: &FuzzConfig) -> Report {
    eprintln!("ferry-fuzz: seed {} (FERRY_FUZZ_SEED={} replays it), {} workers", config.seed, config.seed, config.concurrency);
    let started = Instant::now();
    let shared = Arc::new(Shared {
        methods: methods.to_vec(),
        shapes,
        pool,
        issued: AtomicU64::new(0),
        max_calls: config.calls,
        until: config.duration.map(|d| started + d),
    });
    let mut workers = tokio::task::JoinSet::new();
    let mut report = Report { seed: config.seed, ..Report::default() };
    for i in 0..config.concurrency.max(1) {
        // Distinct, reproducible streams per worker from the one seed.
        let rng = StdRng::seed_from_u64(config.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        match caller.reconnect() {
            Ok(own) => {
                workers.spawn(work(shared.clone(), own, rng));
            }
            Err(e) => report.harness_errors.push(format!("worker {i}: {e}")),
        }
    }
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(tally) => report.merge(tally),
            Err(e) => report.harness_errors.push(format!("worker failed: {e}")),
        }
    }
    report.elapsed = started.elapsed();
    report
}

struct Shared {
    methods: Vec<Method>,
    shapes: Arc<Shapes>,
    pool: Arc<NamePool>,
    issued: AtomicU64,
    max_calls: Option<u64>,
    until: Option<Instant>,
}

impl Shared {
    /// Takes one call from the budget; false when it is spent.
    fn take(&self) -> bool {
        if self.until.is_some_and(|u| Instant::now() >= u) {
            return false;
        }
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        self.max_calls.is_none_or(|max| n < max)
    }
}

async fn work(shared: Arc<Shared>, caller: Caller, mut rng: StdRng) -> Report {
    let mut tally = Report::default();
    while shared.take() {
        let Some(method) = shared.methods.choose(&mut rng) else { break };
        let messages = requests(&mut rng, &shared.pool, &shared.shapes, method);
        let encoded: Vec<Bytes> = messages.iter().map(|m| Bytes::from(m.encode_to_vec())).collect();
        let who = match rng.random_range(0..100) {
            0..82 => Who::Admin,
            82..88 => Who::Operator,
            88..95 => Who::Viewer,
            _ => Who::Nobody,
        };
        let read = StreamRead { max_messages: rng.random_range(1..=20), max_time: Duration::from_millis(rng.random_range(50..1500)) };
        // Now and then the same request twice, one after the other (a retry must get the
        // first reply back) or both at once (two clients racing on one request id).
        let again = !method.client_streaming && rng.random_bool(0.06);
        if again && rng.random_bool(0.4) && shared.take() {
            let t0 = Instant::now();
            let (a, b) = tokio::join!(caller.call(method, encoded.clone(), who, read), caller.call(method, encoded.clone(), who, read));
            let took = t0.elapsed();
            record(&mut tally, &shared.pool, method, &messages, &a, took);
            record(&mut tally, &shared.pool, method, &messages, &b, took);
            continue;
        }
        let times = if again { 2 } else { 1 };
        for n in 0..times {
            // The repeat is a call of its own, from the same budget.
            if n > 0 && !shared.take() {
                break;
            }
            let t0 = Instant::now();
            let outcome = caller.call(method, encoded.clone(), who, read).await;
            record(&mut tally, &shared.pool, method, &messages, &outcome, t0.elapsed());
        }
    }
    tally
}

/// The message(s) of one call: one, or a client stream of 0 to [`MAX_STREAM`].
fn requests(rng: &mut StdRng, pool: &NamePool, shapes: &Shapes, method: &Method) -> Vec<DynamicMessage> {
    let count = if method.client_streaming {
        match rng.random_range(0..100) {
            0..5 => 0,
            5..40 => 1,
            40..80 => rng.random_range(2..=5),
            _ => rng.random_range(6..=MAX_STREAM),
        }
    } else {
        1
    };
    let budget = if count > 1 { (STREAM_BUDGET / count).min(MESSAGE_BUDGET) } else { MESSAGE_BUDGET };
    let mut messages: Vec<DynamicMessage> = (0..count).map(|_| Generator::new(rng, pool, shapes).message(&method.input, budget)).collect();
    // A stream usually names its target and request id once, or repeats them: later
    // messages mostly leave those fields out or copy the first message's.
    if count > 1 && rng.random_bool(0.7) {
        let header: Vec<(FieldDescriptor, Value)> = messages[0]
            .fields()
            .filter(|(f, _)| !f.is_list() && matches!(holds(f.name()), Holds::Name | Holds::RequestId))
            .map(|(f, v)| (f, v.clone()))
            .collect();
        let copy = rng.random_bool(0.5);
        for m in &mut messages[1..] {
            for (field, value) in &header {
                if copy { m.set_field(field, value.clone()) } else { m.clear_field(field) }
            }
        }
    }
    messages
}

fn record(tally: &mut Report, pool: &NamePool, method: &Method, messages: &[DynamicMessage], outcome: &Outcome, took: Duration) {
    tally.record(&method.short, took, outcome.code, outcome.client_timeout, &outcome.message, || text(messages));
    for reply in &outcome.replies {
        match DynamicMessage::decode(method.output.clone(), reply.as_ref()) {
            Ok(m) => pool.harvest(&m),
            Err(e) => tally.malformed_replies.push(format!("{}: {e} ({} bytes)", method.short, reply.len())),
        }
    }
}

fn text(messages: &[DynamicMessage]) -> String {
    match messages {
        [one] => render(one, REQUEST_TEXT),
        many => {
            let per = (REQUEST_TEXT / many.len().max(1)).max(256);
            let parts: Vec<String> = many.iter().map(|m| render(m, per)).collect();
            let all = format!("stream of {}: [{}]", many.len(), parts.join(" | "));
            render_cut(all)
        }
    }
}

fn render_cut(mut s: String) -> String {
    if s.len() > REQUEST_TEXT {
        let cut = (0..=REQUEST_TEXT).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        s.truncate(cut);
        s.push_str(" …(truncated)");
    }
    s
}

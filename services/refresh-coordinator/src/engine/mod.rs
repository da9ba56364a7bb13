//! The durable-run engine every run kind uses: one runs table, one locks table, one
//! journal, one driver, one set of run operations, one Watch.
//!
//! A run kind is a [`Kind`]: its steps, what each does and undoes, the locks it takes.
//! The engine stores a run as one document (state, steps, the kind's data) and rewrites
//! it at each transition: a step starts, a step ends, the run starts undoing. What a step's
//! calls to other services return goes to the run's **journal**, one row per operation,
//! appended with the operation's request id and typed result, never rewritten: a step
//! executed again after a crash finds its operations there and does not call again (the
//! request ids are the same on every attempt, so a call that happened but was not yet
//! journaled is replayed by the other service).
//!
//! Knows no proto type and no run kind: kinds are registered when the engine is built.

mod cx;
pub mod driver;
mod events;
pub mod journal;
pub mod leases;
pub mod locks;
pub mod ops;
pub mod schedules;
pub mod store;
pub mod watch;

pub use ops::ListFilter;

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clients::Clients;
use crate::domain::{Run, Step};
use crate::error::Result;
use locks::Lock;

/// How the driver behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This coordinator's identity as a lease holder.
    pub owner: String,
    /// A claimed run stays with this coordinator this long without a renewal.
    pub lease: Duration,
    /// Attempts of a call that fails transiently before the step fails; the first retry
    /// waits `retry_base`, each next one twice as long (at most 10 s), with jitter.
    pub retry_attempts: u32,
    pub retry_base: Duration,
    /// How often an idle driver looks for runs (it is also woken at once by this process).
    pub poll: Duration,
    /// A pause before every step (0 in production; demos and tests use it to watch runs).
    pub step_delay: Duration,
    /// A pause after every journaled operation (0 in production; tests stop the
    /// coordinator in it, between two operations).
    pub op_delay: Duration,
    /// How long after its end a refresh can be rolled back.
    pub rollback_window: Duration,
    /// The four-eyes rule on approval gates (`domain::approval`).
    pub four_eyes: bool,
}

/// How a step's execution ended.
pub enum Flow {
    Done,
    /// Waits for a person to confirm; the value says for what ("approval").
    Wait(&'static str),
}

/// A run kind's definition: its data, its steps, what each does and undoes.
pub trait Kind: Send + Sync + Sized + 'static {
    /// Stored in the runs table.
    const KIND: &'static str;
    /// The resource collection: runs are named `{COLLECTION}/{id}`.
    const COLLECTION: &'static str;
    /// How errors name a run of this kind ("refresh run").
    const NOUN: &'static str;
    /// What the run is about (options, inputs) and what it learns on the way.
    type Spec: Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static;
    /// A step's own data.
    type Detail: Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static;

    /// What a run needs for itself while it lives (taken in its start transaction).
    fn locks(spec: &Self::Spec) -> Vec<Lock>;
    /// What a run can be listed by (environment and project names).
    fn subjects(spec: &Self::Spec) -> Vec<String>;
    /// A step's label in metrics.
    fn step_label(step: &Step<Self::Detail>) -> &'static str;
    /// Executes step `index` (0-based) of the run in `cx`.
    fn execute(cx: &mut Cx<Self>, index: usize) -> BoxFuture<'_, Result<Flow>>;
    /// One transition of an abort: undoes the next step that needs it (true), or, when
    /// none is left, does what ends the abort (false).
    fn undo_next(cx: &mut Cx<Self>) -> BoxFuture<'_, Result<bool>>;
    /// Sets a step's changes and what it left alone from the journaled results (JSON) of
    /// the operations its `derived` names, in that order. Only kinds that set `derived`
    /// need it.
    fn derive(_step: &mut Step<Self::Detail>, _results: &[&str]) -> Result<()> {
        Ok(())
    }
    /// Refuses an abort of this run now, when the kind says it cannot be undone.
    fn check_abort(_run: &RunOf<Self>) -> Result<()> {
        Ok(())
    }
}

/// A run of kind `K`.
pub type RunOf<K> = Run<<K as Kind>::Spec, <K as Kind>::Detail>;

/// Step `number` (1-based) of `run`, if it has one.
fn step_at<K: Kind>(run: &RunOf<K>, number: i32) -> Option<&Step<K::Detail>> {
    usize::try_from(number - 1).ok().and_then(|i| run.steps.get(i))
}

/// The step a run is at, for its audit events: `3 copy_integrations`; empty when none.
pub fn audit_step<K: Kind>(run: &RunOf<K>) -> String {
    step_at::<K>(run, run.current_step).map(|s| format!("{} {}", s.number, K::step_label(s))).unwrap_or_default()
}

/// The name of run `id` of kind `K`.
pub fn name_of<K: Kind>(id: &str) -> String {
    format!("{}/{id}", K::COLLECTION)
}

/// Runs one kind's runs for the driver (the object-safe face of a [`Kind`]).
trait Drives: Send + Sync {
    fn drive<'a>(&'a self, engine: &'a Engine, id: &'a str, resumed: Option<crate::domain::Interruption>) -> BoxFuture<'a, Result<()>>;
}

struct Driver<K>(std::marker::PhantomData<K>);

impl<K: Kind> Drives for Driver<K> {
    fn drive<'a>(&'a self, engine: &'a Engine, id: &'a str, resumed: Option<crate::domain::Interruption>) -> BoxFuture<'a, Result<()>> {
        Box::pin(driver::drive::<K>(engine, id, resumed))
    }
}

/// A run saved by this process (its id), for watchers in this process, who read it again.
#[derive(Debug, Clone)]
pub struct Saved {
    pub id: String,
}

/// The engine: its database, the services runs call, the kinds it drives.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    db: sea_orm::DatabaseConnection,
    clients: Clients,
    settings: Settings,
    wake: tokio::sync::Notify,
    events: tokio::sync::broadcast::Sender<Saved>,
    kinds: HashMap<&'static str, Box<dyn Drives>>,
    starters: Arc<schedules::Starters>,
}

/// Builds an [`Engine`] with the kinds it drives.
pub struct EngineBuilder {
    kinds: HashMap<&'static str, Box<dyn Drives>>,
    starters: schedules::Starters,
}

impl EngineBuilder {
    pub fn new() -> Self {
        Self { kinds: HashMap::new(), starters: HashMap::new() }
    }

    pub fn kind<K: Kind>(mut self) -> Self {
        self.kinds.insert(K::KIND, Box::new(Driver::<K>(std::marker::PhantomData)));
        self
    }

    /// Kind `K` (registered with [`EngineBuilder::kind`]) can be started by schedules.
    pub fn scheduled<K: schedules::Scheduled>(mut self) -> Self {
        self.starters.insert(K::KIND, Box::new(schedules::Starter::<K>(std::marker::PhantomData)));
        self
    }

    pub fn build(self, db: sea_orm::DatabaseConnection, clients: Clients, settings: Settings) -> Engine {
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let starters = Arc::new(self.starters);
        Engine { inner: Arc::new(Inner { db, clients, settings, wake: tokio::sync::Notify::new(), events, kinds: self.kinds, starters }) }
    }
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.inner.db
    }

    pub fn clients(&self) -> &Clients {
        &self.inner.clients
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Wakes this process's driver (a run was started or changed).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Every run saved by this process from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Saved> {
        self.inner.events.subscribe()
    }

    fn publish(&self, id: &str) {
        if self.inner.events.receiver_count() > 0 {
            let _ = self.inner.events.send(Saved { id: id.to_owned() });
        }
    }

    /// `call`, retried while it fails transiently (with exponential backoff and jitter),
    /// at most `retry_attempts` times.
    pub async fn retrying<T, F, Fut>(&self, run: &str, what: &str, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let s = self.settings();
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if e.is_transient() && attempt < s.retry_attempts => {
                    let wait = backoff(s.retry_base, attempt);
                    tracing::warn!(run, op = what, attempt, error = %e, wait_ms = wait.as_millis() as u64, "transient failure, retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Exponential backoff with jitter: base·2^(attempt-1), at most 10 s, times 0.5-1.0.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(Duration::from_secs(10));
    exp.mul_f64(rand::rng().random_range(0.5..=1.0))
}

pub use cx::Cx;

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

pub mod driver;
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
use crate::domain::{Run, RunState, Step, StepState};
use crate::error::{Error, Result};
use crate::metrics;
use journal::Journal;
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

/// A run being executed by the driver: the document, the row version it was read at, its
/// journal.
pub struct Cx<K: Kind> {
    pub engine: Engine,
    pub run: RunOf<K>,
    version: i64,
    journal: Journal,
    /// The steps' parts as last written by this transition (see `store::split`).
    written: store::PartLengths,
}

impl<K: Kind> Cx<K> {
    /// The run's name (`refreshRuns/{id}`).
    pub fn name(&self) -> String {
        name_of::<K>(&self.run.id)
    }

    /// Step `number` (1-based).
    pub fn step(&self, number: i32) -> &Step<K::Detail> {
        &self.run.steps[number as usize - 1]
    }

    pub fn step_mut(&mut self, number: i32) -> &mut Step<K::Detail> {
        &mut self.run.steps[number as usize - 1]
    }

    /// The metrics label of step `number` (1-based; "run" for none).
    fn label(&self, number: i32) -> &'static str {
        step_at::<K>(&self.run, number).map(K::step_label).unwrap_or("run")
    }

    /// The audit event of a write by the driver, in its transaction: the coordinator acts
    /// for the run's starter; the outcome is the run's error when the write records one.
    async fn audit(&self, txn: &sea_orm::DatabaseTransaction) -> Result<()> {
        let outcome = match (&self.run.state, &self.run.error) {
            (RunState::Failed, Some(e)) => ferry_kit::status::code_name(tonic::Code::from_i32(e.code)),
            _ => "OK",
        };
        ferry_kit::audit::Call::own(crate::SERVICE, "driver", &self.run.created_by)
            .with_run(&self.name(), &audit_step::<K>(&self.run))
            .append(txn, outcome)
            .await?;
        Ok(())
    }

    /// Writes the run if no one else changed it since it was read (with the parts of its
    /// steps that changed, in one transaction).
    pub async fn save(&mut self) -> Result<()> {
        let (body, parts) = store::split(&mut self.run, &mut self.written)?;
        let txn = ferry_kit::db::begin(self.engine.db()).await?;
        let saved = store::save(&txn, &self.run.id, &body, self.run.state, self.version).await?;
        if saved {
            store::save_parts(&txn, &self.run.id, &parts).await?;
            self.audit(&txn).await?;
            txn.commit().await?;
        }
        if !saved {
            return Err(Error::Aborted(format!("{} changed under its driver", self.name())));
        }
        metrics::run_write(self.label(self.run.current_step), "runs");
        self.version += 1;
        self.engine.publish(&self.run.id);
        Ok(())
    }

    /// Saves the run in its final state and releases its locks, in one transaction.
    async fn finish(&mut self) -> Result<()> {
        let (body, parts) = store::split(&mut self.run, &mut self.written)?;
        let txn = ferry_kit::db::begin(self.engine.db()).await?;
        if !store::save(&txn, &self.run.id, &body, self.run.state, self.version).await? {
            return Err(Error::Aborted(format!("{} changed under its driver", self.name())));
        }
        store::save_parts(&txn, &self.run.id, &parts).await?;
        locks::release(&txn, &self.name()).await?;
        self.audit(&txn).await?;
        txn.commit().await?;
        metrics::run_write("run", "runs");
        self.version += 1;
        self.engine.publish(&self.run.id);
        Ok(())
    }

    /// The request id of operation `op` of step `step`: the same on every attempt and after
    /// every restart, so a call that already happened is replayed, not repeated.
    pub fn request_id(&self, step: i32, op: &str) -> String {
        format!("{}-{step}-{op}", self.run.id)
    }

    /// Whether `op` of `step` is in the journal.
    pub fn has(&self, step: i32, op: &str) -> bool {
        self.journal.has(step, op)
    }

    /// What `op` of `step` returned, from the journal.
    pub fn recorded<T: DeserializeOwned>(&self, step: i32, op: &str) -> Result<Option<T>> {
        self.journal.get(step, op)
    }

    /// How many journal entries of `step` have an op starting with `prefix`.
    pub fn count(&self, step: i32, prefix: &str) -> usize {
        self.journal.count(step, prefix)
    }

    /// Operation `op` of step `step`: its journaled result, or `call` with the op's request
    /// id (retried while it fails transiently), journaled before it is returned.
    pub async fn op<T, F, Fut>(&mut self, step: i32, op: &str, call: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if let Some(done) = self.journal.get(step, op)? {
            return Ok(done);
        }
        let request_id = self.request_id(step, op);
        let name = self.name();
        let started = std::time::Instant::now();
        let out = self.engine.retrying(&name, op, || call(request_id.clone())).await;
        metrics::remote_call(self.label(step), started.elapsed());
        let out = out?;
        self.journal.append(self.engine.db(), &self.run.id, step, op, &request_id, &out).await?;
        metrics::run_write(self.label(step), "journal");
        self.after_op().await;
        Ok(out)
    }

    /// Journals that `op` of `step` happened (a marker with no result of its own).
    pub async fn mark(&mut self, step: i32, op: &str) -> Result<()> {
        if !self.journal.has(step, op) {
            let request_id = self.request_id(step, op);
            self.journal.append(self.engine.db(), &self.run.id, step, op, &request_id, &()).await?;
            metrics::run_write(self.label(step), "journal");
            self.after_op().await;
        }
        Ok(())
    }

    async fn after_op(&self) {
        let delay = self.engine.settings().op_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// The start of an abort's transition, for kinds that undo steps one by one: steps not
    /// reached are skipped; a step caught in the middle is failed when `touched` says it
    /// may have changed something (its undo deals with it), skipped when not. Returns the
    /// first step of `order` (step numbers, last first) still to undo: succeeded or
    /// failed, touched, not yet dealt with.
    pub fn next_to_undo(&mut self, touched: impl Fn(&Self, i32) -> bool, order: &[i32]) -> Option<i32> {
        let journaled: Vec<bool> = self.run.steps.iter().map(|s| touched(self, s.number)).collect();
        for (s, journaled) in self.run.steps.iter_mut().zip(journaled) {
            match s.state {
                StepState::Pending => s.state = StepState::Skipped,
                StepState::Running | StepState::WaitingForConfirmation if !journaled => {
                    s.state = StepState::Skipped;
                    s.waiting_for.clear();
                }
                StepState::Running | StepState::WaitingForConfirmation => {
                    s.state = StepState::Failed;
                    s.waiting_for.clear();
                    s.log.push("interrupted by the abort".into());
                }
                _ => {}
            }
        }
        order.iter().copied().find(|&n| {
            let s = self.step(n);
            matches!(s.state, StepState::Succeeded | StepState::Failed) && touched(self, n) && !s.undo_done
        })
    }

    /// `call`, retried while it fails transiently (nothing journaled: reads), timed as
    /// a remote call of the current step.
    pub async fn retrying<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let started = std::time::Instant::now();
        let out = self.engine.retrying(&self.name(), what, call).await;
        metrics::remote_call(self.label(self.run.current_step), started.elapsed());
        out
    }
}

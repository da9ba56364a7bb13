//! The context a run's transition executes in: the run, the version it was read at, its
//! journal; its writes (each with the run's audit event) and its operations.

use super::journal::Journal;
use super::{Engine, Kind, RunOf, audit_step, events, locks, name_of, step_at, store};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::{RunState, Step, StepState};
use crate::error::{Error, Result};
use crate::metrics;

/// A run being executed by the driver: the document, the row version it was read at, its
/// journal.
pub struct Cx<K: Kind> {
    pub engine: Engine,
    pub run: RunOf<K>,
    pub(super) version: i64,
    pub(super) journal: Journal,
    /// The steps' parts as last written by this transition (see `store::split`).
    pub(super) written: store::PartLengths,
    /// The run's and steps' states as last written (their changes become events).
    pub(super) seen: events::Seen,
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
            ferry_kit::outbox::append(&txn, &events::of::<K>(&self.seen, &self.run)).await?;
            txn.commit().await?;
            self.seen = events::Seen::of::<K>(&self.run);
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
    pub(super) async fn finish(&mut self) -> Result<()> {
        let (body, parts) = store::split(&mut self.run, &mut self.written)?;
        let txn = ferry_kit::db::begin(self.engine.db()).await?;
        if !store::save(&txn, &self.run.id, &body, self.run.state, self.version).await? {
            return Err(Error::Aborted(format!("{} changed under its driver", self.name())));
        }
        store::save_parts(&txn, &self.run.id, &parts).await?;
        locks::release(&txn, &self.name()).await?;
        self.audit(&txn).await?;
        ferry_kit::outbox::append(&txn, &events::of::<K>(&self.seen, &self.run)).await?;
        txn.commit().await?;
        self.seen = events::Seen::of::<K>(&self.run);
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

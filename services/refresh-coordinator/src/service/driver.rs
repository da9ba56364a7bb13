//! The run driver: claims runnable runs with a lease, renews it while it works, executes
//! one transition at a time and saves the run after each (and after every call to another
//! service), so a coordinator stopped at any instant is resumed by the next driver that
//! claims the run (this one after a restart, or another replica once the lease lapses).

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use ferry_kit::db::now_micros;
use rand::Rng;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::Coordinator;
use super::metrics::{self, Outcome, in_run_trace};
use crate::domain::{ErrorInfo, Interruption, Run, RunState, StepKind, StepState};
use crate::error::{Error, Result};
use crate::store;
use crate::store::leases::{self, Claim, Runs};

/// The running driver; dropping it (or [`Driver::stop`]) stops it and every run it was
/// executing, at whatever point they were (as a crash would).
pub struct Driver {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Driver {
    pub fn stop(&self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }

    /// Lets the driver run for the life of the runtime.
    pub fn detach(mut self) {
        self.task = None;
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the driver on the tokio runtime.
pub fn spawn(c: Coordinator) -> Driver {
    Driver { task: Some(tokio::spawn(main_loop(c))) }
}

async fn main_loop(c: Coordinator) {
    let mut tasks: JoinSet<String> = JoinSet::new();
    let mut active: HashSet<String> = HashSet::new();
    loop {
        loop {
            let skip: Vec<String> = active.iter().cloned().collect();
            let now = now_micros();
            let until = now + c.settings.lease.as_micros() as i64;
            let owner = &c.settings.owner;
            let claimed = match leases::claim(&c.db, Runs::Refresh, owner, now, until, &skip).await {
                Ok(None) => {
                    leases::claim(&c.db, Runs::Promotion, owner, now, until, &skip).await.map(|p| p.map(|claim| (Runs::Promotion, claim)))
                }
                other => other.map(|r| r.map(|claim| (Runs::Refresh, claim))),
            };
            match claimed {
                Ok(Some((runs, claim))) => {
                    active.insert(claim.id.clone());
                    let c2 = c.clone();
                    tasks.spawn(async move {
                        process(&c2, runs, &claim).await;
                        claim.id
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming runs failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = c.wake.notified() => {}
            _ = tokio::time::sleep(c.settings.poll) => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(id) = done {
                    active.remove(&id);
                }
            }
        }
        while let Some(done) = tasks.try_join_next() {
            if let Ok(id) = done {
                active.remove(&id);
            }
        }
    }
}

/// What a claim took over, as the run's record of it.
fn interruption(c: &Coordinator, claim: &Claim) -> Option<Interruption> {
    claim.interrupted.as_ref().map(|i| Interruption {
        holder: i.holder.clone(),
        last_heard: i.last_heard,
        resumed_at: now_micros(),
        resumed_by: c.settings.owner.clone(),
        step: 0,
    })
}

/// Drives one claimed run until it waits, fails or ends, renewing the lease meanwhile.
async fn process(c: &Coordinator, runs: Runs, claim: &Claim) {
    let id = claim.id.as_str();
    let renew = async {
        loop {
            tokio::time::sleep(c.settings.lease / 3).await;
            let now = now_micros();
            match leases::renew(&c.db, runs, id, &c.settings.owner, now, now + c.settings.lease.as_micros() as i64).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(run = id, error = %e, "lease renewal failed"),
            }
        }
    };
    let resumed = interruption(c, claim);
    if let Some(i) = &resumed {
        tracing::warn!(run = id, holder = %i.holder, "taking over a run whose coordinator stopped");
    }
    let work = async {
        match runs {
            Runs::Refresh => drive(c, id, resumed).await,
            Runs::Promotion => super::promotion_driver::drive(c, id, resumed).await,
        }
    };
    tokio::select! {
        r = work => {
            if let Err(e) = r {
                tracing::warn!(run = id, error = %e, "driving the run stopped");
            }
        }
        _ = renew => {
            tracing::warn!(run = id, "lost the lease of a run");
            return;
        }
    }
    c.wake.notify_one();
    if let Err(e) = leases::release(&c.db, runs, id, &c.settings.owner).await {
        tracing::warn!(run = id, error = %e, "releasing the run failed");
    }
}

/// A run being executed: the document and the row version it was read at.
pub(crate) struct Exec {
    pub c: Coordinator,
    pub run: Run,
    version: i64,
}

impl Exec {
    pub async fn save(&mut self) -> Result<()> {
        if !store::runs::save(&self.c.db, &self.run, self.version).await? {
            return Err(Error::Aborted(format!("{} changed under its driver", self.run.name)));
        }
        self.version += 1;
        self.c.publish(&self.run);
        Ok(())
    }

    /// Saves the run in its final state and releases its environments, in one transaction.
    async fn finish(&mut self) -> Result<()> {
        let txn = ferry_kit::db::begin(&self.c.db).await?;
        if !store::runs::save(&txn, &self.run, self.version).await? {
            return Err(Error::Aborted(format!("{} changed under its driver", self.run.name)));
        }
        store::locks::release(&txn, &self.run.name.to_string()).await?;
        txn.commit().await?;
        self.version += 1;
        self.c.publish(&self.run);
        Ok(())
    }

    /// The request id of operation `op` of step `kind`: the same on every attempt and after
    /// every restart, so a call that already happened is replayed, not repeated.
    pub fn request_id(&self, kind: StepKind, op: &str) -> String {
        format!("{}-{}-{op}", self.run.name.id(), kind.number())
    }

    /// Whether `op` of `kind` has a recorded reply.
    pub fn has(&self, kind: StepKind, op: &str) -> bool {
        self.run.step(kind).outputs.contains_key(op)
    }

    /// The recorded reply of `op` of `kind`.
    pub fn output<M: prost::Message + Default>(&self, kind: StepKind, op: &str) -> Result<Option<M>> {
        match self.run.step(kind).outputs.get(op) {
            Some(h) => Ok(Some(M::decode(hex::decode(h)?.as_slice())?)),
            None => Ok(None),
        }
    }

    /// Runs `call` once for `op` of `kind`, retrying transient failures with exponential
    /// backoff and jitter, and records its reply before returning it; a recorded reply is
    /// returned without calling.
    pub async fn op<M, F, Fut>(&mut self, kind: StepKind, op: &str, call: F) -> Result<M>
    where
        M: prost::Message + Default,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<M>>,
    {
        if let Some(m) = self.output(kind, op)? {
            return Ok(m);
        }
        let out = self.retrying(op, call).await?;
        self.run.step_mut(kind).outputs.insert(op.to_owned(), hex::encode(out.encode_to_vec()));
        self.save().await?;
        Ok(out)
    }

    /// `call`, retried while it fails transiently, at most `retry_attempts` times.
    pub async fn retrying<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if e.is_transient() && attempt < self.c.settings.retry_attempts => {
                    let wait = backoff(self.c.settings.retry_base, attempt);
                    tracing::warn!(run = %self.run.name, op = what, attempt, error = %e, wait_ms = wait.as_millis() as u64, "transient failure, retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Exponential backoff with jitter: base·2^(attempt-1), at most 10 s, times 0.5-1.0.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(Duration::from_secs(10));
    exp.mul_f64(rand::rng().random_range(0.5..=1.0))
}

pub(crate) fn error_info(e: &Error) -> ErrorInfo {
    use tonic_types::StatusExt;
    let status: tonic::Status = match e {
        Error::Remote { service, status } => {
            let mut s = status.clone();
            let msg = format!("{service}: {}", status.message());
            s = tonic::Status::with_details(s.code(), msg, s.details().to_vec().into());
            s
        }
        other => crate::grpc::status_of(other),
    };
    let mut violations = Vec::new();
    if let Some(p) = status.get_details_precondition_failure() {
        violations.extend(p.violations.into_iter().map(|v| (v.r#type, v.subject, v.description)));
    }
    if let Some(b) = status.get_details_bad_request() {
        violations.extend(b.field_violations.into_iter().map(|v| ("FIELD".to_owned(), v.field, v.description)));
    }
    let code = match status.code() {
        tonic::Code::Unknown => tonic::Code::Internal,
        c => c,
    };
    ErrorInfo { code: code as i32, message: status.message().to_owned(), violations }
}

/// Executes transitions of run `id` until it is no longer runnable; `resumed` first puts
/// on record the interruption the claim took the run over from.
async fn drive(c: &Coordinator, id: &str, mut resumed: Option<Interruption>) -> Result<()> {
    loop {
        let Some(stored) = store::runs::find(&c.db, id).await? else { return Ok(()) };
        let traceparent = stored.traceparent.as_deref();
        let mut ex = Exec { c: c.clone(), run: stored.run, version: stored.version };
        if !ex.run.state.runnable() {
            return Ok(());
        }
        if let Some(i) = resumed.take() {
            ex.run.resumed(i);
            ex.save().await?;
            continue;
        }
        if stored.abort_requested && !ex.run.aborting {
            begin_abort(&mut ex.run, stored.abort_reason, stored.aborted_by);
            ex.save().await?;
            continue;
        }
        if ex.run.aborting {
            let span = in_run_trace(tracing::info_span!("refresh.undo", run = id), traceparent);
            undo_next(&mut ex).instrument(span).await?;
            continue;
        }
        if ex.run.state == RunState::Pending {
            ex.run.state = RunState::Running;
            ex.run.start_time = Some(now_micros());
            ex.save().await?;
            continue;
        }
        let Some(kind) = ex.run.steps.iter().find(|s| !matches!(s.state, StepState::Succeeded | StepState::Skipped)).map(|s| s.kind) else {
            ex.run.state = RunState::Succeeded;
            ex.run.current_step = 0;
            ex.run.end_time = Some(now_micros());
            ex.finish().await?;
            return Ok(());
        };
        let span = in_run_trace(tracing::info_span!("refresh.step", run = id, step = kind.number()), traceparent);
        run_step(&mut ex, kind).instrument(span).await?;
    }
}

async fn run_step(ex: &mut Exec, kind: StepKind) -> Result<()> {
    let delay = ex.c.settings.step_delay;
    let step = ex.run.step_mut(kind);
    if matches!(step.state, StepState::Pending | StepState::Failed) {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let step = ex.run.step_mut(kind);
        step.attempts += 1;
        step.start_time.get_or_insert(now_micros());
        step.state = StepState::Running;
        step.error = None;
        if !step.confirmed {
            step.actor = "refresh-coordinator".into();
        }
        ex.run.current_step = kind.number();
        ex.save().await?;
    }
    let started = std::time::Instant::now();
    let executed = super::steps::execute(ex, kind).await;
    let outcome = match &executed {
        Ok(super::steps::Flow::Done) => Outcome::Succeeded,
        Ok(super::steps::Flow::Wait(_)) => Outcome::Waiting,
        Err(Error::Db(_) | Error::Aborted(_)) => Outcome::Interrupted,
        Err(_) => Outcome::Failed,
    };
    metrics::step_executed(metrics::refresh_step(kind), outcome, started.elapsed());
    match executed {
        Ok(super::steps::Flow::Done) => {
            let step = ex.run.step_mut(kind);
            step.state = StepState::Succeeded;
            step.end_time = Some(now_micros());
        }
        Ok(super::steps::Flow::Wait(what)) => {
            let step = ex.run.step_mut(kind);
            step.state = StepState::WaitingForConfirmation;
            step.waiting_for = what.into();
            step.log.push(format!("waiting for {what}"));
            ex.run.state = RunState::Waiting;
        }
        Err(e) if matches!(e, Error::Db(_) | Error::Aborted(_)) => return Err(e),
        Err(e) => {
            tracing::warn!(run = %ex.run.name, step = kind.number(), error = %e, "refresh step failed");
            let info = error_info(&e);
            let step = ex.run.step_mut(kind);
            step.state = StepState::Failed;
            step.log.push(format!("failed: {}", info.message));
            step.error = Some(info.clone());
            ex.run.state = RunState::Failed;
            ex.run.error = Some(info);
        }
    }
    ex.save().await
}

fn begin_abort(run: &mut Run, reason: String, by: String) {
    run.aborting = true;
    run.state = RunState::Aborting;
    run.abort_reason = reason;
    run.aborted_by = by;
}

/// One transition of an abort: undo the next completed step (in reverse), or finish.
async fn undo_next(ex: &mut Exec) -> Result<()> {
    if ex.run.state == RunState::Failed {
        return Ok(());
    }
    // Steps not reached are skipped; a step caught in the middle is undone from what it
    // recorded.
    for s in &mut ex.run.steps {
        match s.state {
            StepState::Pending => s.state = StepState::Skipped,
            StepState::Running | StepState::WaitingForConfirmation if s.outputs.is_empty() => {
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
    let pending = [StepKind::Copy, StepKind::PauseJobs, StepKind::DeactivateSourceIntegrations].into_iter().find(|k| {
        matches!(ex.run.step(*k).state, StepState::Succeeded | StepState::Failed)
            && !ex.run.step(*k).outputs.is_empty()
            && !ex.has(*k, "undone")
    });
    let result = match pending {
        Some(kind) => {
            ex.run.current_step = kind.number();
            super::steps::undo(ex, kind).await
        }
        None => super::steps::lift_fences(ex).await,
    };
    match result {
        Ok(()) if pending.is_some() => ex.save().await,
        Ok(()) => {
            ex.run.state = RunState::Aborted;
            ex.run.current_step = 0;
            ex.run.end_time = Some(now_micros());
            ex.finish().await
        }
        Err(e) if matches!(e, Error::Db(_) | Error::Aborted(_)) => Err(e),
        Err(e) => {
            tracing::warn!(run = %ex.run.name, error = %e, "undo failed");
            let info = error_info(&e);
            if let Some(kind) = pending {
                ex.run.step_mut(kind).log.push(format!("undo failed: {}", info.message));
            }
            ex.run.state = RunState::Failed;
            ex.run.error = Some(info);
            ex.save().await
        }
    }
}

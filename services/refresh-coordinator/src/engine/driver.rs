//! The driver: claims runnable runs of every kind with a lease, renews it while it works,
//! executes one transition at a time and saves the run after each, so a coordinator
//! stopped at any instant is resumed by the next driver that claims the run (this one
//! after a restart, or another replica once the lease lapses).

use std::collections::HashSet;

use ferry_kit::db::now_micros;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::journal::Journal;
use super::leases::{self, Claim};
use super::{Cx, Engine, Flow, Kind, store};
use crate::domain::{Interruption, RunState, StepState};
use crate::error::{Error, Result, RunError};
use crate::metrics::{self, Outcome};

/// The running driver; dropping it (or [`Driver::stop`]) stops it and every run it was
/// executing, at whatever point they were (as a crash would).
pub struct Driver {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Driver {
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Lets the driver run for the life of the runtime.
    pub fn detach(mut self) {
        self.tasks.clear();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the driver, and the scheduler that starts runs when schedules are due, on the
/// tokio runtime.
pub fn spawn(engine: Engine) -> Driver {
    let starters = engine.inner.starters.clone();
    let scheduler = tokio::spawn(super::schedules::main_loop(engine.clone(), starters));
    Driver { tasks: vec![tokio::spawn(main_loop(engine)), scheduler] }
}

async fn main_loop(engine: Engine) {
    let mut tasks: JoinSet<String> = JoinSet::new();
    let mut active: HashSet<String> = HashSet::new();
    loop {
        loop {
            let skip: Vec<String> = active.iter().cloned().collect();
            let now = now_micros();
            let until = now + engine.settings().lease.as_micros() as i64;
            match leases::claim(engine.db(), &engine.settings().owner, now, until, &skip).await {
                Ok(Some(claim)) => {
                    active.insert(claim.id.clone());
                    let e = engine.clone();
                    tasks.spawn(async move {
                        process(&e, &claim).await;
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
            _ = engine.inner.wake.notified() => {}
            _ = tokio::time::sleep(engine.settings().poll) => {}
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

/// Drives one claimed run until it waits, fails or ends, renewing the lease meanwhile.
async fn process(engine: &Engine, claim: &Claim) {
    let id = claim.id.as_str();
    let settings = engine.settings();
    let renew = async {
        loop {
            tokio::time::sleep(settings.lease / 3).await;
            let now = now_micros();
            match leases::renew(engine.db(), id, &settings.owner, now, now + settings.lease.as_micros() as i64).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(run = id, error = %e, "lease renewal failed"),
            }
        }
    };
    let resumed = claim.interrupted.as_ref().map(|i| Interruption {
        holder: i.holder.clone(),
        last_heard: i.last_heard,
        resumed_at: now_micros(),
        resumed_by: settings.owner.clone(),
        step: 0,
    });
    if let Some(i) = &resumed {
        tracing::warn!(run = id, holder = %i.holder, "taking over a run whose coordinator stopped");
    }
    let Some(kind) = engine.inner.kinds.get(claim.kind.as_str()) else {
        tracing::error!(run = id, kind = %claim.kind, "a run of a kind this coordinator does not know");
        return;
    };
    tokio::select! {
        r = kind.drive(engine, id, resumed) => {
            if let Err(e) = r {
                tracing::warn!(run = id, error = %e, "driving the run stopped");
            }
        }
        _ = renew => {
            tracing::warn!(run = id, "lost the lease of a run");
            return;
        }
    }
    engine.wake();
    if let Err(e) = leases::release(engine.db(), id, &settings.owner).await {
        tracing::warn!(run = id, error = %e, "releasing the run failed");
    }
}

/// Executes transitions of run `id` until it is no longer runnable; `resumed` first puts
/// on record the interruption the claim took the run over from.
pub(super) async fn drive<K: Kind>(engine: &Engine, id: &str, mut resumed: Option<Interruption>) -> Result<()> {
    let mut journal = Journal::load(engine.db(), id).await?;
    // The step the configured pause before a step was last taken for.
    let mut paused_before = None;
    // The steps' parts (kept beside the document): read once, then carried from one
    // transition to the next, as this driver is the only one writing them.
    let mut parts: Option<Vec<store::StepParts>> = None;
    let mut written = Vec::new();
    loop {
        let Some(stored) = store::find(engine.db(), id).await? else { return Ok(()) };
        let traceparent = stored.traceparent.clone();
        let mut run = stored.run::<K>()?;
        match parts.take() {
            Some(carried) => store::put_parts(&mut run, carried),
            None => store::with_parts::<K>(engine.db(), std::slice::from_mut(&mut run)).await?,
        }
        // The calls the steps make carry the run's starter, for the other services' audit logs.
        let starter = run.created_by.clone();
        let seen = super::events::Seen::of::<K>(&run);
        let mut cx = Cx::<K> { engine: engine.clone(), run, version: stored.version, journal, written, seen };
        let step = transition(&mut cx, stored.abort_request, resumed.take(), traceparent.as_deref(), &mut paused_before);
        let result = ferry_kit::client::on_behalf_of(starter, step).await;
        journal = cx.journal;
        written = cx.written;
        parts = Some(store::take_parts(&mut cx.run));
        match result? {
            Next::Again => {}
            Next::Stop => return Ok(()),
        }
    }
}

enum Next {
    Again,
    Stop,
}

/// One transition of the run in `cx`.
async fn transition<K: Kind>(
    cx: &mut Cx<K>,
    abort_request: Option<crate::domain::AbortRequest>,
    resumed: Option<Interruption>,
    traceparent: Option<&str>,
    paused_before: &mut Option<usize>,
) -> Result<Next> {
    // An abort asked while the run was running is taken also when the step that was
    // running has since made the run wait or fail: nothing else would take it.
    let abort = abort_request.filter(|_| !cx.run.aborting() && !cx.run.state.terminal());
    if !cx.run.state.runnable() && abort.is_none() {
        return Ok(Next::Stop);
    }
    if let Some(i) = resumed {
        cx.run.resumed(i);
        cx.save().await?;
        return Ok(Next::Again);
    }
    if let Some(request) = abort {
        cx.run.begin_abort(request);
        cx.save().await?;
        return Ok(Next::Again);
    }
    if cx.run.aborting() {
        let span = metrics::in_run_trace(tracing::info_span!("run.undo", kind = K::KIND, run = %cx.run.id), traceparent);
        undo_next(cx).instrument(span).await?;
        return Ok(if cx.run.state.runnable() { Next::Again } else { Next::Stop });
    }
    if cx.run.state == RunState::Pending {
        cx.run.state = RunState::Running;
        cx.run.start_time = Some(now_micros());
        cx.save().await?;
        return Ok(Next::Again);
    }
    let Some(index) = cx.run.steps.iter().position(|s| !s.state.done()) else {
        cx.run.state = RunState::Succeeded;
        cx.run.current_step = 0;
        cx.run.end_time = Some(now_micros());
        cx.finish().await?;
        return Ok(Next::Stop);
    };
    // The pause before a step comes before the run is read again, so an abort asked
    // during it is taken before the step starts.
    let delay = cx.engine.settings().step_delay;
    if !delay.is_zero() && *paused_before != Some(index) && matches!(cx.run.steps[index].state, StepState::Pending | StepState::Failed) {
        tokio::time::sleep(delay).await;
        *paused_before = Some(index);
        return Ok(Next::Again);
    }
    let number = index as i32 + 1;
    let span = metrics::in_run_trace(tracing::info_span!("run.step", kind = K::KIND, run = %cx.run.id, step = number), traceparent);
    run_step(cx, index).instrument(span).await?;
    Ok(Next::Again)
}

/// Starts (or resumes) step `index`, executes it and records how it ended: two writes of
/// the run, whatever the step's operations (those go to the journal).
async fn run_step<K: Kind>(cx: &mut Cx<K>, index: usize) -> Result<()> {
    if matches!(cx.run.steps[index].state, StepState::Pending | StepState::Failed) {
        let step = &mut cx.run.steps[index];
        step.attempts += 1;
        step.start_time.get_or_insert(now_micros());
        step.state = StepState::Running;
        step.error = None;
        if !step.confirmed {
            step.actor = "refresh-coordinator".into();
        }
        cx.run.current_step = index as i32 + 1;
        cx.save().await?;
    }
    let started = std::time::Instant::now();
    let executed = K::execute(cx, index).await;
    let outcome = match &executed {
        Ok(Flow::Done) => Outcome::Succeeded,
        Ok(Flow::Wait(_)) => Outcome::Waiting,
        Err(e) if e.interrupts() => Outcome::Interrupted,
        Err(_) => Outcome::Failed,
    };
    metrics::step_executed(K::step_label(&cx.run.steps[index]), outcome, started.elapsed());
    match executed {
        Ok(Flow::Done) => {
            let step = &mut cx.run.steps[index];
            step.state = StepState::Succeeded;
            step.end_time = Some(now_micros());
        }
        Ok(Flow::Wait(what)) => {
            let step = &mut cx.run.steps[index];
            step.state = StepState::WaitingForConfirmation;
            step.waiting_for = what.into();
            step.log.push(format!("waiting for {what}"));
            cx.run.state = RunState::Waiting;
        }
        Err(e) if e.interrupts() => return Err(e),
        Err(e) => fail(cx, Some(index), &e, "failed"),
    }
    cx.save().await
}

/// The run (and step `index`, if any) FAILED with `e`; it waits for a retry or an abort.
fn fail<K: Kind>(cx: &mut Cx<K>, index: Option<usize>, e: &Error, what: &str) {
    tracing::warn!(run = %cx.name(), step = index.map(|i| i + 1), error = %e, "run step {what}");
    let info: crate::domain::ErrorInfo = e.info().into();
    if let Some(i) = index {
        let step = &mut cx.run.steps[i];
        step.log.push(format!("{what}: {}", info.message));
        if what == "failed" {
            step.state = StepState::Failed;
            step.error = Some(info.clone());
        }
    }
    cx.run.state = RunState::Failed;
    cx.run.error = Some(info);
}

/// One transition of an abort: the kind undoes its next step, or ends the abort.
async fn undo_next<K: Kind>(cx: &mut Cx<K>) -> Result<()> {
    if cx.run.state == RunState::Failed {
        return Ok(());
    }
    match K::undo_next(cx).await {
        Ok(true) => cx.save().await,
        Ok(false) => {
            cx.run.state = RunState::Aborted;
            cx.run.current_step = 0;
            cx.run.end_time = Some(now_micros());
            cx.finish().await
        }
        Err(e) if e.interrupts() => Err(e),
        Err(e) => {
            let index = (cx.run.current_step > 0).then(|| cx.run.current_step as usize - 1);
            fail(cx, index, &e, "undo failed");
            cx.save().await
        }
    }
}

//! Run operations: start, get, list, confirm, retry, abort.

use ferry_kit::db::now_micros;
use ferry_kit::idempotency::RequestKey;

use super::Coordinator;
use crate::domain::{EnvName, Options, Run, RunName, RunState, StepState};
use crate::error::{Error, Result};
use crate::store::locks::{self, Lock};
use crate::store::{self, runs::Stored};

/// A run as clients see it: an abort asked of a running run shows as ABORTING until the
/// driver reaches a safe point and takes it over.
pub(crate) fn view(stored: Stored) -> Run {
    let mut run = stored.run;
    if stored.abort_requested && !run.aborting && matches!(run.state, RunState::Pending | RunState::Running) {
        run.state = RunState::Aborting;
        run.abort_reason = stored.abort_reason;
        run.aborted_by = stored.aborted_by;
    }
    run
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub states: Vec<RunState>,
    pub environment: Option<EnvName>,
}

impl Coordinator {
    async fn stored(&self, name: &RunName) -> Result<Stored> {
        store::runs::find(&self.db, name.id()).await?.ok_or_else(|| Error::not_found("refresh run", name))
    }

    pub async fn get(&self, name: &RunName) -> Result<Run> {
        Ok(view(self.stored(name).await?))
    }

    pub async fn list(&self, filter: &ListFilter, after: Option<&(i64, String)>, limit: u64) -> Result<Vec<Run>> {
        let rows = store::runs::list(&self.db, &filter.states, filter.environment.as_ref(), after, limit).await?;
        Ok(rows.into_iter().map(view).collect())
    }

    pub async fn start(
        &self,
        source: EnvName,
        destination: EnvName,
        options: Options,
        plan_etag: Option<String>,
        actor: String,
        key: Option<RequestKey>,
    ) -> Result<Run> {
        const METHOD: &str = "StartRefresh";
        if let Some(name) = self.replayed::<RunName>(key.as_ref(), METHOD).await? {
            return self.get(&name).await;
        }
        let plan = self.plan(&source, &destination, options).await?;
        if let Some(etag) = plan_etag
            && etag != plan.etag
        {
            return Err(Error::Aborted(format!("the plan changed since it was reviewed (etag {etag}, now {}); plan again", plan.etag)));
        }
        let run = Run::new(RunName::new_random(), plan, actor, now_micros());
        // The driver executes the steps later, as children of this call's trace.
        let traceparent = ferry_kit::telemetry::current_traceparent();
        let name = self
            .write(key.as_ref(), METHOD, move |txn| {
                Box::pin(async move {
                    let wanted = [Lock::Environment(run.source.clone()), Lock::Environment(run.destination.clone())];
                    locks::take(txn, &run.name.to_string(), &wanted).await?.map_err(super::locked)?;
                    store::runs::insert(txn, &run, traceparent.as_deref()).await?;
                    Ok(run.name)
                })
            })
            .await?;
        self.wake.notify_one();
        self.get(&name).await
    }

    /// Rewrites a run that no driver holds (waiting, failed) in one transaction.
    async fn update<F>(&self, name: &RunName, key: Option<&RequestKey>, method: &'static str, change: F) -> Result<Run>
    where
        F: FnOnce(&mut Stored) -> Result<bool> + Send + 'static,
    {
        let id = name.id().to_owned();
        let label = name.to_string();
        self.write(key, method, move |txn| {
            Box::pin(async move {
                let mut stored = store::runs::find(txn, &id).await?.ok_or_else(|| Error::not_found("refresh run", &label))?;
                let abort_before = stored.abort_requested;
                if change(&mut stored)? && !store::runs::save(txn, &stored.run, stored.version).await? {
                    return Err(Error::Aborted("the run changed concurrently; retry".into()));
                }
                if stored.abort_requested && !abort_before {
                    store::runs::request_abort(txn, &id, &stored.abort_reason, &stored.aborted_by).await?;
                }
                Ok(())
            })
        })
        .await?;
        self.wake.notify_one();
        let run = self.get(name).await?;
        self.publish(&run);
        Ok(run)
    }

    pub async fn confirm(&self, name: &RunName, step: i32, actor: String, comment: String, key: Option<RequestKey>) -> Result<Run> {
        self.update(name, key.as_ref(), "ConfirmRefreshStep", move |stored| {
            let run = &mut stored.run;
            let waiting = run.steps.iter().position(|s| s.state == StepState::WaitingForConfirmation);
            match waiting {
                Some(i) if i as i32 + 1 == step && run.state == RunState::Waiting => {
                    let s = &mut run.steps[i];
                    s.confirmed = true;
                    s.state = StepState::Running;
                    s.actor = actor;
                    s.comment = comment;
                    s.log.push(format!("{} confirmed by {}", s.waiting_for, s.actor));
                    s.waiting_for.clear();
                    run.state = RunState::Running;
                    Ok(true)
                }
                Some(i) => Err(Error::precondition(
                    "STEP_NOT_WAITING",
                    format!("{}/steps/{step}", run.name),
                    format!("step {step} is not waiting for confirmation; step {} is", i + 1),
                )),
                None => Err(Error::precondition(
                    "STEP_NOT_WAITING",
                    format!("{}/steps/{step}", run.name),
                    format!("no step of {} is waiting for confirmation", run.name),
                )),
            }
        })
        .await
    }

    pub async fn retry(&self, name: &RunName, key: Option<RequestKey>) -> Result<Run> {
        self.update(name, key.as_ref(), "RetryRefreshRun", move |stored| {
            let run = &mut stored.run;
            if run.state != RunState::Failed {
                return Err(Error::precondition("RUN_NOT_FAILED", run.name.to_string(), format!("{} is not FAILED", run.name)));
            }
            run.state = if run.aborting { RunState::Aborting } else { RunState::Running };
            run.error = None;
            for s in &mut run.steps {
                if s.state == StepState::Failed && !run.aborting {
                    s.state = StepState::Pending;
                    s.log.push("retried".into());
                }
            }
            Ok(true)
        })
        .await
    }

    pub async fn abort(&self, name: &RunName, reason: String, by: String, key: Option<RequestKey>) -> Result<Run> {
        self.update(name, key.as_ref(), "AbortRefreshRun", move |stored| {
            let run = &mut stored.run;
            match run.state {
                RunState::Succeeded => Err(Error::precondition(
                    "RUN_SUCCEEDED",
                    run.name.to_string(),
                    format!("{} succeeded; there is nothing to abort", run.name),
                )),
                RunState::Aborting | RunState::Aborted => Ok(false),
                _ if run.aborting => Ok(false),
                RunState::Waiting | RunState::Failed => {
                    run.aborting = true;
                    run.state = RunState::Aborting;
                    run.abort_reason = reason;
                    run.aborted_by = by;
                    Ok(true)
                }
                // A driver holds it: it takes the abort over at its next safe point.
                RunState::Pending | RunState::Running => {
                    stored.abort_requested = true;
                    stored.abort_reason = reason;
                    stored.aborted_by = by;
                    Ok(false)
                }
            }
        })
        .await
    }
}

//! Executes promotion runs (claimed by the driver's loop like refresh runs): PLAN (the
//! approval gate), each MERGE_GROUP (apply its plan, follow the job), MERGE_PROJECT; an
//! abort reverts the applied group merges in reverse. Every merge-engine call carries a
//! request id derived from run, step and attempt, and its reply is recorded before the
//! next call, so a run resumed after a crash follows the same jobs.

use std::future::Future;
use std::time::Duration;

use ferry_kit::db::now_micros;
use ferry_proto::merge::v1 as mpb;
use tracing::Instrument;

use super::Coordinator;
use super::driver::{backoff, error_info};
use super::metrics::{self, Outcome, in_run_trace};
use crate::domain::{ErrorInfo, Interruption, PromotionRun, PromotionStepKind, RunState, StepState};
use crate::error::{Error, Result};
use crate::store;

struct PExec {
    c: Coordinator,
    run: PromotionRun,
    version: i64,
}

enum Flow {
    Done,
    Wait(&'static str),
}

impl PExec {
    async fn save(&mut self) -> Result<()> {
        if !store::promotions::save(&self.c.db, &self.run, self.version).await? {
            return Err(Error::Aborted(format!("{} changed under its driver", self.run.name())));
        }
        self.version += 1;
        self.c.publish_promotion(&self.run);
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        let txn = ferry_kit::db::begin(&self.c.db).await?;
        if !store::promotions::save(&txn, &self.run, self.version).await? {
            return Err(Error::Aborted(format!("{} changed under its driver", self.run.name())));
        }
        store::locks::release(&txn, &self.run.name()).await?;
        txn.commit().await?;
        self.version += 1;
        self.c.publish_promotion(&self.run);
        Ok(())
    }

    fn request_id(&self, idx: usize, op: &str) -> String {
        format!("{}-{}-{op}", self.run.id, self.run.steps[idx].number)
    }

    async fn retrying<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if e.is_transient() && attempt < self.c.settings.retry_attempts => {
                    let wait = backoff(self.c.settings.retry_base, attempt);
                    tracing::warn!(run = %self.run.name(), op = what, attempt, error = %e, "transient failure, retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Runs `call` once for `op` of step `idx` (retrying transient failures) and records
    /// its reply; a recorded reply is returned without calling.
    async fn op<M, F, Fut>(&mut self, idx: usize, op: &str, call: F) -> Result<M>
    where
        M: prost::Message + Default,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<M>>,
    {
        if let Some(h) = self.run.steps[idx].outputs.get(op) {
            return Ok(M::decode(hex::decode(h)?.as_slice())?);
        }
        let out = self.retrying(op, call).await?;
        self.run.steps[idx].outputs.insert(op.to_owned(), hex::encode(out.encode_to_vec()));
        self.save().await?;
        Ok(out)
    }

    /// Polls a merge job until it ends.
    async fn follow(&self, job: &str) -> Result<mpb::Job> {
        loop {
            let remote = self.c.remote.clone();
            let j = self.retrying("get job", || remote.get_job(job)).await?;
            if matches!(mpb::JobState::try_from(j.state), Ok(mpb::JobState::Succeeded | mpb::JobState::Failed | mpb::JobState::Cancelled)) {
                return Ok(j);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A job that did not succeed, as the step's error.
fn job_error(job: &mpb::Job) -> Error {
    let (code, message) =
        job.error.as_ref().map(|e| (e.code, e.message.clone())).unwrap_or((tonic::Code::Internal as i32, "job did not succeed".into()));
    Error::Remote { service: "merge-engine", status: tonic::Status::new(tonic::Code::from(code), format!("{}: {message}", job.name)) }
}

fn result_line(job: &mpb::Job) -> String {
    let r = job.result.unwrap_or_default();
    format!(
        "{} succeeded: created {}, linked {}, skipped {}, overwritten {}, conflicts kept {}, removed {}, unlinked {}, not reverted {}, config items created {}, replaced {}, unchanged {}",
        job.name,
        r.created,
        r.linked,
        r.skipped,
        r.overwritten,
        r.conflicts_kept,
        r.removed,
        r.unlinked,
        r.not_reverted,
        r.config_items_created,
        r.config_items_replaced,
        r.config_items_unchanged
    )
}

pub(crate) async fn drive(c: &Coordinator, id: &str, mut resumed: Option<Interruption>) -> Result<()> {
    loop {
        let Some(stored) = store::promotions::find(&c.db, id).await? else { return Ok(()) };
        let traceparent = stored.traceparent.as_deref();
        let mut ex = PExec { c: c.clone(), run: stored.run, version: stored.version };
        if !ex.run.state.runnable() {
            return Ok(());
        }
        if let Some(i) = resumed.take() {
            ex.run.resumed(i);
            ex.save().await?;
            continue;
        }
        if stored.abort_requested && !ex.run.aborting {
            ex.run.aborting = true;
            ex.run.state = RunState::Aborting;
            ex.save().await?;
            continue;
        }
        if ex.run.aborting {
            let span = in_run_trace(tracing::info_span!("promotion.undo", run = id), traceparent);
            undo_next(&mut ex).instrument(span).await?;
            continue;
        }
        if ex.run.state == RunState::Pending {
            ex.run.state = RunState::Running;
            ex.run.start_time = Some(now_micros());
            ex.save().await?;
            continue;
        }
        let Some(idx) = ex.run.steps.iter().position(|s| !matches!(s.state, StepState::Succeeded | StepState::Skipped)) else {
            ex.run.state = RunState::Succeeded;
            ex.run.current_step = 0;
            ex.run.end_time = Some(now_micros());
            ex.finish().await?;
            return Ok(());
        };
        let span = in_run_trace(tracing::info_span!("promotion.step", run = id, step = idx + 1), traceparent);
        run_step(&mut ex, idx).instrument(span).await?;
    }
}

async fn run_step(ex: &mut PExec, idx: usize) -> Result<()> {
    if matches!(ex.run.steps[idx].state, StepState::Pending | StepState::Failed) {
        let delay = ex.c.settings.step_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let step = &mut ex.run.steps[idx];
        step.attempts += 1;
        step.start_time.get_or_insert(now_micros());
        step.state = StepState::Running;
        step.error = None;
        if !step.confirmed {
            step.actor = "refresh-coordinator".into();
        }
        ex.run.current_step = step.number;
        ex.save().await?;
    }
    let started = std::time::Instant::now();
    let executed = execute(ex, idx).await;
    let outcome = match &executed {
        Ok(Flow::Done) => Outcome::Succeeded,
        Ok(Flow::Wait(_)) => Outcome::Waiting,
        Err(Error::Db(_) | Error::Aborted(_)) => Outcome::Interrupted,
        Err(_) => Outcome::Failed,
    };
    metrics::step_executed(metrics::promotion_step(ex.run.steps[idx].kind), outcome, started.elapsed());
    match executed {
        Ok(Flow::Done) => {
            let step = &mut ex.run.steps[idx];
            step.state = StepState::Succeeded;
            step.end_time = Some(now_micros());
        }
        Ok(Flow::Wait(what)) => {
            let step = &mut ex.run.steps[idx];
            step.state = StepState::WaitingForConfirmation;
            step.waiting_for = what.into();
            step.log.push(format!("waiting for {what}"));
            ex.run.state = RunState::Waiting;
        }
        Err(e) if matches!(e, Error::Db(_) | Error::Aborted(_)) => return Err(e),
        Err(e) => fail(ex, Some(idx), &e),
    }
    ex.save().await
}

fn fail(ex: &mut PExec, idx: Option<usize>, e: &Error) {
    tracing::warn!(run = %ex.run.name(), error = %e, "promotion step failed");
    let info: ErrorInfo = error_info(e);
    if let Some(i) = idx {
        let step = &mut ex.run.steps[i];
        step.state = StepState::Failed;
        step.log.push(format!("failed: {}", info.message));
        step.error = Some(info.clone());
    }
    ex.run.state = RunState::Failed;
    ex.run.error = Some(info);
}

async fn execute(ex: &mut PExec, idx: usize) -> Result<Flow> {
    let kind = ex.run.steps[idx].kind;
    let attempt = ex.run.steps[idx].attempts;
    let remote = ex.c.remote.clone();
    match kind {
        PromotionStepKind::Plan => {
            let merges = ex.run.steps.iter().filter(|s| s.kind == PromotionStepKind::MergeGroup).count();
            if !ex.run.steps[idx].log.iter().any(|l| l.starts_with("planned")) {
                ex.run.steps[idx].log.push(format!("planned {merges} group merge(s), then the project merge"));
            }
            if ex.run.options.require_approval && !ex.run.steps[idx].confirmed {
                return Ok(Flow::Wait("approval"));
            }
        }
        PromotionStepKind::MergeGroup => {
            // A retry after a failed apply plans again: the partial apply moved the recipient.
            if attempt > 1 {
                let req = mpb::CreateMergePlanRequest {
                    source: ex.run.steps[idx].source.clone(),
                    recipient: ex.run.steps[idx].recipient.clone(),
                    strategy: ex.run.options.strategy,
                    kinds: Vec::new(),
                    keys: Vec::new(),
                    request_id: ex.request_id(idx, &format!("plan-a{attempt}")),
                };
                let r = remote.clone();
                let plan: mpb::MergePlan = ex
                    .op(idx, &format!("plan-a{attempt}"), move || {
                        let (r, req) = (r.clone(), req.clone());
                        async move { r.create_merge_plan(req).await }
                    })
                    .await?;
                ex.run.steps[idx].merge_plan = plan.name;
            }
            let req = mpb::ApplyMergePlanRequest {
                name: ex.run.steps[idx].merge_plan.clone(),
                proceed_with_missing_dependencies: ex.run.options.proceed_with_missing_dependencies,
                request_id: ex.request_id(idx, &format!("apply-a{attempt}")),
            };
            let r = remote.clone();
            let job: mpb::Job = ex
                .op(idx, &format!("apply-a{attempt}"), move || {
                    let (r, req) = (r.clone(), req.clone());
                    async move { r.apply_merge_plan(req).await }
                })
                .await?;
            ex.run.steps[idx].job = job.name.clone();
            let done = ex.follow(&job.name).await?;
            if done.state != mpb::JobState::Succeeded as i32 {
                return Err(job_error(&done));
            }
            let line = result_line(&done);
            ex.run.steps[idx].log.push(line);
        }
        PromotionStepKind::MergeProject => {
            let req = mpb::MergeProjectRequest {
                source: ex.run.source.to_string(),
                recipient: ex.run.target.to_string(),
                merge_groups_first: false,
                strategy: ex.run.options.strategy,
                group_pairs: ex
                    .run
                    .options
                    .group_pairs
                    .iter()
                    .map(|(s, r)| mpb::GroupPair { source: s.clone(), recipient: r.clone() })
                    .collect(),
                group_merge_plans: Vec::new(),
                proceed_with_missing_dependencies: ex.run.options.proceed_with_missing_dependencies,
                request_id: ex.request_id(idx, &format!("merge-a{attempt}")),
            };
            let r = remote.clone();
            let job: mpb::Job = ex
                .op(idx, &format!("merge-a{attempt}"), move || {
                    let (r, req) = (r.clone(), req.clone());
                    async move { r.merge_project(req).await }
                })
                .await?;
            ex.run.steps[idx].job = job.name.clone();
            let done = ex.follow(&job.name).await?;
            if done.state != mpb::JobState::Succeeded as i32 {
                return Err(job_error(&done));
            }
            let line = result_line(&done);
            ex.run.steps[idx].log.push(line);
        }
    }
    Ok(Flow::Done)
}

/// One transition of an abort: cancel a running merge job, revert the next applied group
/// merge (in reverse), or finish.
async fn undo_next(ex: &mut PExec) -> Result<()> {
    let remote = ex.c.remote.clone();
    for i in 0..ex.run.steps.len() {
        let s = &ex.run.steps[i];
        match s.state {
            StepState::Pending => ex.run.steps[i].state = StepState::Skipped,
            StepState::WaitingForConfirmation => {
                ex.run.steps[i].state = StepState::Skipped;
                ex.run.steps[i].waiting_for.clear();
            }
            StepState::Running if s.job.is_empty() => ex.run.steps[i].state = StepState::Skipped,
            StepState::Running => {
                // Stop the job at its next batch; what it applied is reverted below.
                let job = s.job.clone();
                let req = mpb::CancelJobRequest { name: job.clone(), request_id: ex.request_id(i, "cancel") };
                match ex.retrying("cancel job", || remote.cancel_job(req.clone())).await {
                    Ok(_) => {}
                    Err(Error::Remote { status, .. }) if status.code() == tonic::Code::FailedPrecondition => {}
                    Err(e) => return Err(e),
                }
                let done = ex.follow(&job).await?;
                let step = &mut ex.run.steps[i];
                step.state = if done.state == mpb::JobState::Succeeded as i32 { StepState::Succeeded } else { StepState::Failed };
                step.log.push(format!("{job} stopped by the abort"));
            }
            _ => {}
        }
    }
    let next = ex.run.steps.iter().rposition(|s| {
        s.kind == PromotionStepKind::MergeGroup && matches!(s.state, StepState::Succeeded | StepState::Failed) && !s.job.is_empty()
    });
    let Some(i) = next else {
        ex.run.state = RunState::Aborted;
        ex.run.current_step = 0;
        ex.run.end_time = Some(now_micros());
        return ex.finish().await;
    };
    ex.run.current_step = ex.run.steps[i].number;
    // Each attempt of a revert has its own request id: a revert job that failed (say,
    // refused for changed entities) is not replayed when the abort is retried.
    let k = ex.run.steps[i].outputs.keys().filter(|o| o.starts_with("revert-failed-")).count();
    let op = format!("revert-{k}");
    let req = mpb::RevertMergeRequest {
        job: ex.run.steps[i].job.clone(),
        proceed_with_changed: ex.run.proceed_with_changed,
        request_id: ex.request_id(i, &op),
    };
    let r = remote.clone();
    let reverted: Result<mpb::Job> = ex
        .op(i, &op, move || {
            let (r, req) = (r.clone(), req.clone());
            async move { r.revert_merge(req).await }
        })
        .await;
    let outcome = match reverted {
        Ok(job) => match ex.follow(&job.name).await {
            Ok(done) if done.state == mpb::JobState::Succeeded as i32 => {
                let step = &mut ex.run.steps[i];
                step.revert_job = done.name.clone();
                step.log.push(result_line(&done));
                step.state = StepState::Undone;
                Ok(())
            }
            Ok(done) => Err(job_error(&done)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => ex.save().await,
        Err(e) if matches!(e, Error::Db(_) | Error::Aborted(_)) => Err(e),
        Err(e) => {
            let step = &mut ex.run.steps[i];
            step.log.push(format!("revert failed: {e}"));
            let failed = step.outputs.remove(&op).unwrap_or_default();
            step.outputs.insert(format!("revert-failed-{k}"), failed);
            fail(ex, None, &e);
            ex.save().await
        }
    }
}

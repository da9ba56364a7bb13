//! The promotion run: promote project P into Q (same environment) = merge each of P's
//! groups into Q's matching group, then merge the project (the groups article's best
//! practice). One definition: its steps (PLAN, one MERGE_GROUP per group pair,
//! MERGE_PROJECT), how a run starts (the group merge plans are made, and shown, before
//! anything applies), what each step does, and its undo (the applied group merges are
//! reverted, last first).
//!
//! A step's merge-engine calls are journaled per *round*: round 1 applies the plan made at
//! the start; a retry after a failed round plans again (the partial apply moved the
//! recipient) as round 2, and so on. A coordinator stopped mid-round resumes the same
//! round and follows the same job.

use std::time::Duration;

use ferry_kit::db::now_micros;
use ferry_kit::idempotency::RequestKey;
use futures::future::BoxFuture;

use crate::domain::remote::{GroupPair, MergeJob, MergeJobState, MergePlanInfo, PlanCounts, ProjectMergePreview};
use crate::domain::{ProjectName, PromotionOptions, PromotionRun, PromotionSpec, PromotionStep, PromotionStepKind, Run, Step, StepState};
use crate::engine::locks::Lock;
use crate::engine::{Cx, Engine, Flow, Kind, RunOf};
use crate::error::{Error, Result, RunError};

/// The promotion run kind.
pub struct Promotion;

impl Kind for Promotion {
    const KIND: &'static str = "promotion";
    const COLLECTION: &'static str = "promotionRuns";
    const NOUN: &'static str = "promotion run";
    type Spec = PromotionSpec;
    type Detail = PromotionStep;

    fn locks(spec: &PromotionSpec) -> Vec<Lock> {
        vec![Lock::Project(spec.target.clone())]
    }

    fn subjects(spec: &PromotionSpec) -> Vec<String> {
        vec![spec.source.to_string(), spec.target.to_string(), spec.target.env.to_string()]
    }

    fn step_label(step: &Step<PromotionStep>) -> &'static str {
        step.detail.kind.label()
    }

    fn execute(cx: &mut Cx<Self>, index: usize) -> BoxFuture<'_, Result<Flow>> {
        Box::pin(execute(cx, index as i32 + 1))
    }

    fn undo_next(cx: &mut Cx<Self>) -> BoxFuture<'_, Result<bool>> {
        Box::pin(undo_next(cx))
    }

    /// The project merge changes configuration items no revert restores: once it has
    /// started, the run can no longer be aborted.
    fn check_abort(run: &RunOf<Self>) -> Result<()> {
        let project = run.steps.last().filter(|s| s.detail.kind == PromotionStepKind::MergeProject);
        if project.is_some_and(|s| !matches!(s.state, StepState::Pending | StepState::Skipped)) {
            let name = crate::engine::name_of::<Self>(&run.id);
            return Err(Error::unmet(
                "MERGE_PROJECT_STARTED",
                &name,
                format!("the project merge of {name} has started; it cannot be aborted"),
            ));
        }
        Ok(())
    }
}

/// PlanPromotion: the project merge preview, with a merge plan per group pair.
pub async fn plan(
    engine: &Engine,
    source: &ProjectName,
    target: &ProjectName,
    options: &PromotionOptions,
    request_id: String,
) -> Result<ProjectMergePreview> {
    engine.check_free(&[Lock::Project(target.clone())]).await?;
    engine.clients().merge.plan_project_merge(source, target, true, options, request_id).await
}

/// StartPromotion: plans (or takes the reviewed `merge_plans`, which must match the group
/// pairs, in order, and not be stale) and creates the run.
pub async fn start(
    engine: &Engine,
    source: ProjectName,
    target: ProjectName,
    options: PromotionOptions,
    merge_plans: Vec<String>,
    actor: String,
    key: Option<RequestKey>,
) -> Result<PromotionRun> {
    const METHOD: &str = "StartPromotion";
    if let Some(id) = engine.replayed::<String>(key.as_ref(), METHOD).await? {
        return engine.get::<Promotion>(&id).await;
    }
    engine.check_free(&[Lock::Project(target.clone())]).await?;
    let merge = &engine.clients().merge;
    let id = crate::domain::new_run_id();
    let given = !merge_plans.is_empty();
    let preview = merge.plan_project_merge(&source, &target, !given, &options, format!("{id}-plan")).await?;
    // (pair, plan, counts) per group merge.
    let mut merges: Vec<(GroupPair, String, Option<PlanCounts>)> = Vec::new();
    if given {
        if merge_plans.len() != preview.group_pairs.len() {
            return Err(Error::invalid(
                "merge_plans",
                format!("{} plan(s) given for {} group pair(s)", merge_plans.len(), preview.group_pairs.len()),
            ));
        }
        for (i, (name, pair)) in merge_plans.iter().zip(&preview.group_pairs).enumerate() {
            let plan: MergePlanInfo = merge.get_merge_plan(name).await?;
            if plan.source != pair.source || plan.recipient != pair.recipient {
                return Err(Error::invalid(
                    &format!("merge_plans[{i}]"),
                    format!("{name} does not merge {} into {}", pair.source, pair.recipient),
                ));
            }
            if plan.stale {
                return Err(Error::Aborted(format!("{name} is stale: a group changed since it was planned; plan again")));
            }
            merges.push((pair.clone(), name.clone(), plan.counts));
        }
    } else {
        merges.extend(preview.group_merges.iter().map(|g| (g.pair.clone(), g.merge_plan.clone(), g.counts)));
    }
    let mut details = vec![PromotionStep::new(PromotionStepKind::Plan, source.to_string(), target.to_string(), String::new())];
    for (pair, plan, counts) in merges {
        let mut step = PromotionStep::new(PromotionStepKind::MergeGroup, pair.source, pair.recipient, plan);
        step.counts = counts;
        details.push(step);
    }
    details.push(PromotionStep::new(PromotionStepKind::MergeProject, source.to_string(), target.to_string(), String::new()));
    let spec = PromotionSpec { source, target, options, plan: preview };
    engine.start::<Promotion>(Run::new(id, spec, details, actor, now_micros()), key, METHOD).await
}

/// The round a merge step is in: one more than the rounds that failed.
fn round(cx: &Cx<Promotion>, n: i32) -> usize {
    cx.count(n, "failed-a") + 1
}

/// The job the step's current round started, if it started one.
fn round_job(cx: &Cx<Promotion>, n: i32) -> Result<Option<MergeJob>> {
    let r = round(cx, n);
    for op in [format!("apply-a{r}"), format!("merge-a{r}")] {
        if let Some(job) = cx.recorded::<MergeJob>(n, &op)? {
            return Ok(Some(job));
        }
    }
    Ok(None)
}

/// Polls a merge job until it ends.
async fn follow(cx: &Cx<Promotion>, job: &str) -> Result<MergeJob> {
    let merge = cx.engine.clients().merge.clone();
    loop {
        let j = cx.retrying("get job", || merge.get_job(job)).await?;
        if j.state.ended() {
            return Ok(j);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A job that did not succeed, as the step's error.
fn job_error(job: &MergeJob) -> Error {
    let (code, message) =
        job.error.as_ref().map(|e| (e.code, e.message.clone())).unwrap_or((tonic::Code::Internal as i32, "job did not succeed".into()));
    Error::Remote { service: "merge-engine", status: tonic::Status::new(tonic::Code::from(code), format!("{}: {message}", job.name)) }
}

fn result_line(job: &MergeJob) -> String {
    let r = &job.result;
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

async fn execute(cx: &mut Cx<Promotion>, n: i32) -> Result<Flow> {
    match cx.step(n).detail.kind {
        PromotionStepKind::Plan => {
            let merges = cx.run.steps.iter().filter(|s| s.detail.kind == PromotionStepKind::MergeGroup).count();
            let step = cx.step_mut(n);
            if !step.log.iter().any(|l| l.starts_with("planned")) {
                step.log.push(format!("planned {merges} group merge(s), then the project merge"));
            }
            if cx.run.spec.options.require_approval && !cx.step(n).confirmed {
                return Ok(Flow::Wait(crate::domain::approval::APPROVAL));
            }
            Ok(Flow::Done)
        }
        PromotionStepKind::MergeGroup | PromotionStepKind::MergeProject => {
            let r = round(cx, n);
            match merge_round(cx, n, r).await {
                Err(e) if !e.interrupts() => {
                    // The next retry starts a new round (a new plan, new request ids).
                    cx.mark(n, &format!("failed-a{r}")).await?;
                    Err(e)
                }
                other => other,
            }
        }
    }
}

/// Round `r` of a merge step: (plan again,) apply, follow the job.
async fn merge_round(cx: &mut Cx<Promotion>, n: i32, r: usize) -> Result<Flow> {
    let merge = cx.engine.clients().merge.clone();
    let PromotionSpec { source, target, options, .. } = cx.run.spec.clone();
    let job = match cx.step(n).detail.kind {
        PromotionStepKind::MergeGroup => {
            let (src, rcp) = (cx.step(n).detail.source.clone(), cx.step(n).detail.recipient.clone());
            if r > 1 {
                let plan = cx.op(n, &format!("plan-a{r}"), |rid| merge.create_merge_plan(&src, &rcp, options.strategy, rid)).await?;
                let d = &mut cx.step_mut(n).detail;
                d.merge_plan = plan.name;
                d.counts = plan.counts.or(d.counts);
            }
            let plan = cx.step(n).detail.merge_plan.clone();
            let proceed = options.proceed_with_missing_dependencies;
            cx.op(n, &format!("apply-a{r}"), |rid| merge.apply_merge_plan(&plan, proceed, rid)).await?
        }
        _ => cx.op(n, &format!("merge-a{r}"), |rid| merge.merge_project(&source, &target, &options, rid)).await?,
    };
    cx.step_mut(n).detail.job = job.name.clone();
    let done = follow(cx, &job.name).await?;
    if done.state != MergeJobState::Succeeded {
        return Err(job_error(&done));
    }
    cx.step_mut(n).log.push(result_line(&done));
    Ok(Flow::Done)
}

/// One transition of an abort: stop a running merge job, revert the next applied group
/// merge (last first), or end (false).
async fn undo_next(cx: &mut Cx<Promotion>) -> Result<bool> {
    let merge = cx.engine.clients().merge.clone();
    for i in 0..cx.run.steps.len() {
        let n = i as i32 + 1;
        match cx.step(n).state {
            StepState::Pending => cx.step_mut(n).state = StepState::Skipped,
            StepState::WaitingForConfirmation => {
                let s = cx.step_mut(n);
                s.state = StepState::Skipped;
                s.waiting_for.clear();
            }
            StepState::Running => match round_job(cx, n)? {
                None => cx.step_mut(n).state = StepState::Skipped,
                Some(job) => {
                    // Stop the job at its next batch; what it applied is reverted below.
                    let request_id = cx.request_id(n, "cancel");
                    match cx.retrying("cancel job", || merge.cancel_job(&job.name, request_id.clone())).await {
                        Ok(_) => {}
                        Err(Error::Remote { status, .. }) if status.code() == tonic::Code::FailedPrecondition => {}
                        Err(e) => return Err(e),
                    }
                    let done = follow(cx, &job.name).await?;
                    let s = cx.step_mut(n);
                    s.detail.job = job.name.clone();
                    s.state = if done.state == MergeJobState::Succeeded { StepState::Succeeded } else { StepState::Failed };
                    s.log.push(format!("{} stopped by the abort", job.name));
                }
            },
            _ => {}
        }
    }
    let next = cx.run.steps.iter().rposition(|s| {
        s.detail.kind == PromotionStepKind::MergeGroup
            && matches!(s.state, StepState::Succeeded | StepState::Failed)
            && !s.detail.job.is_empty()
    });
    let Some(i) = next else { return Ok(false) };
    let n = i as i32 + 1;
    cx.run.current_step = n;
    // Each attempt of a revert has its own request id: a revert that failed (say, refused
    // for changed entities) is not replayed when the abort is asked again or retried.
    let k = cx.count(n, "revert-failed-");
    let (job, proceed) = (cx.step(n).detail.job.clone(), cx.run.abort.as_ref().is_some_and(|a| a.proceed_with_changed));
    let reverted = async {
        let revert = cx.op(n, &format!("revert-{k}"), |rid| merge.revert_merge(&job, proceed, rid)).await?;
        let done = follow(cx, &revert.name).await?;
        if done.state == MergeJobState::Succeeded { Ok(done) } else { Err(job_error(&done)) }
    }
    .await;
    match reverted {
        Ok(done) => {
            let s = cx.step_mut(n);
            s.detail.revert_job = done.name.clone();
            s.log.push(result_line(&done));
            s.state = StepState::Undone;
            s.undo_done = true;
            Ok(true)
        }
        Err(e) if e.interrupts() => Err(e),
        Err(e) => {
            cx.mark(n, &format!("revert-failed-{k}")).await?;
            Err(e)
        }
    }
}

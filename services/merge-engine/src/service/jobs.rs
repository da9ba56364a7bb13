//! Jobs: apply a plan, clone a group, read, list and cancel. Creating a job and moving
//! its plan to APPLYING is one transaction; the worker does the rest.

use ferry_kit::db::now_micros;
use ferry_kit::status::Precondition;

use super::Engine;
use super::plans::{PlanRequest, already_exists};
use crate::domain::{
    GroupName, Job, JobError, JobId, JobKind, JobParams, JobResult, JobState, Outcome, Page, Plan, PlanId, PlanState, PlanType, Progress,
    RequestKey, Selection, Strategy,
};
use crate::error::{Error, Result};
use crate::store;

/// Most violations listed in one refusal; the message gives the full count.
const MAX_VIOLATIONS: u64 = 1000;

impl Engine {
    pub async fn get_job(&self, id: &JobId) -> Result<Job> {
        Ok(store::jobs::find(&self.db, id).await?.ok_or_else(|| Error::not_found("job", id))?.job)
    }

    pub async fn list_jobs(
        &self,
        states: &[JobState],
        kinds: &[JobKind],
        after: Option<(i64, String)>,
        limit: u64,
        scope: ferry_kit::db::Scope<'_>,
    ) -> Result<Page<Job, (i64, String)>> {
        let rows = store::jobs::list(&self.db, states, kinds, after.as_ref(), limit + 1, scope).await?;
        Ok(super::page(rows, limit, |j| (j.created_at, j.id.0.clone())))
    }

    /// Applies a plan as an APPLY_MERGE job (G10, G11, G12) that `created_by` started.
    pub async fn apply_plan(&self, key: Option<RequestKey>, id: PlanId, proceed: bool, created_by: String) -> Result<Job> {
        if let Some(job) = self.replayed::<JobId>(&key, "ApplyMergePlan").await? {
            return self.get_job(&job).await;
        }
        let plan = self.stored_plan(&id).await?;
        if let Some(job) = self.existing_apply(&plan).await? {
            return Ok(job);
        }
        self.check_applicable(&plan, proceed).await?;
        let job = new_job(JobKind::ApplyMerge, &plan, proceed, created_by);
        let queued = job.clone();
        let chunk = self.settings.chunk_size;
        let job_id = self
            .write(key, "ApplyMergePlan", move |txn| {
                Box::pin(async move {
                    if !store::plans::transition(txn, &plan.id, &[PlanState::Ready], PlanState::Applying, Some(&job.id)).await? {
                        // Another apply got there first: answer with its job.
                        let now = store::plans::find(txn, &plan.id).await?.ok_or_else(|| Error::not_found("merge plan", &plan.id))?;
                        return match (now.state, &now.job) {
                            (PlanState::Applying | PlanState::Applied, Some(j)) => Ok(j.clone()),
                            (PlanState::Expired, _) => Err(expired(&now)),
                            _ => Err(cancelled(&now)),
                        };
                    }
                    store::jobs::insert(txn, &job, chunk).await?;
                    Ok(job.id.clone())
                })
            })
            .await?;
        if job_id == queued.id {
            self.wake.notify_waiters();
        }
        self.get_job(&job_id).await
    }

    /// G11: a plan is applied at most once; an APPLYING or APPLIED plan answers with its job.
    async fn existing_apply(&self, plan: &Plan) -> Result<Option<Job>> {
        match (plan.state, &plan.job) {
            (PlanState::Applying | PlanState::Applied, Some(job)) => Ok(Some(self.get_job(job).await?)),
            (PlanState::Cancelled, _) => Err(cancelled(plan)),
            (PlanState::Expired, _) => Err(expired(plan)),
            (PlanState::Ready, _) if plan.expire_at <= now_micros() => Err(expired(plan)),
            _ => Ok(None),
        }
    }

    /// The checks apply makes at the call (and the worker again when the job starts).
    pub(crate) async fn check_applicable(&self, plan: &Plan, proceed: bool) -> Result<()> {
        if plan.plan_type == PlanType::GroupClone && self.registry.group_revision(&plan.recipient).await?.is_some() {
            return Err(already_exists(&plan.recipient));
        }
        if self.is_stale(plan, &mut Default::default()).await? {
            return Err(Error::Aborted(format!(
                "{} is stale: {} or {} changed since it was planned; plan again",
                plan.id, plan.source, plan.recipient
            )));
        }
        if plan.counts.missing_dependencies > 0 && !proceed {
            let items = store::plans::first_items(&self.db, &plan.id, Outcome::MissingDependency, MAX_VIOLATIONS).await?;
            let violations = items
                .iter()
                .filter_map(|i| {
                    let (k, key) = i.missing.as_ref()?;
                    Some(Precondition::new(
                        "MISSING_DEPENDENCY",
                        format!("{}:{key}", k.label()),
                        format!(
                            "{}:{} ({}) references it and {} will not hold it",
                            i.kind.label(),
                            i.key,
                            plan.source.entity(i.source_entity_id),
                            plan.recipient
                        ),
                    ))
                })
                .collect();
            return Err(Error::precondition(
                format!(
                    "{} has {} missing dependencies (G12); merge them too or set proceed_with_missing_dependencies",
                    plan.id, plan.counts.missing_dependencies
                ),
                violations,
            ));
        }
        if plan.strategy == Strategy::Fail && plan.counts.conflicts > 0 {
            let items = store::plans::first_items(&self.db, &plan.id, Outcome::Conflict, MAX_VIOLATIONS).await?;
            let violations = items
                .iter()
                .map(|i| {
                    Precondition::new(
                        "CONFLICT",
                        format!("{}:{}", i.kind.label(), i.key),
                        format!("{} holds different content under this key", plan.recipient),
                    )
                })
                .collect();
            return Err(Error::precondition(
                format!("{} has {} conflicts and its strategy is FAIL", plan.id, plan.counts.conflicts),
                violations,
            ));
        }
        Ok(())
    }

    /// Clones a group in one CLONE_GROUP job: the worker plans (plan id = job id), creates
    /// the group and applies (G5). The plan records the job's `created_by`.
    pub async fn clone_group(
        &self,
        key: Option<RequestKey>,
        source: GroupName,
        recipient: GroupName,
        display_name: String,
        created_by: String,
    ) -> Result<Job> {
        if let Some(job) = self.replayed::<JobId>(&key, "CloneGroup").await? {
            return self.get_job(&job).await;
        }
        self.registry.existing_revision(&source).await?;
        if self.registry.group_revision(&recipient).await?.is_some() {
            return Err(already_exists(&recipient));
        }
        let params = JobParams { proceed_with_missing_dependencies: true, display_name, ..JobParams::default() };
        let job = queued(JobKind::CloneGroup, source.to_string(), recipient.to_string(), params, created_by);
        let chunk = self.settings.chunk_size;
        let id = self
            .write(key, "CloneGroup", move |txn| {
                Box::pin(async move {
                    store::jobs::insert(txn, &job, chunk).await?;
                    Ok(job.id.clone())
                })
            })
            .await?;
        self.wake.notify_waiters();
        self.get_job(&id).await
    }

    /// The request a CLONE_GROUP job plans.
    pub(crate) fn clone_request(job: &Job) -> Result<PlanRequest> {
        let parse = |s: &str| GroupName::parse(s).map_err(|e| Error::Internal(format!("stored job group: {e}")));
        Ok(PlanRequest {
            plan_type: PlanType::GroupClone,
            source: parse(&job.source)?,
            recipient: parse(&job.recipient)?,
            recipient_display_name: job.params.display_name.clone(),
            strategy: Strategy::KeepRecipient,
            selection: Selection::default(),
            created_by: job.created_by.clone(),
        })
    }

    /// Cancels a QUEUED job at once, or asks a RUNNING one to stop after its chunk.
    pub async fn cancel_job(&self, key: Option<RequestKey>, id: JobId) -> Result<Job> {
        let retention = self.settings.retention;
        let done = self
            .write(key, "CancelJob", move |txn| {
                Box::pin(async move {
                    let row = store::jobs::find(txn, &id).await?.ok_or_else(|| Error::not_found("job", &id))?;
                    let now = now_micros();
                    match row.job.state {
                        JobState::Cancelled => {}
                        JobState::Succeeded | JobState::Failed => {
                            return Err(Error::precondition(
                                format!("{id} has already ended"),
                                vec![Precondition::new("JOB_ENDED", id.to_string(), "only a queued or running job can be cancelled")],
                            ));
                        }
                        JobState::Queued => {
                            let expiry = retention.job_expiry(now);
                            if store::jobs::finish(txn, &id, None, JobState::Cancelled, Some(&cancelled_error()), now, expiry).await? {
                                if let Some(plan) = &row.job.plan {
                                    store::plans::transition(txn, plan, &[PlanState::Applying], PlanState::Ready, None).await?;
                                }
                            } else {
                                store::jobs::request_cancel(txn, &id, now).await?;
                            }
                        }
                        JobState::Running => {
                            store::jobs::request_cancel(txn, &id, now).await?;
                        }
                    }
                    Ok(id)
                })
            })
            .await?;
        self.get_job(&done).await
    }
}

/// A QUEUED job that `created_by` started; the caller sets what its kind needs beyond.
pub(super) fn queued(kind: JobKind, source: String, recipient: String, params: JobParams, created_by: String) -> Job {
    let now = now_micros();
    Job {
        id: JobId::generate(),
        kind,
        state: JobState::Queued,
        plan: None,
        source,
        recipient,
        params,
        progress: Progress { done: 0, total: 0, phase: "queued".into() },
        result: JobResult::default(),
        error: None,
        produced: vec![],
        cancel_requested: false,
        created_at: now,
        started_at: None,
        ended_at: None,
        updated_at: now,
        reverted_job: None,
        reverted_by: None,
        expire_at: None,
        effects_pruned: false,
        created_by,
    }
}

/// A QUEUED job applying `plan`.
pub(super) fn new_job(kind: JobKind, plan: &Plan, proceed: bool, created_by: String) -> Job {
    let c = plan.counts;
    let params =
        JobParams { proceed_with_missing_dependencies: proceed, display_name: plan.recipient_display_name.clone(), ..JobParams::default() };
    let mut job = queued(kind, plan.source.to_string(), plan.recipient.to_string(), params, created_by);
    job.plan = Some(plan.id.clone());
    job.progress.total = c.creates + c.links + if plan.strategy == Strategy::TakeSource { c.conflicts } else { 0 };
    job.result = initial_result(plan, proceed);
    job
}

/// What a job reports before its first chunk: the plan's skips, the conflicts the
/// recipient keeps, and the dangling references it was told to apply anyway.
pub(crate) fn initial_result(plan: &Plan, proceed: bool) -> JobResult {
    JobResult {
        skipped: plan.counts.skips,
        conflicts_kept: if plan.strategy == Strategy::TakeSource { 0 } else { plan.counts.conflicts },
        missing_dependencies: if proceed { plan.counts.missing_dependencies } else { 0 },
        ..JobResult::default()
    }
}

fn cancelled(plan: &Plan) -> Error {
    Error::precondition(
        format!("{} is cancelled; plan again", plan.id),
        vec![Precondition::new("PLAN_CANCELLED", plan.id.to_string(), "a cancelled plan cannot be applied")],
    )
}

fn expired(plan: &Plan) -> Error {
    let when = ferry_kit::db::rfc3339(plan.expire_at);
    Error::precondition(
        format!("{} expired at {when}; plan again", plan.id),
        vec![Precondition::new(
            "PLAN_EXPIRED",
            plan.id.to_string(),
            format!("expired at {when} (the engine keeps plans --plan-retention-hours); an expired plan cannot be applied"),
        )],
    )
}

pub(crate) fn cancelled_error() -> JobError {
    JobError { code: tonic::Code::Cancelled as i32, message: "cancelled by CancelJob".into(), violations: vec![] }
}

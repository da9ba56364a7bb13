//! Revert of an applied merge (the request, and the job that carries it out): removes the
//! duplicated entities it created, unlinks the shared ones it linked and puts back the
//! content of those it overwrote (the registry keeps what an overwrite replaced), by the
//! effects its chunks recorded. Entities changed since the apply are found by
//! merge-joining those effects (in (kind, key) order) with the recipient's key manifest,
//! and refuse the revert unless the caller proceeds.

use std::cmp::Ordering;

use ferry_kit::db::now_micros;
use ferry_kit::status::Precondition;

use super::Engine;
use super::jobs::cancelled_error;
use super::worker::Ended;
use crate::domain::rules::Action;
use crate::domain::rules::undo;
use crate::domain::{GroupName, Job, JobId, JobKind, JobParams, JobResult, RequestKey, Selection};
use crate::domain::{JobError, JobState};
use crate::error::{Error, Result};
use crate::registry::{MAX_BATCH, OpOutcome};
use crate::store;
use crate::store::jobs::{Effect, JobRow};

/// Effect actions a revert undoes: copy, link, overwrite.
const UNDOABLE: [i64; 3] = [1, 2, 3];
/// The phase of a revert job while it runs.
const REVERTING: &str = "reverting";
const MAX_LISTED: usize = 1000;
const PAGE: u64 = 5000;

fn refuse(kind: &str, subject: String, message: String, description: &str) -> Error {
    Error::precondition(message, vec![Precondition::new(kind, subject, description)])
}

impl Engine {
    /// Starts a REVERT_MERGE job, by `created_by`, for an ended APPLY_MERGE job.
    pub async fn revert_merge(&self, key: Option<RequestKey>, target: JobId, proceed: bool, created_by: String) -> Result<Job> {
        if let Some(job) = self.replayed::<JobId>(&key, "RevertMerge").await? {
            return self.get_job(&job).await;
        }
        let applied = self.get_job(&target).await?;
        if applied.kind != JobKind::ApplyMerge {
            return Err(refuse(
                "NOT_APPLY_MERGE",
                target.to_string(),
                format!("{target} is not an APPLY_MERGE job"),
                "only a group merge can be reverted",
            ));
        }
        if !applied.state.is_terminal() {
            return Err(refuse(
                "JOB_NOT_ENDED",
                target.to_string(),
                format!("{target} is still queued or running"),
                "wait for it to end, or cancel it",
            ));
        }
        if let Some(other) = store::jobs::live_reverts(&self.db, &target).await?.into_iter().next() {
            return Err(refuse(
                "ALREADY_REVERTED",
                other.to_string(),
                format!("{target} is already reverted by {other}"),
                "this job reverts it",
            ));
        }
        if let Some(expiry) = applied.expire_at.filter(|t| applied.effects_pruned || *t <= now_micros()) {
            let when = ferry_kit::db::rfc3339(expiry);
            return Err(refuse(
                "JOB_EXPIRED",
                target.to_string(),
                format!("{target} can no longer be reverted: what it did was kept until {when}"),
                "the engine keeps a job's effects --job-retention-hours after it ends",
            ));
        }
        let undoable = store::jobs::count_effects(&self.db, &target, &UNDOABLE).await?;
        if undoable == 0 {
            return Err(refuse(
                "NOTHING_APPLIED",
                target.to_string(),
                format!("{target} created, linked or overwrote nothing; there is nothing to revert"),
                "nothing to revert",
            ));
        }
        let recipient = GroupName::parse(&applied.recipient).map_err(|e| Error::Internal(format!("stored recipient: {e}")))?;
        let (changed, n) = self.changed_since(&target, &recipient).await?;
        if n > 0 && !proceed {
            return Err(Error::precondition(
                format!(
                    "{n} entities created, linked or overwritten by {target} changed since; set proceed_with_changed to remove \
                     the created and linked ones too (overwritten ones changed since are left as they are)"
                ),
                changed
                    .iter()
                    .map(|e| {
                        Precondition::new(
                            "CHANGED_SINCE_APPLY",
                            recipient.entity(e.entity_id),
                            format!("{}:{} changed since the merge applied it", e.kind.label(), e.key),
                        )
                    })
                    .collect(),
            ));
        }
        let mut job =
            super::jobs::queued(JobKind::RevertMerge, recipient.to_string(), recipient.to_string(), JobParams::default(), created_by);
        job.progress.total = undoable;
        job.result = JobResult::default();
        job.reverted_job = Some(target.clone());
        let chunk = self.settings.chunk_size;
        let id = self
            .write(key, "RevertMerge", move |txn| {
                Box::pin(async move {
                    if let Some(other) = store::jobs::live_reverts(txn, &target).await?.into_iter().next() {
                        return Err(refuse(
                            "ALREADY_REVERTED",
                            other.to_string(),
                            format!("{target} is already reverted by {other}"),
                            "this job reverts it",
                        ));
                    }
                    store::jobs::insert(txn, &job, chunk).await?;
                    Ok(job.id.clone())
                })
            })
            .await?;
        self.wake.notify_waiters();
        self.get_job(&id).await
    }

    /// Created, linked or overwritten entities of `job` whose content hash moved since (at most
    /// [`MAX_LISTED`] of them, and how many there are).
    async fn changed_since(&self, job: &JobId, recipient: &GroupName) -> Result<(Vec<Effect>, i64)> {
        let mut manifest = self.registry.manifest(recipient, &Selection::default()).await?;
        let mut changed = Vec::new();
        let mut n = 0;
        let mut after = -1;
        loop {
            let page = store::jobs::effects(&self.db, job, &UNDOABLE, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in page {
                let target = (e.kind.number(), e.key.as_bytes());
                loop {
                    let order = match manifest.peek().await? {
                        Some(m) => (m.kind.number(), m.key.as_bytes()).cmp(&target),
                        None => break,
                    };
                    if order != Ordering::Less {
                        break;
                    }
                    manifest.next().await?;
                }
                if let Some(m) = manifest.peek().await?
                    && m.kind == e.kind
                    && m.key == e.key
                    && m.entity_id == e.entity_id
                    && m.content_hash != e.content_hash
                {
                    n += 1;
                    if changed.len() < MAX_LISTED {
                        changed.push(e);
                    }
                }
            }
        }
        Ok((changed, n))
    }
}

impl Engine {
    /// Undoes an applied merge's copies, links and overwrites, chunk by chunk like an apply.
    pub(super) async fn run_revert(&self, mut row: JobRow) -> Result<Ended> {
        let target = row.job.reverted_job.clone().ok_or_else(|| Error::Internal("revert job without its target".into()))?;
        let recipient = GroupName::parse(&row.job.recipient).map_err(|e| Error::Internal(format!("stored recipient: {e}")))?;
        if row.job.progress.phase != REVERTING {
            row.job.progress.phase = REVERTING.into();
            if self.checkpoint(&self.db, &row, None).await?.is_none() {
                return Ok(Ended::LostLease);
            }
        }
        let chunk = row.chunk_size.clamp(1, MAX_BATCH as i64) as u64;
        loop {
            let effects = store::jobs::effects(&self.db, &target, &UNDOABLE, row.cursor_seq, chunk).await?;
            let Some(last) = effects.last() else { break };
            let last_seq = last.seq;
            let actions: Vec<Action> = effects.iter().filter_map(|e| undo(e.action, e.entity_id, &e.content_hash)).collect();
            if actions.len() != effects.len() {
                return Err(Error::Internal("a recorded effect has no undo".into()));
            }
            let request_id = format!("{}:{}", row.job.id.0, row.chunk_no);
            let results = self.registry.apply(&recipient, &actions, &request_id).await?;
            for (act, (outcome, _)) in actions.iter().zip(&results) {
                match (outcome, act) {
                    (OpOutcome::Applied, Action::Remove(_)) => row.job.result.removed += 1,
                    (OpOutcome::Applied, Action::Restore { .. }) => row.job.result.overwritten += 1,
                    (OpOutcome::Applied, _) => row.job.result.unlinked += 1,
                    (OpOutcome::AlreadyPresent, _) => row.job.result.skipped += 1,
                    (OpOutcome::Conflict, _) => row.job.result.not_reverted += 1,
                }
            }
            row.cursor_seq = last_seq;
            row.chunk_no += 1;
            row.job.progress.done += effects.len() as i64;
            let Some(cancel) = self.checkpoint(&self.db, &row, None).await? else { return Ok(Ended::LostLease) };
            super::metrics::items_applied(row.job.kind, effects.len());
            if cancel {
                self.end(&row.job.id, JobState::Cancelled, Some(cancelled_error())).await?;
                return Ok(Ended::Done);
            }
        }
        if store::retention::Owner::Jobs.is_pruned(&self.db, &target.0).await? {
            // The retention closed as the revert started: what is left cannot be read.
            let message = format!("the effects of {target} were pruned while reverting it; what was reverted stays reverted");
            let error = JobError { code: tonic::Code::FailedPrecondition as i32, message, violations: vec![] };
            self.end(&row.job.id, JobState::Failed, Some(error)).await?;
            return Ok(Ended::Done);
        }
        self.end(&row.job.id, JobState::Succeeded, None).await?;
        Ok(Ended::Done)
    }
}

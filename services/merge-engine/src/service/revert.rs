//! Revert of an applied merge: removes the duplicated entities it created and unlinks the
//! shared ones it linked, by the effects its chunks recorded. Entities changed since the
//! apply are found by merge-joining those effects (in (kind, key) order) with the
//! recipient's key manifest, and refuse the revert unless the caller proceeds.

use std::cmp::Ordering;

use ferry_kit::db::now_micros;
use ferry_kit::status::Precondition;

use super::Engine;
use crate::domain::{GroupName, Job, JobId, JobKind, JobParams, JobResult, RequestKey, Selection};
use crate::error::{Error, Result};
use crate::store;
use crate::store::jobs::Effect;

/// Effect actions a revert undoes (copy, link) and the one it leaves (overwrite).
pub(crate) const UNDOABLE: [i64; 2] = [1, 2];
const OVERWRITE: [i64; 1] = [3];
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
        let overwrites = store::jobs::count_effects(&self.db, &target, &OVERWRITE).await?;
        if undoable == 0 {
            return Err(refuse(
                "NOTHING_APPLIED",
                target.to_string(),
                format!("{target} created or linked nothing; there is nothing to revert"),
                "nothing to revert",
            ));
        }
        let recipient = GroupName::parse(&applied.recipient).map_err(|e| Error::Internal(format!("stored recipient: {e}")))?;
        let (changed, n) = self.changed_since(&target, &recipient).await?;
        if n > 0 && !proceed {
            return Err(Error::precondition(
                format!("{n} entities created or linked by {target} changed since; set proceed_with_changed to remove them too"),
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
        job.result = JobResult { not_reverted: overwrites, ..JobResult::default() };
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

    /// Created or linked entities of `job` whose content hash moved since (at most
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

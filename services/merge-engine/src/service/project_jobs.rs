//! The worker side of project jobs: CLONE_PROJECT (create the project, copy the items)
//! and MERGE_PROJECT (child APPLY_MERGE jobs for the group merges, then the delivery).
//! Items go a page at a time, one upsert per page with request id `<job>:<prefix><page>`,
//! so a resumed job replays what it already delivered.

use std::time::Duration;

use ferry_kit::db::now_micros;

use super::Engine;
use super::jobs::{cancelled_error, new_job};
use super::plans::PlanRequest;
use super::worker::Ended;
use crate::domain::{JobId, JobKind, JobState, PlanId, PlanState, PlanType, ProjectName, Selection, Strategy};
use crate::error::{Error, Result};
use crate::store;
use crate::store::jobs::JobRow;

const CHILD_POLL: Duration = Duration::from_millis(100);

fn project(s: &str) -> Result<ProjectName> {
    ProjectName::parse(s).map_err(|e| Error::Internal(format!("stored project name: {e}")))
}

impl Engine {
    pub(super) async fn run_clone_project(&self, mut row: JobRow) -> Result<Ended> {
        let src = project(&row.job.source)?;
        let new = project(&row.job.recipient)?;
        let p = row.job.params.clone();
        self.registry.create_project(&new, &p.display_name, &p.groups, &format!("{}:project", row.job.id.0)).await?;
        row.job.progress.phase = "copying".into();
        if let Some(ended) = self.deliver(&mut row, &src, &new, "c").await? {
            return Ok(ended);
        }
        row.job.result.unresolved_references = self.registry.unresolved_count(&new).await?;
        if self.checkpoint(&self.db, &row, None).await?.is_none() {
            return Ok(Ended::LostLease);
        }
        self.end(&row.job.id, JobState::Succeeded, None).await?;
        Ok(Ended::Done)
    }

    pub(super) async fn run_merge_project(&self, mut row: JobRow) -> Result<Ended> {
        let src = project(&row.job.source)?;
        let rec = project(&row.job.recipient)?;
        let p = row.job.params.clone();
        if p.merge_groups_first {
            row.job.progress.phase = "merging groups".into();
            for (i, (pair, child)) in p.pairs.iter().zip(&p.child_jobs).enumerate() {
                if store::jobs::find(&self.db, child).await?.is_none() {
                    let plan = match p.plans.get(i) {
                        Some(id) => self.stored_plan(id).await?,
                        None => {
                            let id = PlanId(child.0.clone());
                            match store::plans::find(&self.db, &id).await? {
                                Some(plan) => plan,
                                None => {
                                    store::plans::delete_items(&self.db, &id).await?;
                                    let req = PlanRequest {
                                        plan_type: PlanType::GroupMerge,
                                        source: pair.source.clone(),
                                        recipient: pair.recipient.clone(),
                                        recipient_display_name: String::new(),
                                        strategy: p.strategy.unwrap_or(Strategy::KeepRecipient),
                                        selection: Selection::default(),
                                        created_by: row.job.created_by.clone(),
                                    };
                                    let plan = self.make_plan(id, &req, PlanState::Ready, None).await?;
                                    store::plans::insert(&self.db, &plan).await?;
                                    plan
                                }
                            }
                        }
                    };
                    self.check_applicable(&plan, p.proceed_with_missing_dependencies).await?;
                    let proceed = p.proceed_with_missing_dependencies;
                    let mut job = new_job(JobKind::ApplyMerge, &plan, proceed, row.job.created_by.clone());
                    job.id = child.clone();
                    job.params.parent_job = Some(row.job.id.clone());
                    let txn = ferry_kit::db::begin(&self.db).await?;
                    if !store::plans::transition(&txn, &plan.id, &[PlanState::Ready], PlanState::Applying, Some(child)).await? {
                        return Err(Error::Aborted(format!("{} is no longer ready; plan the project merge again", plan.id)));
                    }
                    store::jobs::insert(&txn, &job, self.settings.chunk_size).await?;
                    txn.commit().await?;
                }
                self.run_child(child).await?;
                row.job.progress.done = i as i64 + 1;
                if self.checkpoint(&self.db, &row, None).await?.is_none() {
                    return Ok(Ended::LostLease);
                }
            }
        }
        // Checked again before delivery: the group merges must have supplied everything.
        let src_info = self.registry.existing_project(&src).await?;
        let rec_info = self.registry.existing_project(&rec).await?;
        let d = self.delivery(&src_info.name, &rec_info.name).await?;
        let (missing, n) = self.missing_refs(&d.refs, &rec_info, &p.pairs, false).await?;
        if n > 0 {
            return Err(Self::missing_error(&rec, &missing, n));
        }
        row.job.progress.phase = "delivering".into();
        if let Some(ended) = self.deliver(&mut row, &src, &rec, "d").await? {
            return Ok(ended);
        }
        self.end(&row.job.id, JobState::Succeeded, None).await?;
        Ok(Ended::Done)
    }

    /// Runs a child job here when it is free to claim, else waits for the engine that
    /// holds it; fails when the child did not succeed.
    async fn run_child(&self, child: &JobId) -> Result<()> {
        loop {
            let c = store::jobs::find(&self.db, child).await?.ok_or_else(|| Error::not_found("job", child))?;
            if c.job.state.is_terminal() {
                if c.job.state == JobState::Succeeded {
                    return Ok(());
                }
                let error = c.job.error.unwrap_or_else(cancelled_error);
                return Err(Error::Recorded { context: child.to_string(), info: (&error).into() });
            }
            let now = now_micros();
            match store::jobs::claim_one(&self.db, child, &self.settings.owner, now, now + self.lease_micros()).await? {
                Some(claimed) => Box::pin(self.run_claimed(claimed)).await,
                None => tokio::time::sleep(CHILD_POLL).await,
            }
        }
    }

    /// Upserts `src`'s items into `dst` page by page; pages before the checkpoint were
    /// delivered before a restart. `Some` when the job stopped (cancelled, lease lost).
    async fn deliver(&self, row: &mut JobRow, src: &ProjectName, dst: &ProjectName, prefix: &str) -> Result<Option<Ended>> {
        let mut token = String::new();
        let mut page = 0i64;
        loop {
            let (items, next) = self.registry.config_items(src, token).await?;
            if page >= row.chunk_no && !items.is_empty() {
                let (created, updated, unchanged) =
                    self.registry.upsert_config_items(dst, &items, &format!("{}:{prefix}{page}", row.job.id.0)).await?;
                row.job.result.config_items_created += created;
                row.job.result.config_items_replaced += updated;
                row.job.result.config_items_unchanged += unchanged;
                row.job.progress.done += items.len() as i64;
                row.chunk_no = page + 1;
                let Some(cancel) = self.checkpoint(&self.db, row, None).await? else { return Ok(Some(Ended::LostLease)) };
                super::metrics::items_applied(row.job.kind, items.len());
                if cancel {
                    self.end(&row.job.id, JobState::Cancelled, Some(cancelled_error())).await?;
                    return Ok(Some(Ended::Done));
                }
            }
            page += 1;
            if next.is_empty() {
                return Ok(None);
            }
            token = next;
        }
    }
}

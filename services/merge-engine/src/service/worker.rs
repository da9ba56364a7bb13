//! The job worker. It claims a QUEUED job (or one whose engine died: lease expired),
//! renews its lease while it works, and applies the plan in chunks: one registry batch
//! per chunk with request id `<job>:<chunk>`, then one engine transaction that records
//! the chunk's effects and the checkpoint. A chunk re-run after a crash therefore replays
//! the registry's stored reply and never applies twice; a job resumes at its checkpoint.

use std::collections::VecDeque;
use std::time::Duration;

use ferry_kit::db::now_micros;
use tokio::task::JoinHandle;

use super::Engine;
use super::jobs::{cancelled_error, initial_result};
use crate::domain::rules::{Action, action};
use crate::domain::{Job, JobId, JobKind, JobState, Outcome, Plan, PlanId, PlanItem, PlanState, PlanType, Strategy};
use crate::error::{Error, Result};
use crate::registry::{MAX_BATCH, OpOutcome};
use crate::store;
use crate::store::jobs::{Checkpoint, Effect, JobRow};

/// How often an idle worker looks for jobs queued by other engines.
const IDLE_POLL: Duration = Duration::from_millis(250);
const APPLYING: &str = "applying";

/// The running workers of one engine.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Stops the workers where they are, as a crash would: a claimed job keeps its lease
    /// until it expires, then another engine resumes it from its checkpoint.
    pub fn abort(&self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

/// Starts `n` workers on the tokio runtime.
pub fn spawn(engine: Engine, n: usize) -> Workers {
    let handles = (0..n.max(1))
        .map(|_| {
            let e = engine.clone();
            tokio::spawn(async move { e.work().await })
        })
        .collect();
    Workers { handles }
}

/// How a claimed job's run ended for this engine.
pub(super) enum Ended {
    Done,
    /// Another engine holds the job now (our lease expired): leave it alone.
    LostLease,
}

impl Engine {
    async fn work(&self) {
        loop {
            let now = now_micros();
            match store::jobs::claim(&self.db, &self.settings.owner, now, now + self.lease_micros()).await {
                Ok(Some(row)) => self.run_claimed(row).await,
                Ok(None) => {
                    tokio::select! {
                        _ = self.woken() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a job failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    pub(super) fn lease_micros(&self) -> i64 {
        self.settings.lease.as_micros() as i64
    }

    #[tracing::instrument(skip_all, fields(job = %row.job.id))]
    pub(super) async fn run_claimed(&self, row: JobRow) {
        let id = row.job.id.clone();
        // The registry's audit log records the engine acting for whoever started the job.
        let creator = row.job.created_by.clone();
        let ended = tokio::select! {
            r = ferry_kit::client::on_behalf_of(creator, self.run_job(row)) => r,
            () = self.heartbeat(&id) => Ok(Ended::LostLease),
        };
        match ended {
            Ok(Ended::Done) => {}
            Ok(Ended::LostLease) => tracing::warn!("lost the job's lease; another engine continues it"),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "job interrupted; it resumes when its lease expires");
            }
            Err(e) => {
                if !matches!(e, Error::Aborted(_) | Error::FailedPrecondition { .. } | Error::AlreadyExists { .. } | Error::NotFound { .. })
                {
                    tracing::error!(error = %e, cause = ?e, "job failed");
                }
                if let Err(e2) = self.end(&id, JobState::Failed, Some(crate::domain::JobError::from(&e))).await {
                    tracing::warn!(error = %e2, "recording the job's failure failed; it is retried when its lease expires");
                }
            }
        }
    }

    /// Renews the lease every third of its length; returns when the lease is lost.
    async fn heartbeat(&self, id: &JobId) {
        let every = self.settings.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            match store::jobs::renew(&self.db, id, &self.settings.owner, now_micros() + self.lease_micros()).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, "renewing the lease failed"),
            }
        }
    }

    /// Ends a job this engine holds, and puts its plan back to READY unless it succeeded.
    pub(super) async fn end(&self, id: &JobId, state: JobState, error: Option<crate::domain::JobError>) -> Result<()> {
        let txn = ferry_kit::db::begin(&self.db).await?;
        let row = store::jobs::find(&txn, id).await?.ok_or_else(|| Error::not_found("job", id))?;
        let now = now_micros();
        let expiry = self.settings.retention.job_expiry(now);
        if store::jobs::finish(&txn, id, Some(&self.settings.owner), state, error.as_ref(), now, expiry).await?
            && let Some(plan) = &row.job.plan
        {
            let to = if state == JobState::Succeeded { PlanState::Applied } else { PlanState::Ready };
            store::plans::transition(&txn, plan, &[PlanState::Applying], to, None).await?;
        }
        if state == JobState::Succeeded
            && let Some(reverted) = &row.job.reverted_job
        {
            store::jobs::set_reverted_by(&txn, reverted, id).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn run_job(&self, row: JobRow) -> Result<Ended> {
        match row.job.kind {
            JobKind::ApplyMerge | JobKind::CloneGroup => self.run_apply(row).await,
            JobKind::RevertMerge => self.run_revert(row).await,
            JobKind::CloneProject => self.run_clone_project(row).await,
            JobKind::MergeProject => self.run_merge_project(row).await,
        }
    }

    /// The plan a job applies; a CLONE_GROUP job makes it first (plan id = job id).
    async fn job_plan(&self, row: &mut JobRow) -> Result<Option<Plan>> {
        let job = &row.job;
        if let Some(id) = &job.plan {
            return self.stored_plan(id).await.map(Some);
        }
        let id = PlanId(job.id.0.clone());
        if let Some(plan) = store::plans::find(&self.db, &id).await? {
            return Ok(Some(plan));
        }
        store::plans::delete_items(&self.db, &id).await?;
        let req = Self::clone_request(job)?;
        let plan = self.make_plan(id, &req, PlanState::Applying, Some(job.id.clone())).await?;
        let proceed = job.params.proceed_with_missing_dependencies;
        row.job.result = initial_result(&plan, proceed);
        row.job.progress.total = plan.counts.creates + plan.counts.links;
        row.job.progress.phase = "planned".into();
        let txn = ferry_kit::db::begin(&self.db).await?;
        store::plans::insert(&txn, &plan).await?;
        if self.checkpoint(&txn, row, Some(&plan.id)).await?.is_none() {
            return Ok(None);
        }
        txn.commit().await?;
        row.job.plan = Some(plan.id.clone());
        Ok(Some(plan))
    }

    /// Records `row`'s progress; `None` when the lease was lost.
    pub(super) async fn checkpoint<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        row: &JobRow,
        plan: Option<&PlanId>,
    ) -> Result<Option<bool>> {
        let now = now_micros();
        let c = Checkpoint {
            cursor_seq: row.cursor_seq,
            chunk_no: row.chunk_no,
            progress: &row.job.progress,
            result: &row.job.result,
            plan,
            produced: &row.job.produced,
        };
        Ok(store::jobs::checkpoint(db, &row.job.id, &self.settings.owner, &c, now, now + self.lease_micros()).await?)
    }

    async fn run_apply(&self, mut row: JobRow) -> Result<Ended> {
        let Some(plan) = self.job_plan(&mut row).await? else { return Ok(Ended::LostLease) };
        if row.job.progress.phase != APPLYING {
            // First start: the plan must still be current (checked at the call too).
            self.check_applicable(&plan, row.job.params.proceed_with_missing_dependencies).await?;
            row.job.progress.phase = APPLYING.into();
            if plan.plan_type == PlanType::GroupClone {
                row.job.produced = vec![plan.recipient.to_string()];
            }
            match self.checkpoint(&self.db, &row, None).await? {
                None => return Ok(Ended::LostLease),
                Some(true) => {
                    self.end(&row.job.id, JobState::Cancelled, Some(cancelled_error())).await?;
                    return Ok(Ended::Done);
                }
                Some(false) => {}
            }
        }
        if plan.plan_type == PlanType::GroupClone {
            // Idempotent through the request id: a resumed clone gets the first reply.
            self.registry.create_group(&plan.recipient, &plan.recipient_display_name, &format!("{}:group", row.job.id.0)).await?;
        }
        let mut outcomes = vec![Outcome::Create, Outcome::Link];
        if plan.strategy == Strategy::TakeSource {
            outcomes.push(Outcome::Conflict);
        }
        let mut chunks = Chunks {
            engine: self,
            plan: &plan,
            job: row.job.id.0.clone(),
            outcomes,
            size: row.chunk_size.clamp(1, MAX_BATCH as i64) as u64,
            next: Vec::new(),
            number: row.chunk_no,
            in_flight: VecDeque::new(),
        };
        // A pipeline: IN_FLIGHT chunks are at the registry at once (its batches of copies
        // and links into one recipient overlap) while the engine records the chunk before
        // them and reads the next. Chunks are recorded in order. Their numbers, and so
        // request ids, follow from the plan alone, so after a crash the chunks past the
        // checkpoint are sent again and the registry replays its replies.
        chunks.next = chunks.read(row.cursor_seq).await?;
        chunks.fill().await?;
        while let Some(out) = chunks.in_flight.pop_front() {
            let sent = out.finish().await?;
            chunks.fill().await?;
            match self.record(&mut row, sent).await? {
                Flow::Go => {}
                // The new holder sends these chunks again and gets the registry's replies.
                Flow::LostLease => return Ok(Ended::LostLease),
                Flow::Cancel => {
                    // Cancelled while chunks were out: record them (a revert must know what
                    // they did), then stop.
                    while let Some(out) = chunks.in_flight.pop_front() {
                        if self.record(&mut row, out.finish().await?).await? == Flow::LostLease {
                            return Ok(Ended::LostLease);
                        }
                    }
                    self.end(&row.job.id, JobState::Cancelled, Some(cancelled_error())).await?;
                    return Ok(Ended::Done);
                }
            }
        }
        if row.job.progress.done >= ferry_kit::db::ANALYZE_AFTER_ROWS {
            // A revert pages through these effects.
            ferry_kit::db::analyze(&self.db, "job_effects").await?;
        }
        self.end(&row.job.id, JobState::Succeeded, None).await?;
        Ok(Ended::Done)
    }

    /// Records an applied chunk: its results in the job's counters, its effects, and the
    /// checkpoint past it, in one transaction.
    async fn record(&self, row: &mut JobRow, a: Applied) -> Result<Flow> {
        let effects = tally(&mut row.job, &a.items, &a.actions, &a.results);
        row.cursor_seq = a.items.last().map_or(row.cursor_seq, |i| i.seq);
        row.chunk_no += 1;
        row.job.progress.done += a.items.len() as i64;
        let txn = ferry_kit::db::begin(&self.db).await?;
        store::jobs::insert_effects(&txn, &row.job.id, &effects).await?;
        let Some(cancel) = self.checkpoint(&txn, row, None).await? else { return Ok(Flow::LostLease) };
        txn.commit().await?;
        super::metrics::items_applied(row.job.kind, a.items.len());
        Ok(if cancel { Flow::Cancel } else { Flow::Go })
    }
}

/// A chunk the registry applied, not yet recorded.
struct Applied {
    items: Vec<PlanItem>,
    actions: Vec<Action>,
    results: Vec<(OpOutcome, i64)>,
}

/// Chunks at the registry at once during an apply.
const IN_FLIGHT: usize = 2;

/// An apply's chunks: the next one read, and those sent and not yet recorded.
struct Chunks<'a> {
    engine: &'a Engine,
    plan: &'a Plan,
    job: String,
    outcomes: Vec<Outcome>,
    size: u64,
    next: Vec<PlanItem>,
    /// The number of the next chunk sent.
    number: i64,
    in_flight: VecDeque<InFlight>,
}

impl Chunks<'_> {
    async fn read(&self, after_seq: i64) -> Result<Vec<PlanItem>> {
        Ok(store::plans::items(&self.engine.db, &self.plan.id, &self.outcomes, &[], after_seq, self.size).await?)
    }

    /// Sends chunks until IN_FLIGHT are out or the plan is done, reading each one's successor.
    async fn fill(&mut self) -> Result<()> {
        while self.in_flight.len() < IN_FLIGHT
            && let Some(last_seq) = self.next.last().map(|i| i.seq)
        {
            let items = std::mem::take(&mut self.next);
            let actions: Vec<Action> =
                items.iter().filter_map(|i| action(i.outcome, self.plan.strategy, i.source_entity_id, i.recipient_entity_id)).collect();
            if actions.len() != items.len() {
                return Err(Error::Internal("a plan item has no action".into()));
            }
            let (registry, recipient, sent) = (self.engine.registry.clone(), self.plan.recipient.clone(), actions.clone());
            let request_id = format!("{}:{}", self.job, self.number);
            // Spawned, so the call goes out now rather than when the pipeline next waits;
            // still on behalf of the job's creator.
            let creator = ferry_kit::client::ON_BEHALF_OF.try_with(Clone::clone).unwrap_or_default();
            let send = async move { registry.apply(&recipient, &sent, &request_id).await };
            let task = tokio::spawn(ferry_kit::client::on_behalf_of(creator, send));
            self.in_flight.push_back(InFlight { items, actions, task });
            self.number += 1;
            self.next = self.read(last_seq).await?;
        }
        Ok(())
    }
}

/// A chunk sent to the registry.
struct InFlight {
    items: Vec<PlanItem>,
    actions: Vec<Action>,
    task: JoinHandle<Result<Vec<(OpOutcome, i64)>>>,
}

impl InFlight {
    async fn finish(self) -> Result<Applied> {
        let results = self.task.await.map_err(|e| Error::Internal(format!("sending a merge batch failed: {e}")))??;
        Ok(Applied { items: self.items, actions: self.actions, results })
    }
}

/// What recording a chunk says about going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Cancel,
    LostLease,
}

/// Adds a chunk's registry results to the job's counters; returns what it created,
/// linked and overwrote (what a revert undoes).
fn tally(job: &mut Job, items: &[PlanItem], actions: &[Action], results: &[(OpOutcome, i64)]) -> Vec<Effect> {
    let mut effects = Vec::new();
    for ((item, act), (outcome, entity_id)) in items.iter().zip(actions).zip(results) {
        match outcome {
            OpOutcome::Applied => {
                let code = match act {
                    Action::Copy(_) => {
                        job.result.created += 1;
                        1
                    }
                    Action::Link(_) => {
                        job.result.linked += 1;
                        2
                    }
                    Action::Overwrite { .. } => {
                        job.result.overwritten += 1;
                        3
                    }
                    Action::Remove(_) | Action::Unlink(_) | Action::Restore { .. } => continue,
                };
                effects.push(Effect {
                    seq: item.seq,
                    action: code,
                    kind: item.kind,
                    key: item.key.clone(),
                    entity_id: *entity_id,
                    content_hash: item.source_hash.clone(),
                });
            }
            OpOutcome::AlreadyPresent => job.result.skipped += 1,
            OpOutcome::Conflict => job.result.conflicts_kept += 1,
        }
    }
    effects
}

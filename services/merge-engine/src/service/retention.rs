//! Retention: a plan's items are kept for `--plan-retention-hours` from its creation and
//! an ended job's effects (what a revert needs) for `--job-retention-hours` from its end;
//! then they are pruned in the background, in bounded batches (one short statement each,
//! never one huge delete). Plans and jobs themselves stay, with their counts, marked
//! `items_pruned` / `effects_pruned`.
//!
//! Pruning never races the work that needs the rows: a plan is marked first, by one
//! conditional update that an APPLYING plan fails (and an apply finds the plan EXPIRED),
//! and a job's effects are not pruned while a revert of it is queued or running.

use std::time::{Duration, Instant};

use ferry_kit::db::now_micros;
use ferry_kit::prune::prune_all_children;
use sea_orm::{DatabaseConnection, DbErr};

use crate::store::retention::Owner;

/// How long plans' items and ended jobs' effects are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub plans: Duration,
    pub jobs: Duration,
}

fn micros(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

impl Retention {
    /// When the items of a plan made at `created` expire.
    pub fn plan_expiry(&self, created: i64) -> i64 {
        created.saturating_add(micros(self.plans))
    }

    /// When the effects of a job that ended at `ended` expire.
    pub fn job_expiry(&self, ended: i64) -> i64 {
        ended.saturating_add(micros(self.jobs))
    }
}

/// What one pass pruned.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub plans: u64,
    pub items: u64,
    pub jobs: u64,
    pub effects: u64,
}

/// Plans or jobs one query picks at a time.
const PICK: u64 = 100;

/// Prunes the items of every plan and the effects of every ended job due at `now`,
/// `batch` rows a statement.
pub async fn prune(db: &DatabaseConnection, now: i64, batch: u64) -> Result<Pruned, DbErr> {
    let (plans, items) = prune_owners(db, Owner::Plans, now, batch).await?;
    let (jobs, effects) = prune_owners(db, Owner::Jobs, now, batch).await?;
    Ok(Pruned { plans, items, jobs, effects })
}

/// Prunes every `owner` due at `now`: how many owners, and how many rows they held.
async fn prune_owners(db: &DatabaseConnection, owner: Owner, now: i64, batch: u64) -> Result<(u64, u64), DbErr> {
    let (mut owners, mut rows) = (0, 0);
    loop {
        let mut progressed = false;
        for id in owner.due_ids(db, now, PICK).await? {
            // Not marked: no longer due (a plan applied, a revert started meanwhile).
            if owner.mark_pruning(db, &id, now).await? {
                rows += prune_all_children(db, owner.children(), id.clone().into(), batch).await?;
                owner.mark_pruned(db, &id).await?;
                owners += 1;
                progressed = true;
            }
        }
        if !progressed {
            return Ok((owners, rows));
        }
    }
}

/// Prunes what is due now and then every `interval`, for as long as the server serves;
/// logs each pass that pruned something, with its rate.
pub async fn pruner(db: DatabaseConnection, interval: Duration) {
    ferry_kit::prune::every(interval, "plan items and job effects", || async {
        let started = Instant::now();
        let p = prune(&db, now_micros(), ferry_kit::prune::BATCH).await?;
        if p != Pruned::default() {
            let secs = started.elapsed().as_secs_f64();
            let rows = p.items + p.effects;
            tracing::info!(
                plans = p.plans,
                items = p.items,
                jobs = p.jobs,
                effects = p.effects,
                secs,
                rows_per_sec = (rows as f64 / secs.max(1e-6)) as u64,
                "plan items and job effects pruned"
            );
        }
        Ok::<_, DbErr>(())
    })
    .await
}

//! What retention prunes (`service::retention`): a plan's items and an ended job's
//! effects, each under its owner row, which is marked first (so a pruner stopped midway
//! goes on, and the work that needs the rows sees them gone) and kept.

use ferry_kit::prune::Children;
use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{all, col, exec, one};
use crate::domain::{JobState, PlanState};

/// The owner's mark (`items_pruned`, `effects_pruned`): the rows are kept, being
/// deleted (`1` in the conditions below), or gone.
pub const KEPT: i64 = 0;
pub const PRUNED: i64 = 2;

/// Rows that own what expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A plan's items, due past its expiry unless it is APPLYING. Marking a READY plan
    /// makes it EXPIRED in the same update, so an apply racing the pruner either moved
    /// the plan to APPLYING first (then it is not marked) or finds it EXPIRED.
    Plans,
    /// An ended job's effects, due past its expiry unless a revert of it is queued or
    /// running.
    Jobs,
}

impl Owner {
    pub fn children(self) -> Children {
        match self {
            Owner::Plans => Children { table: "plan_items", parent: "plan_id", order: "seq" },
            Owner::Jobs => Children { table: "job_effects", parent: "job_id", order: "seq" },
        }
    }

    fn table(self) -> &'static str {
        match self {
            Owner::Plans => "merge_plans",
            Owner::Jobs => "jobs",
        }
    }

    fn mark(self) -> &'static str {
        match self {
            Owner::Plans => "items_pruned",
            Owner::Jobs => "effects_pruned",
        }
    }

    /// The condition of an owner due at `now` (or being pruned), and its values.
    fn due(self, now: i64) -> (&'static str, Vec<Value>) {
        let n = |s: i64| Value::from(s);
        match self {
            Owner::Plans => (
                "((items_pruned = 0 AND expire_at <= ? AND state <> ?) OR items_pruned = 1)",
                vec![now.into(), n(PlanState::Applying.number().into())],
            ),
            Owner::Jobs => (
                "((effects_pruned = 0 AND expire_at <= ? AND NOT EXISTS \
                 (SELECT 1 FROM jobs r WHERE r.reverted_job = jobs.id AND r.state IN (?, ?))) OR effects_pruned = 1)",
                vec![now.into(), n(JobState::Queued.number().into()), n(JobState::Running.number().into())],
            ),
        }
    }

    /// Owners due for pruning at `now`, oldest expiry first, at most `limit`.
    pub async fn due_ids<C: ConnectionTrait>(self, db: &C, now: i64, limit: u64) -> Result<Vec<String>, DbErr> {
        let (due, mut values) = self.due(now);
        values.push((limit as i64).into());
        let sql = format!("SELECT id FROM {} WHERE {due} ORDER BY expire_at, id LIMIT ?", self.table());
        all(db, &sql, values).await?.iter().map(|r| col::<String>(r, 0)).collect()
    }

    /// Marks a due owner as being pruned before its rows are deleted; false: no longer due.
    pub async fn mark_pruning<C: ConnectionTrait>(self, db: &C, id: &str, now: i64) -> Result<bool, DbErr> {
        let (due, due_values) = self.due(now);
        let (set, mut values): (&str, Vec<Value>) = match self {
            Owner::Plans => (
                "items_pruned = 1, state = CASE WHEN state = ? THEN ? ELSE state END",
                vec![i64::from(PlanState::Ready.number()).into(), i64::from(PlanState::Expired.number()).into()],
            ),
            Owner::Jobs => ("effects_pruned = 1", Vec::new()),
        };
        values.push(id.into());
        values.extend(due_values);
        Ok(exec(db, &format!("UPDATE {} SET {set} WHERE id = ? AND {due}", self.table()), values).await? > 0)
    }

    /// Marks an owner's rows gone.
    pub async fn mark_pruned<C: ConnectionTrait>(self, db: &C, id: &str) -> Result<(), DbErr> {
        let sql = format!("UPDATE {} SET {} = ? WHERE id = ?", self.table(), self.mark());
        exec(db, &sql, vec![PRUNED.into(), id.into()]).await?;
        Ok(())
    }

    /// Whether an owner's rows were (or are being) pruned; true for an owner not there.
    pub async fn is_pruned<C: ConnectionTrait>(self, db: &C, id: &str) -> Result<bool, DbErr> {
        let sql = format!("SELECT {} FROM {} WHERE id = ?", self.mark(), self.table());
        Ok(match one(db, &sql, vec![id.into()]).await? {
            Some(r) => col::<i64>(&r, 0)? != KEPT,
            None => true,
        })
    }
}

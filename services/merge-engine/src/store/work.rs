//! The work waiting for the engines: jobs queued and running, and their items left, per
//! kind of job. Counted in one statement over the claim index, for the pending-work
//! metric an autoscaler follows.

use sea_orm::{ConnectionTrait, DbErr};

use super::{all, col, enum_col};
use crate::domain::{JobKind, JobState};

/// Jobs of one kind in one state, and the items they have left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub kind: JobKind,
    pub state: JobState,
    pub jobs: i64,
    pub items: i64,
}

/// Every (kind, state) with jobs QUEUED or RUNNING. A queued clone has no items counted
/// until it has planned.
pub async fn pending<C: ConnectionTrait>(db: &C) -> Result<Vec<Pending>, DbErr> {
    let (queued, running) = (i64::from(JobState::Queued.number()), i64::from(JobState::Running.number()));
    let rows = all(
        db,
        "SELECT kind, state, COUNT(*), CAST(COALESCE(SUM(CASE WHEN total > done THEN total - done ELSE 0 END), 0) AS BIGINT) \
         FROM jobs WHERE state IN (?, ?) GROUP BY kind, state",
        vec![queued.into(), running.into()],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Pending {
                kind: enum_col(r, 0, "job kind", JobKind::from_number)?,
                state: enum_col(r, 1, "job state", JobState::from_number)?,
                jobs: col(r, 2)?,
                items: col(r, 3)?,
            })
        })
        .collect()
}

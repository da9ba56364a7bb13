//! Sync jobs.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, col, corrupt, exec, one, opt_text};
use crate::domain::{EnvName, IntegrationName, JobName, JobState, SyncJob};

const COLS: &str = "env, id, display_name, integration, schedule, state, external, paused_by, pause_reason, pause_time, created_at";

/// Turns an insert into a replace by primary key.
const UPSERT: &str = " ON CONFLICT (env, id) DO UPDATE SET \
    display_name = excluded.display_name, integration = excluded.integration, \
    schedule = excluded.schedule, state = excluded.state, external = excluded.external, \
    paused_by = excluded.paused_by, pause_reason = excluded.pause_reason, \
    pause_time = excluded.pause_time, created_at = excluded.created_at";

fn read(row: &QueryResult) -> Result<SyncJob, DbErr> {
    let env: String = col(row, 0)?;
    let id: String = col(row, 1)?;
    let state: i32 = col(row, 5)?;
    Ok(SyncJob {
        name: JobName::new(&env, &id),
        display_name: col(row, 2)?,
        integration: col(row, 3)?,
        schedule: col(row, 4)?,
        state: JobState::from_number(state).ok_or_else(|| corrupt("job state", state))?,
        external: col(row, 6)?,
        paused_by: col(row, 7)?,
        pause_reason: col(row, 8)?,
        pause_time: col(row, 9)?,
        created_at: col(row, 10)?,
    })
}

pub async fn find<C: ConnectionTrait>(db: &C, name: &JobName) -> Result<Option<SyncJob>, DbErr> {
    one(db, &format!("SELECT {COLS} FROM sync_jobs WHERE env = ? AND id = ?"), vec![name.env.id().into(), name.id.as_str().into()])
        .await?
        .map(|r| read(&r))
        .transpose()
}

/// An environment's jobs ordered by id, after `after`, optionally only in `state`.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    env: &EnvName,
    state: Option<JobState>,
    after: Option<&str>,
    limit: Option<u64>,
) -> Result<Vec<SyncJob>, DbErr> {
    let rows = all(
        db,
        &format!("SELECT {COLS} FROM sync_jobs WHERE env = ? AND id > ? AND (? = 0 OR state = ?) ORDER BY id LIMIT ?"),
        vec![
            env.id().into(),
            after.unwrap_or("").into(),
            state.map(JobState::number).unwrap_or(0).into(),
            state.map(JobState::number).unwrap_or(0).into(),
            Value::from(limit.map(|l| l as i64).unwrap_or(i64::MAX)),
        ],
    )
    .await?;
    rows.iter().map(read).collect()
}

/// The jobs tied to an integration, ordered by id.
pub async fn of_integration<C: ConnectionTrait>(db: &C, i: &IntegrationName) -> Result<Vec<SyncJob>, DbErr> {
    let rows = all(
        db,
        &format!("SELECT {COLS} FROM sync_jobs WHERE env = ? AND integration = ? ORDER BY id"),
        vec![i.env.id().into(), i.id.as_str().into()],
    )
    .await?;
    rows.iter().map(read).collect()
}

/// Inserts (`replace`: or replaces) a job by name.
async fn write<C: ConnectionTrait>(db: &C, replace: bool, j: &SyncJob) -> Result<(), DbErr> {
    exec(
        db,
        &format!("INSERT INTO sync_jobs ({COLS}) VALUES ({}){}", ferry_kit::db::placeholders(11), if replace { UPSERT } else { "" }),
        vec![
            j.name.env.id().into(),
            j.name.id.as_str().into(),
            j.display_name.as_str().into(),
            opt_text(j.integration.as_deref()),
            j.schedule.as_str().into(),
            j.state.number().into(),
            j.external.into(),
            j.paused_by.as_str().into(),
            j.pause_reason.as_str().into(),
            j.pause_time.into(),
            j.created_at.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Inserts a new row; a row with the same name fails with a unique violation.
pub async fn insert<C: ConnectionTrait>(db: &C, j: &SyncJob) -> Result<(), DbErr> {
    write(db, false, j).await
}

/// Inserts or replaces a row by name.
pub async fn save<C: ConnectionTrait>(db: &C, j: &SyncJob) -> Result<(), DbErr> {
    write(db, true, j).await
}

pub async fn delete<C: ConnectionTrait>(db: &C, name: &JobName) -> Result<u64, DbErr> {
    exec(db, "DELETE FROM sync_jobs WHERE env = ? AND id = ?", vec![name.env.id().into(), name.id.as_str().into()]).await
}

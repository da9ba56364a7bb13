//! Jobs: the queue (claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, a conditional
//! `UPDATE` on SQLite, both with a lease), checkpoints, and the effects of applied chunks.

use ferry_kit::db::{placeholders, rows_per_chunk};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};

use super::{all, col, enum_col, exec, one, tuples};
use crate::domain::{Job, JobError, JobId, JobKind, JobParams, JobResult, JobState, Kind, PlanId, Progress};

const COLUMNS: &str = "id, kind, state, plan_id, source, recipient, params, chunk_size, cursor_seq, chunk_no, done, total, phase, \
     result, error, produced, cancel_requested, lease_owner, lease_until, created_at, started_at, ended_at, updated_at, \
     reverted_job, reverted_by, expire_at, effects_pruned, created_by";

/// A job and its worker-side state.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub job: Job,
    pub chunk_size: i64,
    /// Items up to this `seq` are applied and checkpointed.
    pub cursor_seq: i64,
    /// Chunks applied so far; the next chunk's request id is `<job>:<chunk_no>`.
    pub chunk_no: i64,
}

fn json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, DbErr> {
    serde_json::from_str(s).map_err(|e| DbErr::Custom(format!("stored job data: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, DbErr> {
    serde_json::to_string(v).map_err(|e| DbErr::Custom(e.to_string()))
}

fn read(row: &QueryResult) -> Result<JobRow, DbErr> {
    let error: Option<String> = col(row, 14)?;
    Ok(JobRow {
        job: Job {
            id: JobId(col(row, 0)?),
            kind: enum_col(row, 1, "job kind", JobKind::from_number)?,
            state: enum_col(row, 2, "job state", JobState::from_number)?,
            plan: col::<Option<String>>(row, 3)?.map(PlanId),
            source: col(row, 4)?,
            recipient: col(row, 5)?,
            params: json(&col::<String>(row, 6)?)?,
            progress: Progress { done: col(row, 10)?, total: col(row, 11)?, phase: col(row, 12)? },
            result: json(&col::<String>(row, 13)?)?,
            error: error.map(|e| json::<JobError>(&e)).transpose()?,
            produced: json(&col::<String>(row, 15)?)?,
            cancel_requested: col::<i64>(row, 16)? != 0,
            created_at: col(row, 19)?,
            started_at: col(row, 20)?,
            ended_at: col(row, 21)?,
            updated_at: col(row, 22)?,
            reverted_job: col::<Option<String>>(row, 23)?.map(JobId),
            reverted_by: col::<Option<String>>(row, 24)?.map(JobId),
            expire_at: col(row, 25)?,
            effects_pruned: col::<i64>(row, 26)? != super::retention::KEPT,
            created_by: col(row, 27)?,
        },
        chunk_size: col(row, 7)?,
        cursor_seq: col(row, 8)?,
        chunk_no: col(row, 9)?,
    })
}

pub async fn insert<C: ConnectionTrait>(db: &C, job: &Job, chunk_size: i64) -> Result<(), DbErr> {
    exec(
        db,
        &format!("INSERT INTO jobs ({COLUMNS}) VALUES ({})", placeholders(28)),
        vec![
            job.id.0.clone().into(),
            i64::from(job.kind.number()).into(),
            i64::from(job.state.number()).into(),
            job.plan.as_ref().map(|p| p.0.clone()).into(),
            job.source.clone().into(),
            job.recipient.clone().into(),
            to_json::<JobParams>(&job.params)?.into(),
            chunk_size.into(),
            (-1i64).into(),
            0i64.into(),
            job.progress.done.into(),
            job.progress.total.into(),
            job.progress.phase.clone().into(),
            to_json(&job.result)?.into(),
            job.error.as_ref().map(to_json).transpose()?.into(),
            to_json(&job.produced)?.into(),
            i64::from(job.cancel_requested).into(),
            Option::<String>::None.into(),
            0i64.into(),
            job.created_at.into(),
            job.started_at.into(),
            job.ended_at.into(),
            job.updated_at.into(),
            job.reverted_job.as_ref().map(|j| j.0.clone()).into(),
            job.reverted_by.as_ref().map(|j| j.0.clone()).into(),
            job.expire_at.into(),
            super::retention::KEPT.into(),
            job.created_by.clone().into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &JobId) -> Result<Option<JobRow>, DbErr> {
    one(db, &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?"), vec![id.0.clone().into()]).await?.map(|r| read(&r)).transpose()
}

/// Jobs newest first after the cursor `(created_at, id)`.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    states: &[JobState],
    kinds: &[JobKind],
    after: Option<&(i64, String)>,
    limit: u64,
    scope: ferry_kit::db::Scope<'_>,
) -> Result<Vec<Job>, DbErr> {
    let mut sql = format!("SELECT {COLUMNS} FROM jobs WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    ferry_kit::db::and_in_scope(&mut sql, &mut values, ferry_kit::db::ScopedBy::Name("recipient"), scope);
    if !states.is_empty() {
        sql.push_str(&format!(" AND state IN ({})", placeholders(states.len())));
        values.extend(states.iter().map(|s| Value::from(i64::from(s.number()))));
    }
    if !kinds.is_empty() {
        sql.push_str(&format!(" AND kind IN ({})", placeholders(kinds.len())));
        values.extend(kinds.iter().map(|k| Value::from(i64::from(k.number()))));
    }
    if let Some((t, id)) = after {
        sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        values.extend([Value::from(*t), Value::from(*t), Value::from(id.clone())]);
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    values.push((limit as i64).into());
    all(db, &sql, values).await?.iter().map(|r| read(r).map(|j| j.job)).collect()
}

/// Claims the oldest QUEUED job, or a RUNNING one whose lease expired (its engine died),
/// for `owner` until `lease_until`. Two engines never claim the same job: PostgreSQL
/// skips rows another claimer has locked; SQLite serialises writers.
pub async fn claim<C: ConnectionTrait>(db: &C, owner: &str, now: i64, lease_until: i64) -> Result<Option<JobRow>, DbErr> {
    let lock = match db.get_database_backend() {
        DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let sql = format!(
        "UPDATE jobs SET state = ?, lease_owner = ?, lease_until = ?, started_at = COALESCE(started_at, ?), updated_at = ?, \
         claims = claims + 1 WHERE id = (SELECT id FROM jobs WHERE state = ? OR (state = ? AND lease_until < ?) ORDER BY created_at, id LIMIT 1{lock}) \
         AND (state = ? OR (state = ? AND lease_until < ?)) RETURNING id"
    );
    let running = i64::from(JobState::Running.number());
    let queued = i64::from(JobState::Queued.number());
    let row = one(
        db,
        &sql,
        vec![
            running.into(),
            owner.into(),
            lease_until.into(),
            now.into(),
            now.into(),
            queued.into(),
            running.into(),
            now.into(),
            queued.into(),
            running.into(),
            now.into(),
        ],
    )
    .await?;
    match row {
        Some(r) => find(db, &JobId(col(&r, 0)?)).await,
        None => Ok(None),
    }
}

/// Extends the lease of a job `owner` still holds; false when it lost it.
pub async fn renew<C: ConnectionTrait>(db: &C, id: &JobId, owner: &str, lease_until: i64) -> Result<bool, DbErr> {
    Ok(exec(
        db,
        "UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ? AND state = ?",
        vec![lease_until.into(), id.0.clone().into(), owner.into(), i64::from(JobState::Running.number()).into()],
    )
    .await?
        > 0)
}

/// What a checkpoint records.
#[derive(Debug, Clone)]
pub struct Checkpoint<'a> {
    pub cursor_seq: i64,
    pub chunk_no: i64,
    pub progress: &'a Progress,
    pub result: &'a JobResult,
    pub plan: Option<&'a PlanId>,
    pub produced: &'a [String],
}

/// Records progress of a job `owner` holds and extends its lease. Returns
/// `Some(cancel_requested)`, or `None` when the lease was lost (write nothing then).
pub async fn checkpoint<C: ConnectionTrait>(
    db: &C,
    id: &JobId,
    owner: &str,
    c: &Checkpoint<'_>,
    now: i64,
    lease_until: i64,
) -> Result<Option<bool>, DbErr> {
    let row = one(
        db,
        "UPDATE jobs SET cursor_seq = ?, chunk_no = ?, done = ?, total = ?, phase = ?, result = ?, plan_id = COALESCE(?, plan_id), \
         produced = ?, updated_at = ?, lease_until = ? WHERE id = ? AND lease_owner = ? AND state = ? RETURNING cancel_requested",
        vec![
            c.cursor_seq.into(),
            c.chunk_no.into(),
            c.progress.done.into(),
            c.progress.total.into(),
            c.progress.phase.clone().into(),
            to_json(c.result)?.into(),
            c.plan.map(|p| p.0.clone()).into(),
            to_json(&c.produced)?.into(),
            now.into(),
            lease_until.into(),
            id.0.clone().into(),
            owner.into(),
            i64::from(JobState::Running.number()).into(),
        ],
    )
    .await?;
    row.map(|r| col::<i64>(&r, 0).map(|n| n != 0)).transpose()
}

/// Ends a job (SUCCEEDED, FAILED or CANCELLED). With an owner, only if it still holds the
/// lease; without, only if the job is QUEUED (a cancel before any engine claimed it).
pub async fn finish<C: ConnectionTrait>(
    db: &C,
    id: &JobId,
    owner: Option<&str>,
    state: JobState,
    error: Option<&JobError>,
    now: i64,
    expire_at: i64,
) -> Result<bool, DbErr> {
    let mut values: Vec<Value> = vec![
        i64::from(state.number()).into(),
        error.map(to_json).transpose()?.into(),
        now.into(),
        now.into(),
        expire_at.into(),
        id.0.clone().into(),
    ];
    let guard = match owner {
        Some(o) => {
            values.push(o.into());
            values.push(i64::from(JobState::Running.number()).into());
            "lease_owner = ? AND state = ?"
        }
        None => {
            values.push(i64::from(JobState::Queued.number()).into());
            "state = ?"
        }
    };
    let sql = format!(
        "UPDATE jobs SET state = ?, error = ?, ended_at = ?, updated_at = ?, expire_at = ?, cancel_requested = 0, lease_owner = NULL \
         WHERE id = ? AND {guard}"
    );
    Ok(exec(db, &sql, values).await? > 0)
}

/// Asks a RUNNING job to stop after its current chunk.
pub async fn request_cancel<C: ConnectionTrait>(db: &C, id: &JobId, now: i64) -> Result<bool, DbErr> {
    Ok(exec(
        db,
        "UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ? AND state = ?",
        vec![now.into(), id.0.clone().into(), i64::from(JobState::Running.number()).into()],
    )
    .await?
        > 0)
}

/// An applied operation's effect, kept so a revert knows what to undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub seq: i64,
    /// 1 copy (created), 2 link, 3 overwrite.
    pub action: i64,
    pub kind: Kind,
    pub key: String,
    pub entity_id: i64,
    pub content_hash: String,
}

pub async fn insert_effects<C: ConnectionTrait>(db: &C, job: &JobId, effects: &[Effect]) -> Result<(), DbErr> {
    for chunk in effects.chunks(rows_per_chunk(7)) {
        let mut values = Vec::with_capacity(chunk.len() * 7);
        for e in chunk {
            values.extend([
                Value::from(job.0.clone()),
                e.seq.into(),
                e.action.into(),
                i64::from(e.kind.number()).into(),
                e.key.clone().into(),
                e.entity_id.into(),
                e.content_hash.clone().into(),
            ]);
        }
        exec(
            db,
            &format!(
                "INSERT INTO job_effects (job_id, seq, action, kind, key, entity_id, content_hash) VALUES {} ON CONFLICT DO NOTHING",
                tuples(chunk.len(), 7)
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

/// Effects of `job` with one of `actions`, counted.
pub async fn count_effects<C: ConnectionTrait>(db: &C, job: &JobId, actions: &[i64]) -> Result<i64, DbErr> {
    let mut values: Vec<Value> = vec![job.0.clone().into()];
    values.extend(actions.iter().map(|a| Value::from(*a)));
    let sql = format!("SELECT COUNT(*) FROM job_effects WHERE job_id = ? AND action IN ({})", placeholders(actions.len()));
    let row = one(db, &sql, values).await?;
    row.map(|r| col::<i64>(&r, 0)).transpose().map(|n| n.unwrap_or(0))
}

/// A page of `job`'s effects with one of `actions`, in `seq` ((kind, key)) order.
pub async fn effects<C: ConnectionTrait>(db: &C, job: &JobId, actions: &[i64], after_seq: i64, limit: u64) -> Result<Vec<Effect>, DbErr> {
    let mut values: Vec<Value> = vec![job.0.clone().into(), after_seq.into()];
    values.extend(actions.iter().map(|a| Value::from(*a)));
    values.push((limit as i64).into());
    let sql = format!(
        "SELECT seq, action, kind, key, entity_id, content_hash FROM job_effects WHERE job_id = ? AND seq > ? AND action IN ({}) \
         ORDER BY seq LIMIT ?",
        placeholders(actions.len())
    );
    all(db, &sql, values)
        .await?
        .iter()
        .map(|r| {
            Ok(Effect {
                seq: col(r, 0)?,
                action: col(r, 1)?,
                kind: enum_col(r, 2, "kind", Kind::from_number)?,
                key: col(r, 3)?,
                entity_id: col(r, 4)?,
                content_hash: col(r, 5)?,
            })
        })
        .collect()
}

/// Marks an APPLY_MERGE job as reverted by `by`.
pub async fn set_reverted_by<C: ConnectionTrait>(db: &C, job: &JobId, by: &JobId) -> Result<(), DbErr> {
    exec(db, "UPDATE jobs SET reverted_by = ? WHERE id = ?", vec![by.0.clone().into(), job.0.clone().into()]).await?;
    Ok(())
}

/// REVERT_MERGE jobs of `job` that are queued, running or succeeded.
pub async fn live_reverts<C: ConnectionTrait>(db: &C, job: &JobId) -> Result<Vec<JobId>, DbErr> {
    let rows = all(
        db,
        "SELECT id FROM jobs WHERE reverted_job = ? AND state IN (?, ?, ?) ORDER BY created_at",
        vec![
            job.0.clone().into(),
            i64::from(JobState::Queued.number()).into(),
            i64::from(JobState::Running.number()).into(),
            i64::from(JobState::Succeeded.number()).into(),
        ],
    )
    .await?;
    rows.iter().map(|r| col::<String>(r, 0).map(JobId)).collect()
}

/// Claims one given job if it is QUEUED or its lease expired (a parent job running its
/// child itself).
pub async fn claim_one<C: ConnectionTrait>(db: &C, id: &JobId, owner: &str, now: i64, lease_until: i64) -> Result<Option<JobRow>, DbErr> {
    let running = i64::from(JobState::Running.number());
    let queued = i64::from(JobState::Queued.number());
    let claimed = exec(
        db,
        "UPDATE jobs SET state = ?, lease_owner = ?, lease_until = ?, started_at = COALESCE(started_at, ?), updated_at = ?, \
         claims = claims + 1 WHERE id = ? AND (state = ? OR (state = ? AND lease_until < ?))",
        vec![
            running.into(),
            owner.into(),
            lease_until.into(),
            now.into(),
            now.into(),
            id.0.clone().into(),
            queued.into(),
            running.into(),
            now.into(),
        ],
    )
    .await?;
    if claimed == 0 { Ok(None) } else { find(db, id).await }
}

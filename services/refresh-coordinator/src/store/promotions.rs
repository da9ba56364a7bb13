//! Promotion runs, their leases and the target-project locks (the shapes of `runs`).

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, exec, one};
use crate::domain::{PromotionRun, RunState};

#[derive(Debug, Clone)]
pub struct Stored {
    pub run: PromotionRun,
    pub version: i64,
    pub abort_requested: bool,
    /// The W3C trace context of the call that started the run.
    pub traceparent: Option<String>,
}

fn read(row: &QueryResult) -> Result<Stored, DbErr> {
    let body: String = row.try_get_by_index(0)?;
    let run = serde_json::from_str(&body).map_err(|e| DbErr::Custom(format!("stored promotion run: {e}")))?;
    Ok(Stored { run, version: row.try_get_by_index(1)?, abort_requested: row.try_get_by_index(2)?, traceparent: row.try_get_by_index(3)? })
}

fn body(run: &PromotionRun) -> Result<String, DbErr> {
    serde_json::to_string(run).map_err(|e| DbErr::Custom(format!("promotion run: {e}")))
}

/// Inserts a new run; `traceparent` is the trace context of the call that started it.
pub async fn insert<C: ConnectionTrait>(db: &C, run: &PromotionRun, traceparent: Option<&str>) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO promotion_runs (id, created_at, source, target, state, version, lease_owner, lease_until, abort_requested, body, \
         traceparent) VALUES (?, ?, ?, ?, ?, 1, '', 0, FALSE, ?, ?)",
        vec![
            run.id.as_str().into(),
            run.create_time.into(),
            run.source.to_string().into(),
            run.target.to_string().into(),
            run.state.number().into(),
            body(run)?.into(),
            traceparent.map(str::to_owned).into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Stored>, DbErr> {
    one(db, "SELECT body, version, abort_requested, traceparent FROM promotion_runs WHERE id = ?", vec![id.into()])
        .await?
        .map(|r| read(&r))
        .transpose()
}

pub async fn save<C: ConnectionTrait>(db: &C, run: &PromotionRun, version: i64) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "UPDATE promotion_runs SET body = ?, state = ?, version = version + 1 WHERE id = ? AND version = ?",
        vec![body(run)?.into(), run.state.number().into(), run.id.as_str().into(), version.into()],
    )
    .await?;
    Ok(n == 1)
}

pub async fn list<C: ConnectionTrait>(
    db: &C,
    states: &[RunState],
    project: Option<&str>,
    after: Option<&(i64, String)>,
    limit: u64,
) -> Result<Vec<Stored>, DbErr> {
    let mut sql = "SELECT body, version, abort_requested, traceparent FROM promotion_runs WHERE 1 = 1".to_owned();
    let mut values: Vec<Value> = Vec::new();
    if !states.is_empty() {
        sql.push_str(&format!(" AND state IN ({})", ferry_kit::db::placeholders(states.len())));
        values.extend(states.iter().map(|s| Value::from(s.number())));
    }
    if let Some(p) = project {
        sql.push_str(" AND (source = ? OR target = ?)");
        values.push(p.into());
        values.push(p.into());
    }
    if let Some((t, id)) = after {
        sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        values.push((*t).into());
        values.push((*t).into());
        values.push(id.as_str().into());
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    values.push((limit as i64).into());
    all(db, &sql, values).await?.iter().map(read).collect()
}

pub async fn request_abort<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    exec(db, "UPDATE promotion_runs SET abort_requested = TRUE WHERE id = ?", vec![id.into()]).await?;
    Ok(())
}

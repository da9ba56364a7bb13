//! Leases on runs: which coordinator drives a run, until when, and when it last renewed.
//! The one place that reads and writes the lease columns of the runs table.
//!
//! A released run has `lease_until = 0`. A claim that finds a run still leased (its
//! lease ran out, or [`expire_held_by`] ended it) takes over from a coordinator that
//! stopped without giving the run back: the claim says so, with when that holder was
//! last heard from, so the run can put the interruption on record.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};

use crate::domain::RunState;
use crate::store::{exec, one};

/// A claimed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: String,
    pub kind: String,
    /// Set when the previous holder stopped without giving the run back.
    pub interrupted: Option<Interrupted>,
}

/// The holder a claim took a run over from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    pub holder: String,
    /// When it last claimed or renewed the lease (microseconds; 0 when never recorded).
    pub last_heard: i64,
}

fn claimed(row: &QueryResult) -> Result<Claim, DbErr> {
    let (id, holder, until, heard, kind): (String, String, i64, i64, String) =
        (row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index(2)?, row.try_get_by_index(3)?, row.try_get_by_index(4)?);
    Ok(Claim { id, kind, interrupted: (until != 0).then_some(Interrupted { holder, last_heard: heard }) })
}

/// Claims one runnable run whose lease has lapsed, for `owner` until `until`, oldest
/// first, skipping `skip`. PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas never claim
/// the same run; SQLite: a conditional UPDATE (SQLite serialises writers).
pub async fn claim<C: ConnectionTrait>(db: &C, owner: &str, now: i64, until: i64, skip: &[String]) -> Result<Option<Claim>, DbErr> {
    let t = "runs";
    let mut values: Vec<Value> =
        [RunState::Pending, RunState::Running, RunState::Aborting].iter().map(|s| Value::from(s.number())).collect();
    values.push(now.into());
    let mut not_in = String::new();
    if !skip.is_empty() {
        not_in = format!(" AND id NOT IN ({})", ferry_kit::db::placeholders(skip.len()));
        values.extend(skip.iter().map(|s| Value::from(s.as_str())));
    }
    let pick = format!(
        "SELECT id, lease_owner, lease_until, heartbeat_at, kind FROM {t} WHERE state IN (?, ?, ?) AND lease_until < ?{not_in} \
         ORDER BY created_at LIMIT 1"
    );
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let sql = format!(
                "WITH pick AS ({pick} FOR UPDATE SKIP LOCKED) UPDATE {t} SET lease_owner = ?, lease_until = ?, heartbeat_at = ? \
                 FROM pick WHERE {t}.id = pick.id RETURNING pick.id, pick.lease_owner, pick.lease_until, pick.heartbeat_at, pick.kind"
            );
            values.extend([Value::from(owner), until.into(), now.into()]);
            one(db, &sql, values).await?.map(|r| claimed(&r)).transpose()
        }
        _ => {
            let Some(row) = one(db, &pick, values).await? else { return Ok(None) };
            let claim = claimed(&row)?;
            let n = exec(
                db,
                &format!("UPDATE {t} SET lease_owner = ?, lease_until = ?, heartbeat_at = ? WHERE id = ? AND lease_until < ?"),
                vec![owner.into(), until.into(), now.into(), claim.id.as_str().into(), now.into()],
            )
            .await?;
            Ok((n == 1).then_some(claim))
        }
    }
}

/// Extends `owner`'s lease to `until`; false when the lease is no longer `owner`'s.
pub async fn renew<C: ConnectionTrait>(db: &C, id: &str, owner: &str, now: i64, until: i64) -> Result<bool, DbErr> {
    let sql = "UPDATE runs SET lease_until = ?, heartbeat_at = ? WHERE id = ? AND lease_owner = ?";
    Ok(exec(db, sql, vec![until.into(), now.into(), id.into(), owner.into()]).await? == 1)
}

/// Gives the run back (another driver, or this one, may claim it at once).
pub async fn release<C: ConnectionTrait>(db: &C, id: &str, owner: &str) -> Result<(), DbErr> {
    exec(db, "UPDATE runs SET lease_until = 0 WHERE id = ? AND lease_owner = ?", vec![id.into(), owner.into()]).await?;
    Ok(())
}

/// Ends every lease `holder` still holds, so they can be claimed at once: a coordinator
/// starting under a holder id that no other live coordinator uses knows these are its
/// own, left by the process before it (a crash, `kill -9`). Returns how many.
pub async fn expire_held_by<C: ConnectionTrait>(db: &C, holder: &str) -> Result<u64, DbErr> {
    exec(db, "UPDATE runs SET lease_until = 1 WHERE lease_owner = ? AND lease_until > 1", vec![holder.into()]).await
}

//! Sync leases. An outstanding lease is ACTIVE and not yet expired; revoking is one
//! UPDATE over a scope, in the transaction of the change that revokes.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, col, corrupt, exec, one, opt_text};
use crate::domain::leases::{Lease, LeaseName, LeaseState, Revoke};
use crate::domain::{EnvName, IntegrationName, JobName, MappingName, ResourceId};

/// Leases as they age: pruned a day after they expired or ended.
pub const AGED: ferry_kit::prune::Aged = ferry_kit::prune::Aged { table: "sync_leases", key: "env, id", time: "expires_at" };

/// How long an expired or ended lease is kept, for the list and the audit of who synced.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

const COLS: &str = "env, id, integration, mapping, job, holder, state, acquired_at, renewed_at, expires_at, ended_at, end_reason, renewals, acknowledged_at";

const ACTIVE: i32 = LeaseState::Active as i32;

fn read(row: &QueryResult) -> Result<Lease, DbErr> {
    let env: String = col(row, 0)?;
    let id: String = col(row, 1)?;
    let integration: String = col(row, 2)?;
    let mapping: String = col(row, 3)?;
    let job: Option<String> = col(row, 4)?;
    let state: i32 = col(row, 6)?;
    let env = EnvName::from_stored(&env);
    Ok(Lease {
        name: LeaseName { env: env.clone(), id: ResourceId::from_stored(&id) },
        mapping: MappingName {
            integration: IntegrationName { env: env.clone(), id: ResourceId::from_stored(&integration) },
            id: ResourceId::from_stored(&mapping),
        },
        job: job.map(|j| JobName::new(env.id(), &j)),
        holder: col(row, 5)?,
        state: LeaseState::from_stored(state).ok_or_else(|| corrupt("lease state", state))?,
        acquired_at: col(row, 7)?,
        renewed_at: col(row, 8)?,
        expires_at: col(row, 9)?,
        ended_at: col(row, 10)?,
        end_reason: col(row, 11)?,
        renewals: col(row, 12)?,
        acknowledged_at: col(row, 13)?,
    })
}

pub async fn insert<C: ConnectionTrait>(db: &C, l: &Lease) -> Result<(), DbErr> {
    let m = &l.mapping;
    exec(
        db,
        &format!("INSERT INTO sync_leases ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        vec![
            l.name.env.id().into(),
            l.name.id.as_str().into(),
            m.integration.id.as_str().into(),
            m.id.as_str().into(),
            opt_text(l.job.as_ref().map(|j| j.id.as_str())),
            l.holder.as_str().into(),
            (l.state as i32).into(),
            l.acquired_at.into(),
            l.renewed_at.into(),
            l.expires_at.into(),
            l.ended_at.into(),
            l.end_reason.as_str().into(),
            l.renewals.into(),
            l.acknowledged_at.into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(db: &C, name: &LeaseName) -> Result<Option<Lease>, DbErr> {
    one(db, &format!("SELECT {COLS} FROM sync_leases WHERE env = ? AND id = ?"), vec![name.env.id().into(), name.id.as_str().into()])
        .await?
        .map(|r| read(&r))
        .transpose()
}

/// Extends an outstanding lease to `expires_at`; false when it is no longer outstanding.
pub async fn renew<C: ConnectionTrait>(db: &C, name: &LeaseName, now: i64, expires_at: i64) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "UPDATE sync_leases SET renewed_at = ?, expires_at = ?, renewals = renewals + 1 \
         WHERE env = ? AND id = ? AND state = ? AND expires_at > ?",
        vec![now.into(), expires_at.into(), name.env.id().into(), name.id.as_str().into(), ACTIVE.into(), now.into()],
    )
    .await?;
    Ok(n == 1)
}

/// Ends one outstanding lease as `state` (RELEASED, REVOKED) with `reason`, its holder
/// told now (it is the caller).
pub async fn end<C: ConnectionTrait>(db: &C, name: &LeaseName, state: LeaseState, reason: &str, now: i64) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "UPDATE sync_leases SET state = ?, ended_at = ?, end_reason = ?, acknowledged_at = ? \
         WHERE env = ? AND id = ? AND state = ? AND expires_at > ?",
        vec![
            (state as i32).into(),
            now.into(),
            reason.into(),
            now.into(),
            name.env.id().into(),
            name.id.as_str().into(),
            ACTIVE.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(n == 1)
}

/// Records that the holder of the revoked lease `name` was told (a refused renewal, a
/// release): its sync has stopped.
pub async fn acknowledge<C: ConnectionTrait>(db: &C, name: &LeaseName, now: i64) -> Result<(), DbErr> {
    exec(
        db,
        "UPDATE sync_leases SET acknowledged_at = ? WHERE env = ? AND id = ? AND state = ? AND acknowledged_at IS NULL",
        vec![now.into(), name.env.id().into(), name.id.as_str().into(), (LeaseState::Revoked as i32).into()],
    )
    .await?;
    Ok(())
}

/// The scope's condition and its values.
fn scope(scope: &Revoke<'_>) -> (&'static str, Vec<Value>) {
    match scope {
        Revoke::Env(env) => ("env = ?", vec![env.id().into()]),
        Revoke::Integration(i) => ("env = ? AND integration = ?", vec![i.env.id().into(), i.id.as_str().into()]),
        Revoke::Mapping(m) => (
            "env = ? AND integration = ? AND mapping = ?",
            vec![m.env().id().into(), m.integration.id.as_str().into(), m.id.as_str().into()],
        ),
    }
}

/// Revokes every outstanding lease in `revoke` with `reason`; the names it revoked.
pub async fn revoke<C: ConnectionTrait>(db: &C, revoke: &Revoke<'_>, reason: &str, now: i64) -> Result<Vec<LeaseName>, DbErr> {
    let (cond, values) = scope(revoke);
    let outstanding = format!("{cond} AND state = ? AND expires_at > ?");
    let mut find = values.clone();
    find.extend([ACTIVE.into(), now.into()]);
    let rows = all(db, &format!("SELECT env, id FROM sync_leases WHERE {outstanding} ORDER BY id"), find.clone()).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut update = vec![(LeaseState::Revoked as i32).into(), now.into(), reason.into()];
    update.extend(find);
    exec(db, &format!("UPDATE sync_leases SET state = ?, ended_at = ?, end_reason = ? WHERE {outstanding}"), update).await?;
    rows.iter()
        .map(|r| Ok(LeaseName { env: EnvName::from_stored(&col::<String>(r, 0)?), id: ResourceId::from_stored(&col::<String>(r, 1)?) }))
        .collect()
}

/// Which of an environment's leases a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// ACTIVE and not expired.
    Outstanding,
    /// Outstanding, or revoked with the holder not yet told and the ttl not yet passed:
    /// the syncs that may still run.
    InFlight,
    /// Every lease kept.
    All,
}

/// An environment's leases in `view`, newest first after the cursor `(acquired_at, id)`.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    env: &EnvName,
    view: View,
    now: i64,
    after: Option<&(i64, String)>,
    limit: u64,
) -> Result<Vec<Lease>, DbErr> {
    let (at, id) = after.cloned().unwrap_or((i64::MAX, String::new()));
    let rows = all(
        db,
        &format!(
            "SELECT {COLS} FROM sync_leases WHERE env = ? \
             AND (? OR ((state = ? OR (? AND state = ? AND acknowledged_at IS NULL)) AND expires_at > ?)) \
             AND (acquired_at < ? OR (acquired_at = ? AND ? <> '' AND id < ?)) ORDER BY acquired_at DESC, id DESC LIMIT ?"
        ),
        vec![
            env.id().into(),
            (view == View::All).into(),
            ACTIVE.into(),
            (view == View::InFlight).into(),
            (LeaseState::Revoked as i32).into(),
            now.into(),
            at.into(),
            at.into(),
            id.as_str().into(),
            id.as_str().into(),
            Value::from(limit as i64),
        ],
    )
    .await?;
    rows.iter().map(read).collect()
}

/// How many leases are outstanding, in every environment (the metrics' gauge).
pub async fn outstanding<C: ConnectionTrait>(db: &C, now: i64) -> Result<i64, DbErr> {
    let row = one(db, "SELECT COUNT(*) FROM sync_leases WHERE state = ? AND expires_at > ?", vec![ACTIVE.into(), now.into()]).await?;
    row.map(|r| col::<i64>(&r, 0)).transpose().map(Option::unwrap_or_default)
}

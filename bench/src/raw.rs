//! The same work as the fastest set-based SQL we can write, on an identical copy of the
//! data: the yardstick for the services' overhead.

use std::time::Instant;

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};

use crate::Workload;

async fn group_id(db: &impl ConnectionTrait, name: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT g.id FROM groups g JOIN environments e ON e.id = g.environment_id WHERE e.name = 'bench' AND g.name = $1",
            [name.into()],
        ))
        .await?
        .with_context(|| format!("group {name} not found"))?;
    Ok(row.try_get_by_index(0)?)
}

/// Copies duplicated entities missing from the recipient, links shared ones, in one
/// transaction. Returns seconds.
pub async fn run(url: &str, workload: Workload) -> anyhow::Result<f64> {
    let db = Database::connect(url).await?;
    let src = group_id(&db, "source").await?;
    let t = Instant::now();
    let txn = db.begin().await?;
    let dst = match workload {
        Workload::Merge => group_id(&txn, "recipient").await?,
        Workload::Clone => {
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "INSERT INTO groups (environment_id, name, display_name, revision, created_at) \
                     SELECT environment_id, 'clone', '', 1, 0 FROM groups WHERE id = $1 RETURNING id",
                    [src.into()],
                ))
                .await?
                .context("clone group not created")?;
            row.try_get_by_index(0)?
        }
    };
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "WITH ins AS ( \
           INSERT INTO entities (environment_id, kind, key, sharing, payload, refs, content_hash, copied_from, created_at, updated_at) \
           SELECT s.environment_id, s.kind, s.key, s.sharing, s.payload, s.refs, s.content_hash, s.id, 0, 0 \
           FROM memberships sm JOIN entities s ON s.id = sm.entity_id \
           WHERE sm.group_id = $1 AND s.sharing = 1 \
             AND NOT EXISTS (SELECT 1 FROM memberships rm WHERE rm.group_id = $2 AND rm.kind = sm.kind AND rm.key = sm.key) \
           RETURNING id, kind, key) \
         INSERT INTO memberships (group_id, kind, key, entity_id) SELECT $2, kind, key, id FROM ins",
        [src.into(), dst.into()],
    ))
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO memberships (group_id, kind, key, entity_id) \
         SELECT $2, sm.kind, sm.key, sm.entity_id FROM memberships sm JOIN entities s ON s.id = sm.entity_id \
         WHERE sm.group_id = $1 AND s.sharing = 2 ON CONFLICT DO NOTHING",
        [src.into(), dst.into()],
    ))
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE groups SET revision = revision + 1 WHERE id = $1",
        [dst.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(t.elapsed().as_secs_f64())
}

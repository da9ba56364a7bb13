//! Snapshots: metadata columns plus the canonical JSON of their contents.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, col, exec, one};
use crate::domain::{EnvName, ResourceId, Snapshot, SnapshotName};

/// Snapshots as they age: pruned past the retention (`--snapshot-retention-hours`), a
/// few at a time (a snapshot's contents can be large).
pub const AGED: ferry_kit::prune::Aged = ferry_kit::prune::Aged { table: "snapshots", key: "env, id", time: "created_at" };

/// Snapshots one prune statement deletes at most.
pub const PRUNE_BATCH: u64 = 100;

/// A stored snapshot: its metadata, the canonical JSON its checksum covers, and the id
/// of the key every sealed value in it is sealed under (`None`: it holds none).
#[derive(Debug, Clone)]
pub struct SnapshotRow {
    pub snapshot: Snapshot,
    pub contents: String,
    pub sealing_key_id: Option<String>,
}

const COLS: &str = "env, id, description, created_by, created_at, integration_count, mapping_count, sync_job_count, checksum, contents, \
                    sealing_key_id";

fn read(row: &QueryResult) -> Result<SnapshotRow, DbErr> {
    let env: String = col(row, 0)?;
    let id: String = col(row, 1)?;
    Ok(SnapshotRow {
        snapshot: Snapshot {
            name: SnapshotName { env: EnvName::from_stored(&env), id: ResourceId::from_stored(&id) },
            description: col(row, 2)?,
            created_by: col(row, 3)?,
            created_at: col(row, 4)?,
            integration_count: col(row, 5)?,
            mapping_count: col(row, 6)?,
            sync_job_count: col(row, 7)?,
            checksum: col(row, 8)?,
            expire_at: 0,
            contents: None,
        },
        contents: col(row, 9)?,
        sealing_key_id: col(row, 10)?,
    })
}

pub async fn find<C: ConnectionTrait>(db: &C, name: &SnapshotName) -> Result<Option<SnapshotRow>, DbErr> {
    one(db, &format!("SELECT {COLS} FROM snapshots WHERE env = ? AND id = ?"), vec![name.env.id().into(), name.id.as_str().into()])
        .await?
        .map(|r| read(&r))
        .transpose()
}

/// Newest first: ordered by (created_at, id) descending, before the cursor `before`.
pub async fn list<C: ConnectionTrait>(db: &C, env: &EnvName, before: Option<(i64, String)>, limit: u64) -> Result<Vec<SnapshotRow>, DbErr> {
    let (t, id) = before.unwrap_or((i64::MAX, String::new()));
    let rows = all(
        db,
        &format!(
            "SELECT {COLS} FROM snapshots WHERE env = ? AND (created_at < ? OR (created_at = ? AND id < ?) OR ? = '')
             ORDER BY created_at DESC, id DESC LIMIT ?"
        ),
        vec![env.id().into(), t.into(), t.into(), id.clone().into(), id.into(), Value::from(limit as i64)],
    )
    .await?;
    rows.iter().map(read).collect()
}

pub async fn insert<C: ConnectionTrait>(db: &C, row: &SnapshotRow) -> Result<(), DbErr> {
    let s = &row.snapshot;
    exec(
        db,
        &format!("INSERT INTO snapshots ({COLS}) VALUES ({})", ferry_kit::db::placeholders(11)),
        vec![
            s.name.env.id().into(),
            s.name.id.as_str().into(),
            s.description.as_str().into(),
            s.created_by.as_str().into(),
            s.created_at.into(),
            s.integration_count.into(),
            s.mapping_count.into(),
            s.sync_job_count.into(),
            s.checksum.as_str().into(),
            row.contents.as_str().into(),
            super::opt_text(row.sealing_key_id.as_deref()),
        ],
    )
    .await?;
    Ok(())
}

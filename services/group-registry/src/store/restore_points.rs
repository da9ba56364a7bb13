//! Restore points. A restore point's content lives in a hidden environment of its own
//! (named by [`RestorePointName::archive`], which no request can name), so taking one and
//! restoring one are the environment copy of a refresh (`copy::copy_environment`) with
//! every time kept: one set-based statement per table, no payload leaves the database.
//! The `restore_points` row says whose it is, what it holds and when it expires.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::copy::{self, Purpose};
use super::environments::{self, EnvRow};
use super::{all, col, exec, one};
use crate::domain::profile::CopyProfile;
use crate::domain::{ContentCounts, CopyCounts, Environment, RestorePoint, RestorePointName};

/// A stored restore point: its row id, the hidden environment that holds it, and what it is.
#[derive(Debug, Clone)]
pub struct PointRow {
    pub id: i64,
    pub archive_id: i64,
    pub point: RestorePoint,
}

const COLS: &str = "r.id, r.archive_id, e.name, r.name, r.run, r.integration_snapshot, r.description, r.groups, r.entities, r.links, \
                    r.projects, r.config_items, r.size_bytes, r.created_at, r.expire_at, r.restored_at";
const FROM: &str = "FROM restore_points r JOIN environments e ON e.id = r.environment_id";

fn read(row: &QueryResult) -> Result<PointRow, DbErr> {
    let (env, id): (String, String) = (col(row, 2)?, col(row, 3)?);
    Ok(PointRow {
        id: col(row, 0)?,
        archive_id: col(row, 1)?,
        point: RestorePoint {
            name: RestorePointName::new(&env, &id),
            run: col(row, 4)?,
            integration_snapshot: col(row, 5)?,
            description: col(row, 6)?,
            counts: ContentCounts {
                groups: col(row, 7)?,
                entities: col(row, 8)?,
                links: col(row, 9)?,
                projects: col(row, 10)?,
                config_items: col(row, 11)?,
            },
            size_bytes: col(row, 12)?,
            created_at: col(row, 13)?,
            expire_at: col(row, 14)?,
            restored_at: col(row, 15)?,
        },
    })
}

pub async fn find<C: ConnectionTrait>(db: &C, env_id: i64, id: &str) -> Result<Option<PointRow>, DbErr> {
    one(db, &format!("SELECT {COLS} {FROM} WHERE r.environment_id = ? AND r.name = ?"), vec![env_id.into(), id.into()])
        .await?
        .map(|r| read(&r))
        .transpose()
}

/// Restore points of environment `env_id` ordered by id, after `after`.
pub async fn list<C: ConnectionTrait>(db: &C, env_id: i64, after: Option<&str>, limit: u64) -> Result<Vec<PointRow>, DbErr> {
    let rows = all(
        db,
        &format!("SELECT {COLS} {FROM} WHERE r.environment_id = ? AND r.name > ? AND r.name < '~' ORDER BY r.name LIMIT ?"),
        vec![env_id.into(), after.unwrap_or("").into(), Value::from(limit as i64)],
    )
    .await?;
    rows.iter().map(read).collect()
}

/// Takes a restore point of environment `env`: its content copied into a new hidden
/// environment, and the row that names it. `point` says its name, run, snapshot,
/// description and expiry; its counts and size are filled in here.
pub async fn create<C: ConnectionTrait>(db: &C, env: &EnvRow, mut point: RestorePoint) -> Result<RestorePoint, DbErr> {
    let archive = environments::insert(
        db,
        &Environment {
            name: crate::domain::EnvName(crate::domain::ResourceId::from_stored(&point.name.archive(point.created_at))),
            tier: env.env.tier,
            display_name: format!("content of {} kept as {}", env.env.name, point.name),
            created_at: point.created_at,
        },
    )
    .await?;
    point.counts = copy::copy_environment(db, env.id, archive.id, Purpose::Keep, &CopyProfile::default()).await?.counts.into();
    let size =
        one(db, "SELECT COALESCE(SUM(LENGTH(payload) + LENGTH(refs)), 0) FROM entities WHERE environment_id = ?", vec![archive.id.into()])
            .await?
            .ok_or_else(|| DbErr::Custom("sum returned no row".into()))?;
    point.size_bytes = col(&size, 0)?;
    let c = point.counts;
    exec(
        db,
        "INSERT INTO restore_points (environment_id, name, archive_id, run, integration_snapshot, description, groups, entities, links, \
         projects, config_items, size_bytes, created_at, expire_at, restored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        vec![
            env.id.into(),
            point.name.id.as_str().into(),
            archive.id.into(),
            point.run.as_str().into(),
            point.integration_snapshot.as_str().into(),
            point.description.as_str().into(),
            c.groups.into(),
            c.entities.into(),
            c.links.into(),
            c.projects.into(),
            c.config_items.into(),
            point.size_bytes.into(),
            point.created_at.into(),
            point.expire_at.into(),
        ],
    )
    .await?;
    Ok(point)
}

/// Puts restore point `row`'s content back into environment `env_id`, replacing what it
/// holds; revisions move forward. What it replaced.
pub async fn restore<C: ConnectionTrait>(db: &C, row: &PointRow, env_id: i64, now: i64) -> Result<CopyCounts, DbErr> {
    let counts = copy::copy_environment(db, row.archive_id, env_id, Purpose::Restore, &CopyProfile::default()).await?.counts;
    exec(db, "UPDATE restore_points SET restored_at = ? WHERE id = ?", vec![now.into(), row.id.into()]).await?;
    Ok(counts)
}

/// Retires restore point `row`: it is no longer found, listed or restorable, its id is
/// free again, and [`prune`] removes its content in bounded batches. (`~` never starts
/// an id, so the retired name meets no live one.)
pub async fn retire<C: ConnectionTrait>(db: &C, row: &PointRow) -> Result<(), DbErr> {
    exec(db, "UPDATE restore_points SET name = ?, expire_at = 0 WHERE id = ?", vec![format!("~{}", row.id).into(), row.id.into()]).await?;
    Ok(())
}

/// A restore point to prune: expired or retired, the longest due first.
pub async fn due<C: ConnectionTrait>(db: &C, now: i64) -> Result<Option<(i64, i64, String)>, DbErr> {
    let row = one(
        db,
        &format!("SELECT r.id, r.archive_id, e.name, r.name {FROM} WHERE r.expire_at <= ? ORDER BY r.expire_at, r.id LIMIT 1"),
        vec![now.into()],
    )
    .await?;
    row.map(|r| Ok((col(&r, 0)?, col(&r, 1)?, format!("environments/{}/restorePoints/{}", col::<String>(&r, 2)?, col::<String>(&r, 3)?))))
        .transpose()
}

/// What a restore point keeps in its hidden environment, in the order it is pruned:
/// entities first (their memberships go with them), then projects (with their groups and
/// configuration), then groups.
pub const KEPT: [ferry_kit::prune::Children; 3] = {
    use ferry_kit::prune::Children;
    [
        Children { table: "entities", parent: "environment_id", order: "id" },
        Children { table: "projects", parent: "environment_id", order: "id" },
        Children { table: "groups", parent: "environment_id", order: "id" },
    ]
};

/// Removes restore point `id` and its hidden environment `archive_id`, emptied first
/// ([`KEPT`]).
pub async fn remove<C: ConnectionTrait>(db: &C, id: i64, archive_id: i64) -> Result<(), DbErr> {
    exec(db, "DELETE FROM restore_points WHERE id = ?", vec![id.into()]).await?;
    exec(db, "DELETE FROM environments WHERE id = ?", vec![archive_id.into()]).await?;
    Ok(())
}

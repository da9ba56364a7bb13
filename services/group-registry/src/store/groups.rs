//! Groups and their revisions. Every change to what a group contains goes through
//! [`bump`]; writers that must serialise on a group take [`lock`] first (a row lock on
//! PostgreSQL; SQLite serialises writers anyway).

use ferry_kit::db::placeholders;
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, col, exec, one};
use crate::domain::{Group, GroupName};

#[derive(Debug, Clone)]
pub struct GroupRow {
    pub id: i64,
    pub env_id: i64,
    pub group: Group,
}

const SELECT: &str = "SELECT g.id, g.environment_id, e.name, g.name, g.display_name, g.revision, \
     (SELECT COUNT(*) FROM memberships m WHERE m.group_id = g.id), g.created_at \
     FROM groups g JOIN environments e ON e.id = g.environment_id";

/// [`SELECT`] without the member count (reported as 0), for reads that leave it out.
const SELECT_UNCOUNTED: &str = "SELECT g.id, g.environment_id, e.name, g.name, g.display_name, g.revision, CAST(0 AS BIGINT), g.created_at \
     FROM groups g JOIN environments e ON e.id = g.environment_id";

fn read(row: &QueryResult) -> Result<GroupRow, DbErr> {
    let env: String = col(row, 2)?;
    let name: String = col(row, 3)?;
    Ok(GroupRow {
        id: col(row, 0)?,
        env_id: col(row, 1)?,
        group: Group {
            name: GroupName::new(&env, &name),
            display_name: col(row, 4)?,
            revision: col(row, 5)?,
            entity_count: col(row, 6)?,
            created_at: col(row, 7)?,
        },
    })
}

pub async fn insert<C: ConnectionTrait>(db: &C, env_id: i64, name: &GroupName, display: &str, now: i64) -> Result<GroupRow, DbErr> {
    let id: i64 = col(
        &one(
            db,
            "INSERT INTO groups (environment_id, name, display_name, revision, created_at) VALUES (?, ?, ?, 1, ?) RETURNING id",
            vec![env_id.into(), name.group.as_str().into(), display.into(), now.into()],
        )
        .await?
        .ok_or_else(|| DbErr::Custom("insert returned no row".into()))?,
        0,
    )?;
    by_id(db, id).await?.ok_or_else(|| DbErr::RecordNotFound(format!("group {id}")))
}

pub async fn by_id<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<GroupRow>, DbErr> {
    one(db, &format!("{SELECT} WHERE g.id = ?"), vec![id.into()]).await?.map(|r| read(&r)).transpose()
}

pub async fn find<C: ConnectionTrait>(db: &C, name: &GroupName) -> Result<Option<GroupRow>, DbErr> {
    find_with(db, SELECT, name).await
}

/// [`find`] with `entity_count` left at 0.
pub async fn find_uncounted<C: ConnectionTrait>(db: &C, name: &GroupName) -> Result<Option<GroupRow>, DbErr> {
    find_with(db, SELECT_UNCOUNTED, name).await
}

async fn find_with<C: ConnectionTrait>(db: &C, select: &str, name: &GroupName) -> Result<Option<GroupRow>, DbErr> {
    one(db, &format!("{select} WHERE e.name = ? AND g.name = ?"), vec![name.env.id().into(), name.group.as_str().into()])
        .await?
        .map(|r| read(&r))
        .transpose()
}

/// What the write paths need of a group: its ids and revision, without counting members
/// (a count walks the whole group: a cost per call that grows with the group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupKey {
    pub id: i64,
    pub env_id: i64,
    pub revision: i64,
}

pub async fn key_of<C: ConnectionTrait>(db: &C, name: &GroupName) -> Result<Option<GroupKey>, DbErr> {
    one(
        db,
        "SELECT g.id, g.environment_id, g.revision FROM groups g JOIN environments e ON e.id = g.environment_id \
         WHERE e.name = ? AND g.name = ?",
        vec![name.env.id().into(), name.group.as_str().into()],
    )
    .await?
    .map(|r| Ok(GroupKey { id: col(&r, 0)?, env_id: col(&r, 1)?, revision: col(&r, 2)? }))
    .transpose()
}

/// Groups of an environment ordered by name, after `after`.
pub async fn list<C: ConnectionTrait>(db: &C, env_id: i64, after: Option<&str>, limit: u64) -> Result<Vec<GroupRow>, DbErr> {
    let rows = all(
        db,
        &format!("{SELECT} WHERE g.environment_id = ? AND g.name > ? ORDER BY g.name LIMIT ?"),
        vec![env_id.into(), after.unwrap_or("").into(), Value::from(limit as i64)],
    )
    .await?;
    rows.iter().map(read).collect()
}

/// Serialises writers on this group until the transaction ends; false when the group is
/// gone (deleted by a writer this one waited for).
pub async fn lock<C: ConnectionTrait>(db: &C, id: i64) -> Result<bool, DbErr> {
    Ok(exec(db, "UPDATE groups SET revision = revision WHERE id = ?", vec![id.into()]).await? > 0)
}

/// Bumps the revision of each group in `ids` (what they contain changed).
pub async fn bump<C: ConnectionTrait>(db: &C, ids: &[i64]) -> Result<(), DbErr> {
    for chunk in ids.chunks(1000) {
        exec(
            db,
            &format!("UPDATE groups SET revision = revision + 1 WHERE id IN ({})", placeholders(chunk.len())),
            chunk.iter().map(|i| Value::from(*i)).collect(),
        )
        .await?;
    }
    Ok(())
}

/// Bumps the revision of every group holding one of `entity_ids`.
pub async fn bump_holding<C: ConnectionTrait>(db: &C, entity_ids: &[i64]) -> Result<(), DbErr> {
    for chunk in entity_ids.chunks(1000) {
        exec(
            db,
            &format!(
                "UPDATE groups SET revision = revision + 1 WHERE id IN \
                 (SELECT group_id FROM memberships WHERE entity_id IN ({}))",
                placeholders(chunk.len())
            ),
            chunk.iter().map(|i| Value::from(*i)).collect(),
        )
        .await?;
    }
    Ok(())
}

pub async fn revision<C: ConnectionTrait>(db: &C, id: i64) -> Result<i64, DbErr> {
    let row = one(db, "SELECT revision FROM groups WHERE id = ?", vec![id.into()])
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("group {id}")))?;
    col(&row, 0)
}

/// Names of the projects that use a group.
pub async fn projects_using<C: ConnectionTrait>(db: &C, group_id: i64) -> Result<Vec<String>, DbErr> {
    let rows = all(
        db,
        "SELECT e.name, p.name FROM project_groups pg JOIN projects p ON p.id = pg.project_id \
         JOIN environments e ON e.id = p.environment_id WHERE pg.group_id = ? ORDER BY p.name",
        vec![group_id.into()],
    )
    .await?;
    rows.iter().map(|r| Ok(format!("environments/{}/projects/{}", col::<String>(r, 0)?, col::<String>(r, 1)?))).collect()
}

/// Shared entities whose only link is this group: deleting the group would lose them.
pub async fn sole_shared_members<C: ConnectionTrait>(db: &C, group_id: i64) -> Result<Vec<i64>, DbErr> {
    let rows = all(
        db,
        "SELECT m.entity_id FROM memberships m JOIN entities e ON e.id = m.entity_id \
         WHERE m.group_id = ? AND e.sharing = 2 \
         AND NOT EXISTS (SELECT 1 FROM memberships o WHERE o.entity_id = m.entity_id AND o.group_id <> m.group_id) \
         ORDER BY m.entity_id LIMIT 100",
        vec![group_id.into()],
    )
    .await?;
    rows.iter().map(|r| col(r, 0)).collect()
}

/// Deletes a group: its duplicated entities go with it, its links are removed.
/// Returns (deleted duplicated entities, removed links of shared entities).
pub async fn delete<C: ConnectionTrait>(db: &C, group_id: i64) -> Result<(i64, i64), DbErr> {
    let unlinked = exec(
        db,
        "DELETE FROM memberships WHERE group_id = ? AND entity_id IN (SELECT id FROM entities WHERE sharing = 2)",
        vec![group_id.into()],
    )
    .await?;
    let deleted = exec(
        db,
        "DELETE FROM entities WHERE sharing = 1 AND id IN (SELECT entity_id FROM memberships WHERE group_id = ?)",
        vec![group_id.into()],
    )
    .await?;
    exec(db, "DELETE FROM groups WHERE id = ?", vec![group_id.into()]).await?;
    Ok((deleted as i64, unlinked as i64))
}

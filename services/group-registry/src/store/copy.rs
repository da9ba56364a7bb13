//! The environment copy a refresh runs: the destination's groups, entities, links,
//! projects and configuration replaced by the source's, set-based. Restore points are the
//! same copy into and out of a hidden environment (`store::restore_points`).

use sea_orm::{ConnectionTrait, DbErr};

use super::bulk::{ANALYZE_AFTER_ROWS, analyze};
use super::{col, exec, one};
use crate::domain::CopyCounts;

async fn count<C: ConnectionTrait>(db: &C, sql: &str, env_id: i64) -> Result<i64, DbErr> {
    let row = one(db, sql, vec![env_id.into()]).await?.ok_or_else(|| DbErr::Custom("count returned no row".into()))?;
    col(&row, 0)
}

/// What a copy is for: it decides the times the copies carry and whether the planner's
/// statistics are refreshed after a large one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A refresh: groups and projects are created now, entities updated now.
    Refresh(i64),
    /// Taking a restore point: every time kept; no statistics (nothing queries it).
    Keep,
    /// Restoring one: every time kept.
    Restore,
}

/// Removes everything environment `env` holds (groups, entities, links, projects,
/// configuration), children first.
pub async fn clear_environment<C: ConnectionTrait>(db: &C, env: i64) -> Result<(), DbErr> {
    exec(db, "DELETE FROM projects WHERE environment_id = ?", vec![env.into()]).await?;
    exec(db, "DELETE FROM memberships WHERE group_id IN (SELECT id FROM groups WHERE environment_id = ?)", vec![env.into()]).await?;
    exec(db, "DELETE FROM entities WHERE environment_id = ?", vec![env.into()]).await?;
    exec(db, "DELETE FROM groups WHERE environment_id = ?", vec![env.into()]).await?;
    Ok(())
}

/// Replaces everything the destination environment holds (groups, entities, links,
/// projects, configuration) with a copy of the source's. Revisions in the destination
/// only grow, so a plan made before the copy is stale after it.
pub async fn copy_environment<C: ConnectionTrait>(db: &C, src: i64, dst: i64, purpose: Purpose) -> Result<CopyCounts, DbErr> {
    let replaced_groups = count(db, "SELECT COUNT(*) FROM groups WHERE environment_id = ?", dst).await?;
    let replaced_entities = count(db, "SELECT COUNT(*) FROM entities WHERE environment_id = ?", dst).await?;
    let replaced_projects = count(db, "SELECT COUNT(*) FROM projects WHERE environment_id = ?", dst).await?;
    let group_rev = count(db, "SELECT COALESCE(MAX(revision), 0) FROM groups WHERE environment_id = ?", dst).await?;
    let project_rev = count(db, "SELECT COALESCE(MAX(revision), 0) FROM projects WHERE environment_id = ?", dst).await?;

    clear_environment(db, dst).await?;

    // A time column as copied: the source's, or `now` bound as a parameter.
    let (created, updated, now) = match purpose {
        Purpose::Refresh(now) => ("?", "?", vec![sea_orm::Value::from(now)]),
        Purpose::Keep | Purpose::Restore => ("created_at", "updated_at", vec![]),
    };
    let groups = exec(
        db,
        &format!(
            "INSERT INTO groups (environment_id, name, display_name, revision, created_at) \
             SELECT ?, name, display_name, revision + ?, {created} FROM groups WHERE environment_id = ?"
        ),
        [vec![dst.into(), group_rev.into()], now.clone(), vec![src.into()]].concat(),
    )
    .await?;
    let entities = exec(
        db,
        &format!(
            "INSERT INTO entities (environment_id, kind, key, sharing, payload, refs, content_hash, copied_from, created_at, updated_at) \
             SELECT ?, kind, key, sharing, payload, refs, content_hash, id, created_at, {updated} FROM entities WHERE environment_id = ?"
        ),
        [vec![dst.into()], now.clone(), vec![src.into()]].concat(),
    )
    .await?;
    let links = exec(
        db,
        "INSERT INTO memberships (group_id, kind, key, entity_id) \
         SELECT ng.id, m.kind, m.key, ne.id FROM memberships m \
         JOIN groups sg ON sg.id = m.group_id AND sg.environment_id = ? \
         JOIN groups ng ON ng.environment_id = ? AND ng.name = sg.name \
         JOIN entities ne ON ne.environment_id = ? AND ne.copied_from = m.entity_id",
        vec![src.into(), dst.into(), dst.into()],
    )
    .await?;
    let projects = exec(
        db,
        &format!(
            "INSERT INTO projects (environment_id, name, display_name, revision, created_at) \
             SELECT ?, name, display_name, revision + ?, {created} FROM projects WHERE environment_id = ?"
        ),
        [vec![dst.into(), project_rev.into()], now, vec![src.into()]].concat(),
    )
    .await?;
    exec(
        db,
        "INSERT INTO project_groups (project_id, position, group_id) \
         SELECT np.id, pg.position, ng.id FROM project_groups pg \
         JOIN projects sp ON sp.id = pg.project_id AND sp.environment_id = ? \
         JOIN projects np ON np.environment_id = ? AND np.name = sp.name \
         JOIN groups sg ON sg.id = pg.group_id \
         JOIN groups ng ON ng.environment_id = ? AND ng.name = sg.name",
        vec![src.into(), dst.into(), dst.into()],
    )
    .await?;
    let config_items = exec(
        db,
        "INSERT INTO config_items (project_id, name, value, refs, updated_at) \
         SELECT np.id, c.name, c.value, c.refs, c.updated_at FROM config_items c \
         JOIN projects sp ON sp.id = c.project_id AND sp.environment_id = ? \
         JOIN projects np ON np.environment_id = ? AND np.name = sp.name",
        vec![src.into(), dst.into()],
    )
    .await?;
    exec(
        db,
        "INSERT INTO config_item_refs (project_id, item_name, position, kind, key) \
         SELECT np.id, r.item_name, r.position, r.kind, r.key FROM config_item_refs r \
         JOIN projects sp ON sp.id = r.project_id AND sp.environment_id = ? \
         JOIN projects np ON np.environment_id = ? AND np.name = sp.name",
        vec![src.into(), dst.into()],
    )
    .await?;
    if entities as i64 >= ANALYZE_AFTER_ROWS && purpose != Purpose::Keep {
        analyze(db).await?;
    }
    Ok(CopyCounts {
        groups: groups as i64,
        entities: entities as i64,
        links: links as i64,
        projects: projects as i64,
        config_items: config_items as i64,
        replaced_groups,
        replaced_entities,
        replaced_projects,
    })
}

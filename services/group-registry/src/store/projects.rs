//! Projects, their ordered groups and their configuration items. Each item's references
//! are also kept as rows (`config_item_refs`) so resolution through the project's groups
//! (G7) is one set-based query.

use ferry_kit::db::placeholders;
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, col, corrupt, exec, one};
use crate::domain::{
    ConfigItem, ConfigItemName, EntityKey, EntityName, EntityRef, GroupName, Json, Kind, Project, ProjectName, Resolution, ResourceId,
    refs_from_json, refs_to_json,
};

#[derive(Debug, Clone)]
pub struct ProjectRow {
    pub id: i64,
    pub env_id: i64,
    pub project: Project,
}

const SELECT: &str = "SELECT p.id, p.environment_id, v.name, p.name, p.display_name, p.revision, p.created_at \
     FROM projects p JOIN environments v ON v.id = p.environment_id";

fn read(row: &QueryResult) -> Result<ProjectRow, DbErr> {
    let env: String = col(row, 2)?;
    let name: String = col(row, 3)?;
    Ok(ProjectRow {
        id: col(row, 0)?,
        env_id: col(row, 1)?,
        project: Project {
            name: ProjectName::new(&env, &name),
            display_name: col(row, 4)?,
            groups: Vec::new(),
            revision: col(row, 5)?,
            created_at: col(row, 6)?,
        },
    })
}

async fn fill_groups<C: ConnectionTrait>(db: &C, rows: &mut [ProjectRow]) -> Result<(), DbErr> {
    for row in rows.iter_mut() {
        let groups = all(
            db,
            "SELECT v.name, g.name FROM project_groups pg JOIN groups g ON g.id = pg.group_id \
             JOIN environments v ON v.id = g.environment_id WHERE pg.project_id = ? ORDER BY pg.position",
            vec![row.id.into()],
        )
        .await?;
        row.project.groups =
            groups.iter().map(|r| Ok(GroupName::new(&col::<String>(r, 0)?, &col::<String>(r, 1)?))).collect::<Result<_, DbErr>>()?;
    }
    Ok(())
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    env_id: i64,
    name: &ProjectName,
    display: &str,
    group_ids: &[i64],
    now: i64,
) -> Result<i64, DbErr> {
    let row = one(
        db,
        "INSERT INTO projects (environment_id, name, display_name, revision, created_at) VALUES (?, ?, ?, 1, ?) RETURNING id",
        vec![env_id.into(), name.project.as_str().into(), display.into(), now.into()],
    )
    .await?
    .ok_or_else(|| DbErr::Custom("insert returned no row".into()))?;
    let id: i64 = col(&row, 0)?;
    set_groups(db, id, group_ids).await?;
    Ok(id)
}

/// Replaces a project's groups (in resolution order).
pub async fn set_groups<C: ConnectionTrait>(db: &C, project_id: i64, group_ids: &[i64]) -> Result<(), DbErr> {
    exec(db, "DELETE FROM project_groups WHERE project_id = ?", vec![project_id.into()]).await?;
    for (pos, gid) in group_ids.iter().enumerate() {
        exec(
            db,
            "INSERT INTO project_groups (project_id, position, group_id) VALUES (?, ?, ?)",
            vec![project_id.into(), (pos as i32).into(), (*gid).into()],
        )
        .await?;
    }
    Ok(())
}

pub async fn find<C: ConnectionTrait>(db: &C, name: &ProjectName) -> Result<Option<ProjectRow>, DbErr> {
    let Some(row) =
        one(db, &format!("{SELECT} WHERE v.name = ? AND p.name = ?"), vec![name.env.id().into(), name.project.as_str().into()]).await?
    else {
        return Ok(None);
    };
    let mut rows = [read(&row)?];
    fill_groups(db, &mut rows).await?;
    let [row] = rows;
    Ok(Some(row))
}

pub async fn list<C: ConnectionTrait>(db: &C, env_id: i64, after: Option<&str>, limit: u64) -> Result<Vec<ProjectRow>, DbErr> {
    let rows = all(
        db,
        &format!("{SELECT} WHERE p.environment_id = ? AND p.name > ? ORDER BY p.name LIMIT ?"),
        vec![env_id.into(), after.unwrap_or("").into(), Value::from(limit as i64)],
    )
    .await?;
    let mut rows = rows.iter().map(read).collect::<Result<Vec<_>, _>>()?;
    fill_groups(db, &mut rows).await?;
    Ok(rows)
}

pub async fn update_display<C: ConnectionTrait>(db: &C, project_id: i64, display: &str) -> Result<(), DbErr> {
    exec(db, "UPDATE projects SET display_name = ? WHERE id = ?", vec![display.into(), project_id.into()]).await?;
    Ok(())
}

pub async fn bump<C: ConnectionTrait>(db: &C, project_id: i64) -> Result<i64, DbErr> {
    let row = one(db, "UPDATE projects SET revision = revision + 1 WHERE id = ? RETURNING revision", vec![project_id.into()])
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("project {project_id}")))?;
    col(&row, 0)
}

/// Serialises writers on this project until the transaction ends; false when the project
/// is gone (deleted by a writer this one waited for).
pub async fn lock<C: ConnectionTrait>(db: &C, project_id: i64) -> Result<bool, DbErr> {
    Ok(exec(db, "UPDATE projects SET revision = revision WHERE id = ?", vec![project_id.into()]).await? > 0)
}

/// Deletes a project and its configuration; returns how many items went with it.
pub async fn delete<C: ConnectionTrait>(db: &C, project_id: i64) -> Result<i64, DbErr> {
    let n = exec(db, "DELETE FROM config_items WHERE project_id = ?", vec![project_id.into()]).await?;
    exec(db, "DELETE FROM projects WHERE id = ?", vec![project_id.into()]).await?;
    Ok(n as i64)
}

fn read_item(project: &ProjectName, row: &QueryResult) -> Result<ConfigItem, DbErr> {
    let name: String = col(row, 0)?;
    Ok(ConfigItem {
        name: ConfigItemName { project: project.clone(), item: ResourceId::from_stored(&name) },
        value: Json::from_stored(col(row, 1)?),
        references: refs_from_json(&col::<String>(row, 2)?),
        updated_at: col(row, 3)?,
    })
}

pub async fn get_item<C: ConnectionTrait>(db: &C, project: &ProjectRow, item: &str) -> Result<Option<ConfigItem>, DbErr> {
    one(
        db,
        "SELECT name, value, refs, updated_at FROM config_items WHERE project_id = ? AND name = ?",
        vec![project.id.into(), item.into()],
    )
    .await?
    .map(|r| read_item(&project.project.name, &r))
    .transpose()
}

pub async fn list_items<C: ConnectionTrait>(
    db: &C,
    project: &ProjectRow,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<ConfigItem>, DbErr> {
    let rows = all(
        db,
        "SELECT name, value, refs, updated_at FROM config_items WHERE project_id = ? AND name > ? ORDER BY name LIMIT ?",
        vec![project.id.into(), after.unwrap_or("").into(), Value::from(limit as i64)],
    )
    .await?;
    rows.iter().map(|r| read_item(&project.project.name, r)).collect()
}

/// Writes an item (insert or replace) and its reference rows.
pub async fn put_item<C: ConnectionTrait>(db: &C, project_id: i64, item: &ConfigItem, now: i64) -> Result<(), DbErr> {
    let name = item.name.item.as_str();
    exec(db, "DELETE FROM config_items WHERE project_id = ? AND name = ?", vec![project_id.into(), name.into()]).await?;
    exec(
        db,
        "INSERT INTO config_items (project_id, name, value, refs, updated_at) VALUES (?, ?, ?, ?, ?)",
        vec![project_id.into(), name.into(), item.value.as_str().into(), refs_to_json(&item.references).into(), now.into()],
    )
    .await?;
    if !item.references.is_empty() {
        let mut values = Vec::new();
        for (i, r) in item.references.iter().enumerate() {
            values.extend([Value::from(project_id), name.into(), (i as i32).into(), r.kind.number().into(), r.key.as_str().into()]);
        }
        let rows = vec![format!("({})", placeholders(5)); item.references.len()].join(", ");
        exec(db, &format!("INSERT INTO config_item_refs (project_id, item_name, position, kind, key) VALUES {rows}"), values).await?;
    }
    Ok(())
}

pub async fn delete_item<C: ConnectionTrait>(db: &C, project_id: i64, item: &str) -> Result<bool, DbErr> {
    Ok(exec(db, "DELETE FROM config_items WHERE project_id = ? AND name = ?", vec![project_id.into(), item.into()]).await? > 0)
}

/// The first project group (in order) that holds (kind, key), as a correlated subquery
/// over `r` (a `config_item_refs` row); `what` picks the column.
fn first_holder(what: &str) -> String {
    format!(
        "(SELECT {what} FROM project_groups pg JOIN memberships m ON m.group_id = pg.group_id AND m.kind = r.kind AND m.key = r.key \
         JOIN groups g ON g.id = pg.group_id WHERE pg.project_id = r.project_id ORDER BY pg.position LIMIT 1)"
    )
}

/// One page of resolutions (G7), ordered by (item, position), after `after`.
pub async fn resolve_page<C: ConnectionTrait>(
    db: &C,
    project: &ProjectRow,
    missing_only: bool,
    after: Option<&(String, i32)>,
    limit: u64,
) -> Result<Vec<(Resolution, i32)>, DbErr> {
    let (after_item, after_pos) = after.cloned().unwrap_or((String::new(), -1));
    let entity = first_holder("m.entity_id");
    let group = first_holder("g.name");
    let missing = if missing_only { format!(" AND {entity} IS NULL") } else { String::new() };
    let rows = all(
        db,
        &format!(
            "SELECT r.item_name, r.position, r.kind, r.key, {entity}, {group} FROM config_item_refs r \
             WHERE r.project_id = ? AND (r.item_name, r.position) > (?, ?){missing} ORDER BY r.item_name, r.position LIMIT ?"
        ),
        vec![project.id.into(), after_item.into(), after_pos.into(), Value::from(limit as i64)],
    )
    .await?;
    let env = project.project.name.env.id().to_owned();
    rows.iter()
        .map(|r| {
            let item: String = col(r, 0)?;
            let kind: i32 = col(r, 2)?;
            let entity: Option<i64> = col(r, 4)?;
            let group: Option<String> = col(r, 5)?;
            Ok((
                Resolution {
                    config_item: ConfigItemName { project: project.project.name.clone(), item: ResourceId::from_stored(&item) },
                    reference: EntityRef {
                        kind: Kind::from_number(kind).map_err(|_| corrupt("kind", kind))?,
                        key: EntityKey::from_stored(col(r, 3)?),
                    },
                    entity: entity.map(|id| EntityName::new(&env, id)),
                    group: group.map(|g| GroupName::new(&env, &g)),
                },
                col(r, 1)?,
            ))
        })
        .collect()
}

/// References of a project that no project group holds.
pub async fn missing_count<C: ConnectionTrait>(db: &C, project_id: i64) -> Result<i64, DbErr> {
    let row = one(
        db,
        "SELECT COUNT(*) FROM config_item_refs r WHERE r.project_id = ? AND NOT EXISTS \
         (SELECT 1 FROM project_groups pg JOIN memberships m ON m.group_id = pg.group_id AND m.kind = r.kind AND m.key = r.key \
          WHERE pg.project_id = r.project_id)",
        vec![project_id.into()],
    )
    .await?
    .ok_or_else(|| DbErr::Custom("count returned no row".into()))?;
    col(&row, 0)
}

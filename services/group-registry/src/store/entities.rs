//! Entities and memberships. A membership row (group, kind, key) → entity is how an entity
//! is in a group; its primary key is G1.

use std::collections::HashMap;

use ferry_kit::db::{InPlace, InPlaceReads, Row, placeholders};
use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{all, col, corrupt, exec, one};
use crate::domain::{Entity, EntityKey, EntityName, GroupName, Json, Kind, NewEntity, Sharing, content_hash, refs_from_json, refs_to_json};

macro_rules! entity_select {
    ($($extra:literal)?) => {
        concat!(
            "SELECT e.id, v.name, e.kind, e.key, e.sharing, e.payload, e.refs, e.content_hash, e.created_at, e.updated_at",
            $($extra,)?
            " FROM entities e JOIN environments v ON v.id = e.environment_id"
        )
    };
}

pub(crate) const SELECT: &str = entity_select!();

/// Reads an entity from the first ten columns of [`SELECT`]; `groups` is filled later.
pub(crate) fn read(row: &impl Row) -> Result<Entity, DbErr> {
    let env: String = row.col(1)?;
    let kind: i32 = row.col(2)?;
    let sharing: i32 = row.col(4)?;
    let refs: String = row.col(6)?;
    Ok(Entity {
        name: EntityName::new(&env, row.col(0)?),
        kind: Kind::from_number(kind).map_err(|_| corrupt("kind", kind))?,
        key: EntityKey::from_stored(row.col(3)?),
        sharing: Sharing::from_number(sharing).ok_or_else(|| corrupt("sharing", sharing))?,
        payload: Json::from_stored(row.col(5)?),
        references: refs_from_json(&refs),
        groups: Vec::new(),
        content_hash: row.col(7)?,
        created_at: row.col(8)?,
        updated_at: row.col(9)?,
    })
}

/// Fills each entity's `groups`, ordered by group name.
pub async fn fill_groups<C: ConnectionTrait>(db: &C, entities: &mut [Entity]) -> Result<(), DbErr> {
    if entities.is_empty() {
        return Ok(());
    }
    let mut by_id: HashMap<i64, Vec<GroupName>> = HashMap::new();
    for chunk in entities.chunks(1000) {
        let rows = all(
            db,
            &format!(
                "SELECT m.entity_id, v.name, g.name FROM memberships m JOIN groups g ON g.id = m.group_id \
                 JOIN environments v ON v.id = g.environment_id WHERE m.entity_id IN ({}) ORDER BY g.name",
                placeholders(chunk.len())
            ),
            chunk.iter().map(|e| Value::from(e.name.id)).collect(),
        )
        .await?;
        for r in &rows {
            let env: String = col(r, 1)?;
            let group: String = col(r, 2)?;
            by_id.entry(col(r, 0)?).or_default().push(GroupName::new(&env, &group));
        }
    }
    for e in entities.iter_mut() {
        e.groups = by_id.remove(&e.name.id).unwrap_or_default();
    }
    Ok(())
}

/// One entity and its groups in one statement (one row per group): GetEntity is the
/// hottest read. The groups are sorted by name in [`get_done`], not by a sort in the
/// statement.
const GET: &str = concat!(
    entity_select!(", gv.name, g.name"),
    " LEFT JOIN memberships m ON m.entity_id = e.id LEFT JOIN groups g ON g.id = m.group_id \
     LEFT JOIN environments gv ON gv.id = g.environment_id WHERE e.id = ? AND v.name = ?"
);

fn get_values(name: &EntityName) -> Vec<Value> {
    vec![name.id.into(), name.env.id().into()]
}

/// Adds one row of [`GET`] to the entity being read: the first row gives the entity, every
/// row one of its groups.
fn get_row(entity: &mut Option<Entity>, row: &impl Row) -> Result<(), DbErr> {
    let e = match entity {
        Some(e) => e,
        None => entity.insert(read(row)?),
    };
    // NULL when the entity is in no group.
    if let (Some(env), Some(group)) = (row.col::<Option<String>>(10)?, row.col::<Option<String>>(11)?) {
        e.groups.push(GroupName::new(&env, &group));
    }
    Ok(())
}

/// The entity read by [`GET`], its groups ordered by name.
fn get_done(mut entity: Option<Entity>) -> Option<Entity> {
    if let Some(e) = &mut entity {
        e.groups.sort_by(|a, b| a.group.as_str().cmp(b.group.as_str()));
    }
    entity
}

pub async fn get<C: ConnectionTrait>(db: &C, name: &EntityName) -> Result<Option<Entity>, DbErr> {
    let mut entity = None;
    for row in &all(db, GET, get_values(name)).await? {
        get_row(&mut entity, row)?;
    }
    Ok(get_done(entity))
}

/// [`get`] read in place on SQLite (`ferry_kit::db::inplace`).
pub fn get_in_place(reads: &InPlaceReads, name: &EntityName) -> Result<Option<Entity>, InPlace> {
    let mut entity = None;
    reads.all(GET, &get_values(name), |row| get_row(&mut entity, row))?;
    Ok(get_done(entity))
}

/// Inserts a new entity row; the caller adds its membership.
/// The columns a new entity row is inserted with, in [`INSERT_COLUMNS`] order.
pub(crate) const INSERT_COLUMNS: &str = "environment_id, kind, key, sharing, payload, refs, content_hash, created_at, updated_at";

/// The values of a new entity row, in [`INSERT_COLUMNS`] order.
pub(crate) fn row_values(env_id: i64, e: &NewEntity, now: i64) -> [Value; 9] {
    [
        env_id.into(),
        e.kind.number().into(),
        e.key.as_str().into(),
        e.sharing.number().into(),
        e.payload.as_str().into(),
        refs_to_json(&e.references).into(),
        content_hash(&e.payload, &e.references).into(),
        now.into(),
        now.into(),
    ]
}

pub async fn insert<C: ConnectionTrait>(db: &C, env_id: i64, e: &NewEntity, now: i64) -> Result<i64, DbErr> {
    let row = one(
        db,
        &format!("INSERT INTO entities ({INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"),
        row_values(env_id, e, now).into(),
    )
    .await?
    .ok_or_else(|| DbErr::Custom("insert returned no row".into()))?;
    col(&row, 0)
}

/// The entity a group holds under (kind, key), if any.
pub async fn member_at<C: ConnectionTrait>(db: &C, group_id: i64, kind: Kind, key: &EntityKey) -> Result<Option<i64>, DbErr> {
    one(
        db,
        "SELECT entity_id FROM memberships WHERE group_id = ? AND kind = ? AND key = ?",
        vec![group_id.into(), kind.number().into(), key.as_str().into()],
    )
    .await?
    .map(|r| col(&r, 0))
    .transpose()
}

/// Adds a membership; false when the group already holds (kind, key) (G1).
pub async fn add_membership<C: ConnectionTrait>(db: &C, group_id: i64, kind: Kind, key: &EntityKey, entity_id: i64) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "INSERT INTO memberships (group_id, kind, key, entity_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        vec![group_id.into(), kind.number().into(), key.as_str().into(), entity_id.into()],
    )
    .await?;
    Ok(n == 1)
}

pub async fn remove_membership<C: ConnectionTrait>(db: &C, group_id: i64, entity_id: i64) -> Result<bool, DbErr> {
    let n = exec(db, "DELETE FROM memberships WHERE group_id = ? AND entity_id = ?", vec![group_id.into(), entity_id.into()]).await?;
    Ok(n > 0)
}

/// Ids of the groups an entity is in.
pub async fn group_ids<C: ConnectionTrait>(db: &C, entity_id: i64) -> Result<Vec<i64>, DbErr> {
    let rows = all(db, "SELECT group_id FROM memberships WHERE entity_id = ? ORDER BY group_id", vec![entity_id.into()]).await?;
    rows.iter().map(|r| col(r, 0)).collect()
}

/// A group's entities ordered by (kind, key), after the `after` cursor.
pub async fn list_members<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    kinds: &[Kind],
    after: Option<(i32, String)>,
    limit: u64,
) -> Result<Vec<Entity>, DbErr> {
    let (after_kind, after_key) = after.unwrap_or((0, String::new()));
    let mut values: Vec<Value> = vec![group_id.into(), after_kind.into(), after_key.into()];
    let kind_filter = if kinds.is_empty() {
        String::new()
    } else {
        values.extend(kinds.iter().map(|k| Value::from(k.number())));
        format!(" AND kind IN ({})", placeholders(kinds.len()))
    };
    values.push(Value::from(limit as i64));
    // The page of memberships first, then the join: see `bulk::manifest_page`.
    let rows = all(
        db,
        &format!(
            "{SELECT} JOIN (SELECT kind, key, entity_id FROM memberships WHERE group_id = ? \
             AND (kind, key) > (?, ?){kind_filter} ORDER BY kind, key LIMIT ?) m ON m.entity_id = e.id ORDER BY m.kind, m.key"
        ),
        values,
    )
    .await?;
    let mut out = rows.iter().map(read).collect::<Result<Vec<_>, _>>()?;
    fill_groups(db, &mut out).await?;
    Ok(out)
}

/// Replaces payload and references; returns true when the content changed.
pub async fn update_content<C: ConnectionTrait>(
    db: &C,
    id: i64,
    payload: &Json,
    refs: &[crate::domain::EntityRef],
    now: i64,
) -> Result<bool, DbErr> {
    let hash = content_hash(payload, refs);
    let n = exec(
        db,
        "UPDATE entities SET payload = ?, refs = ?, content_hash = ?, updated_at = ? WHERE id = ? AND content_hash <> ?",
        vec![payload.as_str().into(), refs_to_json(refs).into(), hash.as_str().into(), now.into(), id.into(), hash.as_str().into()],
    )
    .await?;
    Ok(n > 0)
}

pub async fn delete<C: ConnectionTrait>(db: &C, id: i64) -> Result<(), DbErr> {
    exec(db, "DELETE FROM entities WHERE id = ?", vec![id.into()]).await?;
    Ok(())
}

//! The bulk paths: import, key manifests, key lookups and merge operations (the
//! environment copy is in `copy`). All set-based: multi-row statements chunked under the
//! bind-parameter limits, `INSERT … SELECT` and `ON CONFLICT DO NOTHING`.

use std::collections::HashMap;

use ferry_kit::db::{placeholders, rows_per_chunk};
use sea_orm::{ConnectionTrait, DbErr, Value};

use super::sharing::sharing_allowed_sql;
use super::{all, all_for_ids, col, corrupt, entities, exec, exec_for_pairs};
use crate::domain::{EntityKey, EntityRef, Kind, ManifestEntry, NewEntity, Sharing, refs_from_json};

/// `(?, ?), (?, ?), …` for `rows` rows of `cols` columns.
fn tuples(rows: usize, cols: usize) -> String {
    let one = format!("({})", placeholders(cols));
    vec![one; rows].join(", ")
}

/// Inserts a batch of new entities into a group. Returns the (kind, key) pairs the group
/// already held (nothing is valid then: the caller rolls back).
pub async fn import<C: ConnectionTrait>(
    db: &C,
    env_id: i64,
    group_id: i64,
    batch: &[NewEntity],
    now: i64,
) -> Result<Vec<EntityRef>, DbErr> {
    let mut conflicts = Vec::new();
    for chunk in batch.chunks(rows_per_chunk(9)) {
        let values: Vec<Value> = chunk.iter().flat_map(|e| entities::row_values(env_id, e, now)).collect();
        let rows = all(
            db,
            &format!("INSERT INTO entities ({}) VALUES {} RETURNING id, kind, key", entities::INSERT_COLUMNS, tuples(chunk.len(), 9)),
            values,
        )
        .await?;
        let mut members = Vec::with_capacity(rows.len() * 4);
        for r in &rows {
            members.extend([
                Value::from(group_id),
                Value::from(col::<i32>(r, 1)?),
                Value::from(col::<String>(r, 2)?),
                Value::from(col::<i64>(r, 0)?),
            ]);
        }
        let inserted = all(
            db,
            &format!(
                "INSERT INTO memberships (group_id, kind, key, entity_id) VALUES {} ON CONFLICT DO NOTHING RETURNING kind, key",
                tuples(rows.len(), 4)
            ),
            members,
        )
        .await?;
        if inserted.len() < chunk.len() {
            let mut got: HashMap<(i32, String), usize> = HashMap::new();
            for r in &inserted {
                *got.entry((col(r, 0)?, col(r, 1)?)).or_default() += 1;
            }
            for e in chunk {
                match got.get_mut(&(e.kind.number(), e.key.as_str().to_owned())) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => conflicts.push(EntityRef { kind: e.kind, key: e.key.clone() }),
                }
            }
            return Ok(conflicts);
        }
    }
    Ok(conflicts)
}

/// Filters of a manifest or export: kinds and keys (empty = all).
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub kinds: Vec<Kind>,
    pub keys: Vec<EntityKey>,
}

/// One page of a group's key manifest ordered by (kind, key), after `after`.
pub async fn manifest_page<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    filter: &KeyFilter,
    after: Option<&(i32, String)>,
    limit: u64,
) -> Result<Vec<ManifestEntry>, DbErr> {
    let (ak, akey) = after.cloned().unwrap_or((0, String::new()));
    let mut values: Vec<Value> = vec![group_id.into(), ak.into(), akey.into()];
    // The page of memberships is taken first (an ordered index range, whatever the
    // statistics say) and only then joined to entities, so a page costs its own rows even
    // on freshly bulk-loaded tables that PostgreSQL has not analysed yet.
    let mut page = String::from("SELECT kind, key, entity_id FROM memberships WHERE group_id = ? AND (kind, key) > (?, ?)");
    if !filter.kinds.is_empty() {
        page.push_str(&format!(" AND kind IN ({})", placeholders(filter.kinds.len())));
        values.extend(filter.kinds.iter().map(|k| Value::from(k.number())));
    }
    if !filter.keys.is_empty() {
        page.push_str(&format!(" AND key IN ({})", placeholders(filter.keys.len())));
        values.extend(filter.keys.iter().map(|k| Value::from(k.as_str())));
    }
    page.push_str(" ORDER BY kind, key LIMIT ?");
    values.push(Value::from(limit as i64));
    // Then one index probe per row. On PostgreSQL the LATERAL subqueries with their
    // `OFFSET 0` fence force that plan: a plain join is hashed against a scan of every
    // entity of every group when the planner misjudges the page (20 ms against 80 ms a
    // page at 220k entities, and the gap grows with the table). Hash and sharing come from
    // `entities_heads`, references from `entities_with_refs` (only entities that have
    // some), so the wide rows are read only for references.
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!(
            "SELECT m.kind, m.key, e.content_hash, e.sharing, m.entity_id, COALESCE(r.refs, '[]') FROM ({page}) m, LATERAL \
             (SELECT content_hash, sharing FROM entities WHERE id = m.entity_id OFFSET 0) e LEFT JOIN LATERAL \
             (SELECT refs FROM entities WHERE id = m.entity_id AND refs <> '[]' OFFSET 0) r ON true ORDER BY m.kind, m.key"
        ),
        _ => format!(
            "SELECT m.kind, m.key, e.content_hash, e.sharing, m.entity_id, e.refs FROM ({page}) m \
             JOIN entities e ON e.id = m.entity_id ORDER BY m.kind, m.key"
        ),
    };
    let rows = all(db, &sql, values).await?;
    rows.iter()
        .map(|r| {
            let kind: i32 = col(r, 0)?;
            let sharing: i32 = col(r, 3)?;
            Ok(ManifestEntry {
                kind: Kind::from_number(kind).map_err(|_| corrupt("kind", kind))?,
                key: EntityKey::from_stored(col(r, 1)?),
                content_hash: col(r, 2)?,
                sharing: Sharing::from_number(sharing).ok_or_else(|| corrupt("sharing", sharing))?,
                entity_id: col(r, 4)?,
                references: refs_from_json(&col::<String>(r, 5)?),
            })
        })
        .collect()
}

/// What a group holds under each of `refs`: entity id and content hash.
pub async fn members_at<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    refs: &[(Kind, String)],
) -> Result<HashMap<(Kind, String), (i64, String)>, DbErr> {
    let mut out = HashMap::new();
    for chunk in refs.chunks(1000) {
        let pairs = chunk.iter().flat_map(|(k, key)| [Value::from(k.number()), Value::from(key.as_str())]);
        // One primary-key probe per pair. On PostgreSQL a LATERAL subquery fenced with
        // `OFFSET 0` (or the planner flattens it back into a join) forces that plan: as a
        // join, the group is walked whole for every batch (a hash join over a scan of its
        // memberships: 45 ms against 2 ms for 1000 keys at 150k members).
        // Placeholders are numbered in the order they appear, so the values follow the text.
        let (sql, values): (String, Vec<Value>) = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => (
                format!(
                    "SELECT v.column1, v.column2, x.entity_id, x.content_hash FROM (VALUES {}) AS v, LATERAL \
                     (SELECT m.entity_id, e.content_hash FROM memberships m JOIN entities e ON e.id = m.entity_id \
                      WHERE m.group_id = ? AND m.kind = v.column1 AND m.key = v.column2 OFFSET 0) x",
                    tuples(chunk.len(), 2)
                ),
                pairs.chain([Value::from(group_id)]).collect(),
            ),
            _ => (
                format!(
                    "SELECT m.kind, m.key, m.entity_id, e.content_hash FROM memberships m JOIN entities e ON e.id = m.entity_id \
                     WHERE m.group_id = ? AND (m.kind, m.key) IN (VALUES {})",
                    tuples(chunk.len(), 2)
                ),
                std::iter::once(Value::from(group_id)).chain(pairs).collect(),
            ),
        };
        let rows = all(db, &sql, values).await?;
        for r in &rows {
            let kind: i32 = col(r, 0)?;
            out.insert((Kind::from_number(kind).map_err(|_| corrupt("kind", kind))?, col(r, 1)?), (col(r, 2)?, col(r, 3)?));
        }
    }
    Ok(out)
}

/// What merge operations need to know of an entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityInfo {
    pub env_id: i64,
    pub kind: Kind,
    pub key: String,
    pub sharing: Sharing,
    pub content_hash: String,
    /// Groups the entity is linked to.
    pub links: i64,
}

/// What operations need to know of `ids`; link counts only for `count_links_of` (the
/// unlink targets: counting every entity's links would cost a lookup per row).
pub async fn entity_infos<C: ConnectionTrait>(db: &C, ids: &[i64], count_links_of: &[i64]) -> Result<HashMap<i64, EntityInfo>, DbErr> {
    let mut out = HashMap::new();
    let sql = "SELECT e.id, e.environment_id, e.kind, e.key, e.sharing, e.content_hash FROM entities e WHERE e.id IN ({ids})";
    for r in &all_for_ids(db, sql, ids).await? {
        let kind: i32 = col(r, 2)?;
        let sharing: i32 = col(r, 4)?;
        out.insert(
            col(r, 0)?,
            EntityInfo {
                env_id: col(r, 1)?,
                kind: Kind::from_number(kind).map_err(|_| corrupt("kind", kind))?,
                key: col(r, 3)?,
                sharing: Sharing::from_number(sharing).ok_or_else(|| corrupt("sharing", sharing))?,
                content_hash: col(r, 5)?,
                links: 0,
            },
        );
    }
    let sql = "SELECT entity_id, COUNT(*) FROM memberships WHERE entity_id IN ({ids}) GROUP BY entity_id";
    for r in &all_for_ids(db, sql, count_links_of).await? {
        if let Some(info) = out.get_mut(&col::<i64>(r, 0)?) {
            info.links = col(r, 1)?;
        }
    }
    Ok(out)
}

/// Which of the entities named a bulk copy or link takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// All of them: the caller classified them already.
    All,
    /// Only those a merge batch would deliver: of the recipient's environment, duplicated
    /// (a copy) or shared (a link), under a key the recipient does not hold.
    Absent { env_id: i64 },
}

impl Take {
    /// The condition on `entities` (unaliased) and its values, for a copy or a link.
    fn filter(self, backend: sea_orm::DbBackend, group_id: i64, copy: bool) -> (String, Vec<Value>) {
        match self {
            Take::All => (String::new(), Vec::new()),
            Take::Absent { env_id } => {
                let sharing = if copy { Sharing::Duplicated } else { Sharing::Shared };
                let mut sql = format!(" AND environment_id = ? AND sharing = ? AND {}", sharing_allowed_sql(""));
                let mut values = vec![Value::from(env_id), Value::from(sharing.number())];
                if copy {
                    // A link needs no such check: its insert skips a held key (ON CONFLICT).
                    // On PostgreSQL `OFFSET 0` keeps the check a primary-key probe per row:
                    // as an anti-join, a generic plan hashes the whole recipient (or, for
                    // a new group, every membership) on every batch: a 100k clone took 61 s.
                    let fence = if backend == sea_orm::DbBackend::Postgres { " OFFSET 0" } else { "" };
                    sql.push_str(&format!(
                        " AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.group_id = ? AND m.kind = entities.kind \
                         AND m.key = entities.key{fence})"
                    ));
                    values.push(Value::from(group_id));
                }
                (sql, values)
            }
        }
    }
}

/// Copies duplicated source entities as new instances of the recipient group (those
/// `take` takes). Returns source id → new id.
pub async fn copy_into<C: ConnectionTrait>(
    db: &C,
    group_id: i64,
    sources: &[i64],
    now: i64,
    take: Take,
) -> Result<HashMap<i64, i64>, DbErr> {
    let mut out = HashMap::with_capacity(sources.len());
    for chunk in sources.chunks(1000) {
        let (filter, filter_values) = take.filter(db.get_database_backend(), group_id, true);
        let copy = format!(
            "INSERT INTO entities (environment_id, kind, key, sharing, payload, refs, content_hash, copied_from, created_at, updated_at) \
             SELECT environment_id, kind, key, sharing, payload, refs, content_hash, id, ?, ? FROM entities WHERE id IN ({}){filter} \
             RETURNING id, copied_from, kind, key",
            placeholders(chunk.len())
        );
        let mut values: Vec<Value> = vec![now.into(), now.into()];
        values.extend(chunk.iter().map(|i| Value::from(*i)));
        values.extend(filter_values);
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            // The copies' memberships in the same statement: no round trip of the new rows
            // and no VALUES list of four parameters a row to plan (20k copies: 1.03 s to
            // 0.86 s of statement time).
            values.push(group_id.into());
            let rows = all(
                db,
                &format!(
                    "WITH copied AS ({copy}), joined AS (INSERT INTO memberships (group_id, kind, key, entity_id) \
                     SELECT ?, kind, key, id FROM copied) SELECT id, copied_from FROM copied"
                ),
                values,
            )
            .await?;
            for r in &rows {
                out.insert(col(r, 1)?, col(r, 0)?);
            }
            continue;
        }
        let rows = all(db, &copy, values).await?;
        let mut members = Vec::with_capacity(rows.len() * 4);
        for r in &rows {
            let new_id: i64 = col(r, 0)?;
            out.insert(col(r, 1)?, new_id);
            members.extend([Value::from(group_id), Value::from(col::<i32>(r, 2)?), Value::from(col::<String>(r, 3)?), Value::from(new_id)]);
        }
        if !rows.is_empty() {
            exec(db, &format!("INSERT INTO memberships (group_id, kind, key, entity_id) VALUES {}", tuples(rows.len(), 4)), members)
                .await?;
        }
    }
    Ok(out)
}

/// Links shared entities to a group (those `take` takes; a key the group holds is
/// skipped). Returns the ids linked.
pub async fn link_into<C: ConnectionTrait>(db: &C, group_id: i64, ids: &[i64], take: Take) -> Result<Vec<i64>, DbErr> {
    let mut linked = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let (filter, filter_values) = take.filter(db.get_database_backend(), group_id, false);
        let mut values: Vec<Value> = vec![group_id.into()];
        values.extend(chunk.iter().map(|i| Value::from(*i)));
        values.extend(filter_values);
        let rows = all(
            db,
            &format!(
                "INSERT INTO memberships (group_id, kind, key, entity_id) SELECT ?, kind, key, id FROM entities \
                 WHERE id IN ({}){filter} ON CONFLICT DO NOTHING RETURNING entity_id",
                placeholders(chunk.len())
            ),
            values,
        )
        .await?;
        for r in &rows {
            linked.push(col(r, 0)?);
        }
    }
    Ok(linked)
}

/// Overwrites each target's payload, references and hash with its source's, keeping
/// what it replaces (`prior::keep`) for a revert.
pub async fn overwrite<C: ConnectionTrait>(db: &C, pairs: &[(i64, i64)], now: i64) -> Result<(), DbErr> {
    super::prior::keep(db, pairs, now).await?;
    let sql = "UPDATE entities SET payload = s.payload, refs = s.refs, content_hash = s.content_hash, updated_at = ? \
               FROM (VALUES {pairs}) AS v, entities s WHERE s.id = v.column1 AND entities.id = v.column2";
    exec_for_pairs(db, sql, now, pairs).await
}

pub async fn delete_entities<C: ConnectionTrait>(db: &C, ids: &[i64]) -> Result<(), DbErr> {
    for chunk in ids.chunks(1000) {
        exec(
            db,
            &format!("DELETE FROM entities WHERE id IN ({})", placeholders(chunk.len())),
            chunk.iter().map(|i| Value::from(*i)).collect(),
        )
        .await?;
    }
    Ok(())
}

pub async fn unlink_from<C: ConnectionTrait>(db: &C, group_id: i64, ids: &[i64]) -> Result<(), DbErr> {
    for chunk in ids.chunks(1000) {
        let mut values: Vec<Value> = vec![group_id.into()];
        values.extend(chunk.iter().map(|i| Value::from(*i)));
        exec(db, &format!("DELETE FROM memberships WHERE group_id = ? AND entity_id IN ({})", placeholders(chunk.len())), values).await?;
    }
    Ok(())
}

pub use ferry_kit::db::ANALYZE_AFTER_ROWS;

/// Refreshes the planner statistics of the tables bulk paths fill, in the same
/// transaction (PostgreSQL only).
pub async fn analyze<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    ferry_kit::db::analyze(db, "entities, memberships").await
}

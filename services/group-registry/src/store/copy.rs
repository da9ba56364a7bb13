//! The environment copy a refresh runs: the destination's groups, entities, links,
//! projects and configuration replaced by the source's, set-based, as its profile says
//! (`domain::profile`: what the destination keeps, what the source leaves out, what is
//! masked). Restore points are the same copy, with no profile, into and out of a hidden
//! environment (`store::restore_points`).
//!
//! With a profile: the destination's preserved entities are marked in a temporary table
//! (`copy_kept`) and everything else of the destination is removed; groups that still
//! hold a preserved entity stay and take the source's content beside it. Entities of a
//! masked kind are read from the source in batches, masked in this process and only then
//! inserted: no unmasked value is written to the destination. Everything else is
//! `INSERT … SELECT`.

use std::collections::{BTreeMap, BTreeSet};

use ferry_kit::db::{placeholders, rows_per_chunk};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Value};

use super::bulk::{ANALYZE_AFTER_ROWS, analyze};
use super::{all, col, exec, one};
use crate::domain::profile::{CopyProfile, MASKING_KEY_BYTES, Pattern, Selector, mask_payload};
use crate::domain::{Copied, CopyCounts, KindCounts, ProfileCounts, stored_content_hash};

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

/// `col IN (?, …)` over `ids`, or `when_empty` (a condition) when there are none.
fn in_list(col: &str, ids: &[i64], when_empty: &str) -> (String, Vec<Value>) {
    if ids.is_empty() {
        return (when_empty.to_owned(), vec![]);
    }
    (format!("{col} IN ({})", placeholders(ids.len())), ids.iter().map(|i| Value::from(*i)).collect())
}

/// `col` matches `p`, in the backend's case-sensitive pattern syntax.
fn matches_sql(backend: DbBackend, col: &str, p: &Pattern) -> (String, Value) {
    match backend {
        DbBackend::Postgres => (format!("{col} LIKE ? ESCAPE '\\'"), p.like().into()),
        _ => (format!("{col} GLOB ?"), p.glob().into()),
    }
}

/// `(kind = ? AND key matches) OR …` over `selectors` (alias `a`), or None when empty.
fn selected_sql(backend: DbBackend, a: &str, selectors: &[Selector]) -> Option<(String, Vec<Value>)> {
    if selectors.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    let mut values = Vec::new();
    for s in selectors {
        let (m, v) = matches_sql(backend, &format!("{a}.key"), &s.key);
        parts.push(format!("({a}.kind = ? AND {m})"));
        values.extend([Value::from(s.kind.number()), v]);
    }
    Some((format!("({})", parts.join(" OR ")), values))
}

async fn names<C: ConnectionTrait>(db: &C, table: &str, env: i64) -> Result<Vec<(i64, String)>, DbErr> {
    let rows = all(db, &format!("SELECT id, name FROM {table} WHERE environment_id = ? ORDER BY id"), vec![env.into()]).await?;
    rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
}

async fn by_kind<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<BTreeMap<i32, i64>, DbErr> {
    all(db, sql, values).await?.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
}

/// The destination's secret masking key (HMAC key of pseudonyms and fakes), made on
/// first use and kept with the environment.
pub async fn masking_key<C: ConnectionTrait>(db: &C, env: i64) -> Result<Vec<u8>, DbErr> {
    let read = |row: Option<sea_orm::QueryResult>| -> Result<Option<Vec<u8>>, DbErr> {
        row.map(|r| col::<String>(&r, 0))
            .transpose()?
            .map(|h| hex::decode(h).map_err(|e| DbErr::Custom(format!("masking key: {e}"))))
            .transpose()
    };
    let get = "SELECT secret FROM masking_keys WHERE environment_id = ?";
    if let Some(key) = read(one(db, get, vec![env.into()]).await?)? {
        return Ok(key);
    }
    let fresh: [u8; MASKING_KEY_BYTES] = rand::random();
    exec(
        db,
        "INSERT INTO masking_keys (environment_id, secret) VALUES (?, ?) ON CONFLICT DO NOTHING",
        vec![env.into(), hex::encode(fresh).into()],
    )
    .await?;
    read(one(db, get, vec![env.into()]).await?)?.ok_or_else(|| DbErr::Custom("masking key not kept".into()))
}

/// Replaces everything the destination environment holds (groups, entities, links,
/// projects, configuration) with a copy of the source's, as `profile` says. Revisions in
/// the destination only grow, so a plan made before the copy is stale after it.
pub async fn copy_environment<C: ConnectionTrait>(
    db: &C,
    src: i64,
    dst: i64,
    purpose: Purpose,
    profile: &CopyProfile,
) -> Result<Copied, DbErr> {
    let backend = db.get_database_backend();
    let dst_groups_before = count(db, "SELECT COUNT(*) FROM groups WHERE environment_id = ?", dst).await?;
    let dst_entities_before = count(db, "SELECT COUNT(*) FROM entities WHERE environment_id = ?", dst).await?;
    let dst_projects_before = count(db, "SELECT COUNT(*) FROM projects WHERE environment_id = ?", dst).await?;
    let group_rev = count(db, "SELECT COALESCE(MAX(revision), 0) FROM groups WHERE environment_id = ?", dst).await?;
    let project_rev = count(db, "SELECT COALESCE(MAX(revision), 0) FROM projects WHERE environment_id = ?", dst).await?;

    // What the destination keeps.
    let preserves = profile.preserves();
    let (mut kept_groups, mut kept_projects, mut kept_names) = (Vec::new(), Vec::new(), BTreeSet::new());
    let mut preserved_by_kind = BTreeMap::new();
    if preserves {
        let projects = names(db, "projects", dst).await?;
        kept_projects =
            projects.iter().filter(|(_, n)| profile.preserve_projects.iter().any(|p| p.matches(n))).map(|(id, _)| *id).collect();
        let mut groups: BTreeSet<i64> = BTreeSet::new();
        for (id, name) in names(db, "groups", dst).await? {
            if profile.preserve_groups.iter().any(|p| p.matches(&name)) {
                groups.insert(id);
                kept_names.insert(name);
            }
        }
        let (cond, values) = in_list("project_id", &kept_projects, "1 = 0");
        for r in all(
            db,
            &format!("SELECT DISTINCT pg.group_id, g.name FROM project_groups pg JOIN groups g ON g.id = pg.group_id WHERE {cond}"),
            values,
        )
        .await?
        {
            groups.insert(col(&r, 0)?);
            kept_names.insert(col(&r, 1)?);
        }
        kept_groups = groups.into_iter().collect();
        exec(db, "CREATE TEMP TABLE IF NOT EXISTS copy_kept (id BIGINT PRIMARY KEY)", vec![]).await?;
        exec(db, "DELETE FROM copy_kept", vec![]).await?;
        let (held, mut values) = in_list("m.group_id", &kept_groups, "1 = 0");
        let in_kept = format!("e.id IN (SELECT m.entity_id FROM memberships m WHERE {held})");
        let selected = match selected_sql(backend, "e", &profile.preserve_entities) {
            Some((sql, v)) => {
                values.extend(v);
                sql
            }
            None => "1 = 0".into(),
        };
        exec(
            db,
            &format!("INSERT INTO copy_kept (id) SELECT e.id FROM entities e WHERE e.environment_id = ? AND ({in_kept} OR {selected})"),
            [vec![Value::from(dst)], values].concat(),
        )
        .await?;
        // A kept entity copied by an earlier refresh must not be taken for a copy of this one.
        exec(db, "UPDATE entities SET copied_from = NULL WHERE id IN (SELECT id FROM copy_kept)", vec![]).await?;
        preserved_by_kind =
            by_kind(db, "SELECT e.kind, COUNT(*) FROM entities e JOIN copy_kept k ON k.id = e.id GROUP BY e.kind", vec![]).await?;
    }
    let preserved_entities: i64 = preserved_by_kind.values().sum();

    // Clear the rest.
    if preserves {
        let (not_kept, values) = in_list("id", &kept_projects, "1 = 0");
        exec(db, &format!("DELETE FROM projects WHERE environment_id = ? AND NOT ({not_kept})"), [vec![Value::from(dst)], values].concat())
            .await?;
        let (kept, values) = in_list("id", &kept_groups, "1 = 0");
        exec(
            db,
            &format!(
                "DELETE FROM memberships WHERE group_id IN (SELECT id FROM groups WHERE environment_id = ? AND NOT ({kept})) \
                 AND entity_id NOT IN (SELECT id FROM copy_kept)"
            ),
            [vec![Value::from(dst)], values.clone()].concat(),
        )
        .await?;
        exec(db, "DELETE FROM entities WHERE environment_id = ? AND id NOT IN (SELECT id FROM copy_kept)", vec![dst.into()]).await?;
        exec(
            db,
            &format!(
                "DELETE FROM groups WHERE environment_id = ? AND NOT ({kept}) \
                 AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.group_id = groups.id)"
            ),
            [vec![Value::from(dst)], values.clone()].concat(),
        )
        .await?;
        // Groups that stay for a kept entity take the source's content: they changed.
        exec(
            db,
            &format!("UPDATE groups SET revision = revision + ? + 1 WHERE environment_id = ? AND NOT ({kept})"),
            [vec![Value::from(group_rev), Value::from(dst)], values].concat(),
        )
        .await?;
    } else {
        clear_environment(db, dst).await?;
    }

    // What the source gives: its groups not excluded (linkable), of those the ones whose
    // name the destination does not keep (copied).
    let src_groups = names(db, "groups", src).await?;
    let linkable: Vec<(i64, String)> =
        src_groups.iter().filter(|(_, n)| !profile.exclude_groups.iter().any(|p| p.matches(n))).cloned().collect();
    let copied_groups: Vec<i64> = linkable.iter().filter(|(_, n)| !kept_names.contains(n)).map(|(id, _)| *id).collect();
    let groups_filtered = copied_groups.len() < src_groups.len();
    let linkable_ids: Vec<i64> = linkable.iter().map(|(id, _)| *id).collect();

    // A time column as copied: the source's, or `now` bound as a parameter.
    let (created, updated, now) = match purpose {
        Purpose::Refresh(now) => ("?", "?", vec![Value::from(now)]),
        Purpose::Keep | Purpose::Restore => ("created_at", "updated_at", vec![]),
    };
    let (group_filter, group_values) =
        if groups_filtered { in_list("s.id", &copied_groups, "1 = 0") } else { ("1 = 1".to_owned(), vec![]) };
    let groups = exec(
        db,
        &format!(
            "INSERT INTO groups (environment_id, name, display_name, revision, created_at) \
             SELECT ?, s.name, s.display_name, s.revision + ?, {created} FROM groups s WHERE s.environment_id = ? AND {group_filter}{}",
            if preserves { " AND NOT EXISTS (SELECT 1 FROM groups d WHERE d.environment_id = ? AND d.name = s.name)" } else { "" }
        ),
        [
            vec![dst.into(), group_rev.into()],
            now.clone(),
            vec![src.into()],
            group_values,
            if preserves { vec![dst.into()] } else { vec![] },
        ]
        .concat(),
    )
    .await?;

    // Which source entities are copied (alias s).
    let mut filter = vec!["s.environment_id = ?".to_owned()];
    let mut filter_values = vec![Value::from(src)];
    if !profile.exclude_kinds.is_empty() {
        filter.push(format!("s.kind NOT IN ({})", placeholders(profile.exclude_kinds.len())));
        filter_values.extend(profile.exclude_kinds.iter().map(|k| Value::from(k.number())));
    }
    if let Some((sql, v)) = selected_sql(backend, "s", &profile.exclude_entities) {
        filter.push(format!("NOT {sql}"));
        filter_values.extend(v);
    }
    if groups_filtered || preserves {
        // Held by a copied group, at a key the destination's group does not keep.
        let (copied, v) = in_list("m.group_id", &copied_groups, "1 = 0");
        filter.push(format!(
            "EXISTS (SELECT 1 FROM memberships m JOIN groups sg ON sg.id = m.group_id \
             JOIN groups ng ON ng.environment_id = ? AND ng.name = sg.name \
             WHERE m.entity_id = s.id AND {copied}{})",
            if preserves {
                " AND NOT EXISTS (SELECT 1 FROM memberships d WHERE d.group_id = ng.id AND d.kind = m.kind AND d.key = m.key)"
            } else {
                ""
            }
        ));
        filter_values.push(dst.into());
        filter_values.extend(v);
    }
    let masked_kinds = profile.masked_kinds();
    let mut plain = filter.clone();
    let mut plain_values = filter_values.clone();
    if !masked_kinds.is_empty() {
        plain.push(format!("s.kind NOT IN ({})", placeholders(masked_kinds.len())));
        plain_values.extend(masked_kinds.iter().map(|k| Value::from(k.number())));
    }
    let mut entities = exec(
        db,
        &format!(
            "INSERT INTO entities (environment_id, kind, key, sharing, payload, refs, content_hash, copied_from, created_at, updated_at) \
             SELECT ?, s.kind, s.key, s.sharing, s.payload, s.refs, s.content_hash, s.id, s.created_at, {updated} FROM entities s WHERE {}",
            plain.join(" AND ")
        ),
        [vec![dst.into()], now.clone(), plain_values].concat(),
    )
    .await?;
    let mut masked_by_kind: BTreeMap<i32, i64> = BTreeMap::new();
    if !masked_kinds.is_empty() {
        let key = masking_key(db, dst).await?;
        let now_value = match purpose {
            Purpose::Refresh(now) => Some(now),
            Purpose::Keep | Purpose::Restore => None,
        };
        filter.push(format!("s.kind IN ({})", placeholders(masked_kinds.len())));
        filter_values.extend(masked_kinds.iter().map(|k| Value::from(k.number())));
        let select = format!(
            "SELECT s.id, s.kind, s.key, s.sharing, s.payload, s.refs, s.created_at, s.updated_at FROM entities s \
             WHERE {} AND s.id > ? ORDER BY s.id LIMIT {MASK_BATCH}",
            filter.join(" AND ")
        );
        let rules: BTreeMap<i32, Vec<_>> = masked_kinds.iter().map(|k| (k.number(), profile.rules_of(*k))).collect();
        let mut after = 0i64;
        loop {
            let rows = all(db, &select, [filter_values.clone(), vec![Value::from(after)]].concat()).await?;
            let Some(last) = rows.last() else { break };
            after = col(last, 0)?;
            let mut values = Vec::with_capacity(rows.len() * 10);
            for r in &rows {
                let (id, kind, payload, refs): (i64, i32, String, String) = (col(r, 0)?, col(r, 1)?, col(r, 4)?, col(r, 5)?);
                let (payload, masked) = mask_payload(&payload, rules.get(&kind).map_or(&[][..], Vec::as_slice), &key);
                if masked {
                    *masked_by_kind.entry(kind).or_default() += 1;
                }
                let hash = stored_content_hash(&payload, &refs);
                values.extend([
                    Value::from(dst),
                    Value::from(kind),
                    Value::from(col::<String>(r, 2)?),
                    Value::from(col::<i32>(r, 3)?),
                    Value::from(payload),
                    Value::from(refs),
                    Value::from(hash),
                    Value::from(id),
                    Value::from(col::<i64>(r, 6)?),
                    Value::from(now_value.map_or_else(|| col::<i64>(r, 7), Ok)?),
                ]);
            }
            for chunk in values.chunks(rows_per_chunk(10) * 10) {
                let n = chunk.len() / 10;
                entities += exec(
                    db,
                    &format!(
                        "INSERT INTO entities (environment_id, kind, key, sharing, payload, refs, content_hash, copied_from, created_at, updated_at) VALUES {}",
                        vec![format!("({})", placeholders(10)); n].join(", ")
                    ),
                    chunk.to_vec(),
                )
                .await?;
            }
        }
    }

    let (link_filter, link_values) = if groups_filtered { in_list("sg.id", &copied_groups, "1 = 0") } else { ("1 = 1".to_owned(), vec![]) };
    let links = exec(
        db,
        &format!(
            "INSERT INTO memberships (group_id, kind, key, entity_id) \
             SELECT ng.id, m.kind, m.key, ne.id FROM memberships m \
             JOIN groups sg ON sg.id = m.group_id AND sg.environment_id = ? AND {link_filter} \
             JOIN groups ng ON ng.environment_id = ? AND ng.name = sg.name \
             JOIN entities ne ON ne.environment_id = ? AND ne.copied_from = m.entity_id{}",
            if preserves {
                " WHERE NOT EXISTS (SELECT 1 FROM memberships d WHERE d.group_id = ng.id AND d.kind = m.kind AND d.key = m.key)"
            } else {
                ""
            }
        ),
        [vec![Value::from(src)], link_values, vec![dst.into(), dst.into()]].concat(),
    )
    .await?;

    // Projects: the source's not kept by name, with a group that is not excluded.
    let src_projects = names(db, "projects", src).await?;
    let kept_project_names: BTreeSet<String> =
        if kept_projects.is_empty() { BTreeSet::new() } else { names(db, "projects", dst).await?.into_iter().map(|(_, n)| n).collect() };
    let mut with_group: BTreeSet<i64> = BTreeSet::new();
    if linkable.len() < src_groups.len() {
        let (cond, v) = in_list("pg.group_id", &linkable_ids, "1 = 0");
        for r in all(db, &format!("SELECT DISTINCT pg.project_id FROM project_groups pg WHERE {cond}"), v).await? {
            with_group.insert(col(&r, 0)?);
        }
    }
    let copied_projects: Vec<i64> = src_projects
        .iter()
        .filter(|(id, n)| !kept_project_names.contains(n) && (linkable.len() == src_groups.len() || with_group.contains(id)))
        .map(|(id, _)| *id)
        .collect();
    let projects_filtered = copied_projects.len() < src_projects.len();
    let (project_filter, project_values) =
        if projects_filtered { in_list("sp.id", &copied_projects, "1 = 0") } else { ("1 = 1".to_owned(), vec![]) };
    let (sp_filter, sp_values) = if projects_filtered { in_list("s.id", &copied_projects, "1 = 0") } else { ("1 = 1".to_owned(), vec![]) };
    let projects = exec(
        db,
        &format!(
            "INSERT INTO projects (environment_id, name, display_name, revision, created_at) \
             SELECT ?, s.name, s.display_name, s.revision + ?, {created} FROM projects s WHERE s.environment_id = ? AND {sp_filter}"
        ),
        [vec![dst.into(), project_rev.into()], now, vec![src.into()], sp_values].concat(),
    )
    .await?;
    let (linkable_filter, linkable_values) =
        if linkable.len() < src_groups.len() { in_list("sg.id", &linkable_ids, "1 = 0") } else { ("1 = 1".to_owned(), vec![]) };
    exec(
        db,
        &format!(
            "INSERT INTO project_groups (project_id, position, group_id) \
             SELECT np.id, pg.position, ng.id FROM project_groups pg \
             JOIN projects sp ON sp.id = pg.project_id AND sp.environment_id = ? AND {project_filter} \
             JOIN projects np ON np.environment_id = ? AND np.name = sp.name \
             JOIN groups sg ON sg.id = pg.group_id AND {linkable_filter} \
             JOIN groups ng ON ng.environment_id = ? AND ng.name = sg.name"
        ),
        [vec![Value::from(src)], project_values.clone(), vec![dst.into()], linkable_values, vec![dst.into()]].concat(),
    )
    .await?;
    let config_items = exec(
        db,
        &format!(
            "INSERT INTO config_items (project_id, name, value, refs, updated_at) \
             SELECT np.id, c.name, c.value, c.refs, c.updated_at FROM config_items c \
             JOIN projects sp ON sp.id = c.project_id AND sp.environment_id = ? AND {project_filter} \
             JOIN projects np ON np.environment_id = ? AND np.name = sp.name"
        ),
        [vec![Value::from(src)], project_values.clone(), vec![dst.into()]].concat(),
    )
    .await?;
    exec(
        db,
        &format!(
            "INSERT INTO config_item_refs (project_id, item_name, position, kind, key) \
             SELECT np.id, r.item_name, r.position, r.kind, r.key FROM config_item_refs r \
             JOIN projects sp ON sp.id = r.project_id AND sp.environment_id = ? AND {project_filter} \
             JOIN projects np ON np.environment_id = ? AND np.name = sp.name"
        ),
        [vec![Value::from(src)], project_values, vec![dst.into()]].concat(),
    )
    .await?;
    if preserves {
        exec(db, "DELETE FROM copy_kept", vec![]).await?;
    }
    if entities as i64 >= ANALYZE_AFTER_ROWS && purpose != Purpose::Keep {
        analyze(db).await?;
    }

    let profile_counts = if *profile == CopyProfile::default() {
        ProfileCounts::default()
    } else {
        let source = by_kind(db, "SELECT kind, COUNT(*) FROM entities WHERE environment_id = ? GROUP BY kind", vec![src.into()]).await?;
        let copied = by_kind(
            db,
            "SELECT kind, COUNT(*) FROM entities WHERE environment_id = ? AND copied_from IS NOT NULL GROUP BY kind",
            vec![dst.into()],
        )
        .await?;
        let kinds: BTreeSet<i32> = source.keys().chain(preserved_by_kind.keys()).copied().collect();
        ProfileCounts {
            by_kind: kinds
                .into_iter()
                .map(|kind| {
                    let copied = copied.get(&kind).copied().unwrap_or(0);
                    KindCounts {
                        kind,
                        copied,
                        masked: masked_by_kind.get(&kind).copied().unwrap_or(0),
                        excluded: source.get(&kind).copied().unwrap_or(0) - copied,
                        preserved: preserved_by_kind.get(&kind).copied().unwrap_or(0),
                    }
                })
                .collect(),
            preserved_groups: kept_groups.len() as i64,
            preserved_projects: kept_projects.len() as i64,
            excluded_projects: (src_projects.len() - copied_projects.len()) as i64,
        }
    };
    Ok(Copied {
        counts: CopyCounts {
            groups: groups as i64,
            entities: entities as i64,
            links: links as i64,
            projects: projects as i64,
            config_items: config_items as i64,
            replaced_groups: dst_groups_before - kept_groups.len() as i64,
            replaced_entities: dst_entities_before - preserved_entities,
            replaced_projects: dst_projects_before - kept_projects.len() as i64,
        },
        profile: profile_counts,
    })
}

/// Rows of a masked kind read, masked and written at a time.
const MASK_BATCH: usize = 2000;

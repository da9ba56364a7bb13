//! Plans and their items. Items are written by the planner batch by batch (a `COPY` on
//! PostgreSQL, multi-row inserts on SQLite) and read back in `seq` order (which is
//! (kind, key) byte order, then outcome).

use ferry_kit::db::{placeholders, rows_per_chunk};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Value};

use super::{all, col, enum_col, exec, one, tuples};
use crate::domain::{Counts, GroupName, JobId, Kind, Outcome, Plan, PlanId, PlanItem, PlanState, PlanType, Sharing, Strategy};

const COLUMNS: &str = "id, plan_type, source, recipient, recipient_display_name, strategy, selection, source_revision, \
     recipient_revision, state, creates, links, skips, conflicts, missing_dependencies, source_entries, job_id, created_at, expire_at, items_pruned, created_by";

fn group(row: &QueryResult, i: usize) -> Result<GroupName, DbErr> {
    let s: String = col(row, i)?;
    GroupName::parse(&s).map_err(|e| DbErr::Custom(format!("stored group name: {e}")))
}

fn read(row: &QueryResult) -> Result<Plan, DbErr> {
    let selection: String = col(row, 6)?;
    Ok(Plan {
        id: PlanId(col(row, 0)?),
        plan_type: enum_col(row, 1, "plan type", PlanType::from_number)?,
        source: group(row, 2)?,
        recipient: group(row, 3)?,
        recipient_display_name: col(row, 4)?,
        strategy: enum_col(row, 5, "strategy", Strategy::from_number)?,
        selection: serde_json::from_str(&selection).map_err(|e| DbErr::Custom(format!("stored selection: {e}")))?,
        source_revision: col(row, 7)?,
        recipient_revision: col(row, 8)?,
        state: enum_col(row, 9, "plan state", PlanState::from_number)?,
        counts: Counts {
            creates: col(row, 10)?,
            links: col(row, 11)?,
            skips: col(row, 12)?,
            conflicts: col(row, 13)?,
            missing_dependencies: col(row, 14)?,
            source_entries: col(row, 15)?,
        },
        job: col::<Option<String>>(row, 16)?.map(JobId),
        created_at: col(row, 17)?,
        expire_at: col(row, 18)?,
        items_pruned: col::<i64>(row, 19)? != super::retention::KEPT,
        created_by: col(row, 20)?,
    })
}

pub async fn insert<C: ConnectionTrait>(db: &C, p: &Plan) -> Result<(), DbErr> {
    let selection = serde_json::to_string(&p.selection).map_err(|e| DbErr::Custom(e.to_string()))?;
    exec(
        db,
        &format!("INSERT INTO merge_plans ({COLUMNS}) VALUES ({})", placeholders(21)),
        vec![
            p.id.0.clone().into(),
            i64::from(p.plan_type.number()).into(),
            p.source.to_string().into(),
            p.recipient.to_string().into(),
            p.recipient_display_name.clone().into(),
            i64::from(p.strategy.number()).into(),
            selection.into(),
            p.source_revision.into(),
            p.recipient_revision.into(),
            i64::from(p.state.number()).into(),
            p.counts.creates.into(),
            p.counts.links.into(),
            p.counts.skips.into(),
            p.counts.conflicts.into(),
            p.counts.missing_dependencies.into(),
            p.counts.source_entries.into(),
            p.job.as_ref().map(|j| j.0.clone()).into(),
            p.created_at.into(),
            p.expire_at.into(),
            if p.items_pruned { super::retention::PRUNED } else { super::retention::KEPT }.into(),
            p.created_by.clone().into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &PlanId) -> Result<Option<Plan>, DbErr> {
    one(db, &format!("SELECT {COLUMNS} FROM merge_plans WHERE id = ?"), vec![id.0.clone().into()]).await?.map(|r| read(&r)).transpose()
}

/// Plans newest first, after the cursor `(created_at, id)`, filtered by stored state.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    source: Option<&str>,
    recipient: Option<&str>,
    states: &[PlanState],
    after: Option<&(i64, String)>,
    limit: u64,
    scope: ferry_kit::db::Scope<'_>,
) -> Result<Vec<Plan>, DbErr> {
    let mut sql = format!("SELECT {COLUMNS} FROM merge_plans WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    ferry_kit::db::and_in_scope(&mut sql, &mut values, ferry_kit::db::ScopedBy::Name("source"), scope);
    if let Some(s) = source {
        sql.push_str(" AND source = ?");
        values.push(s.into());
    }
    if let Some(r) = recipient {
        sql.push_str(" AND recipient = ?");
        values.push(r.into());
    }
    if !states.is_empty() {
        sql.push_str(&format!(" AND state IN ({})", placeholders(states.len())));
        values.extend(states.iter().map(|s| Value::from(i64::from(s.number()))));
    }
    if let Some((t, id)) = after {
        sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
        values.extend([Value::from(*t), Value::from(*t), Value::from(id.clone())]);
    }
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    values.push((limit as i64).into());
    all(db, &sql, values).await?.iter().map(read).collect()
}

/// Sets the state (and job) of a plan whose state is one of `from`; false when none matched.
pub async fn transition<C: ConnectionTrait>(
    db: &C,
    id: &PlanId,
    from: &[PlanState],
    to: PlanState,
    job: Option<&JobId>,
) -> Result<bool, DbErr> {
    let mut values: Vec<Value> = vec![i64::from(to.number()).into()];
    let mut sql = String::from("UPDATE merge_plans SET state = ?");
    if let Some(j) = job {
        sql.push_str(", job_id = ?");
        values.push(j.0.clone().into());
    }
    sql.push_str(&format!(" WHERE id = ? AND state IN ({})", placeholders(from.len())));
    values.push(id.0.clone().into());
    values.extend(from.iter().map(|s| Value::from(i64::from(s.number()))));
    Ok(exec(db, &sql, values).await? > 0)
}

const ITEM_COLUMNS: &str = "seq, kind, key, outcome, sharing, source_entity_id, recipient_entity_id, source_hash, recipient_hash, \
     missing_kind, missing_key";

async fn insert_items<C: ConnectionTrait>(db: &C, plan: &PlanId, items: &[PlanItem]) -> Result<(), DbErr> {
    for chunk in items.chunks(rows_per_chunk(12)) {
        let mut values = Vec::with_capacity(chunk.len() * 12);
        for i in chunk {
            let (mk, mkey) = i.missing.clone().map(|(k, key)| (i64::from(k.number()), key)).unwrap_or((0, String::new()));
            values.extend([
                Value::from(plan.0.clone()),
                i.seq.into(),
                i64::from(i.kind.number()).into(),
                i.key.clone().into(),
                i64::from(i.outcome.number()).into(),
                i64::from(i.sharing.number()).into(),
                i.source_entity_id.into(),
                i.recipient_entity_id.into(),
                i.source_hash.clone().into(),
                i.recipient_hash.clone().into(),
                mk.into(),
                mkey.into(),
            ]);
        }
        exec(db, &format!("INSERT INTO plan_items (plan_id, {ITEM_COLUMNS}) VALUES {}", tuples(chunk.len(), 12)), values).await?;
    }
    Ok(())
}

/// Writes items as one statement: `COPY` on PostgreSQL, multi-row inserts in one
/// transaction on SQLite.
pub async fn write_items(db: &DatabaseConnection, plan: &PlanId, items: &[&[PlanItem]]) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        let txn = ferry_kit::db::begin(db).await?;
        for part in items {
            insert_items(&txn, plan, part).await?;
        }
        return txn.commit().await;
    }
    let mut rows = ferry_kit::db::CopyRows::default();
    for i in items.iter().flat_map(|part| part.iter()) {
        let (mk, mkey) = i.missing.as_ref().map(|(k, key)| (i64::from(k.number()), key.as_str())).unwrap_or((0, ""));
        rows.text(&plan.0)
            .int(i.seq)
            .int(i64::from(i.kind.number()))
            .text(&i.key)
            .int(i64::from(i.outcome.number()))
            .int(i64::from(i.sharing.number()))
            .int(i.source_entity_id)
            .int(i.recipient_entity_id)
            .text(&i.source_hash)
            .text(&i.recipient_hash)
            .int(mk)
            .text(mkey)
            .end_row();
    }
    ferry_kit::db::copy_in(db, &format!("COPY plan_items (plan_id, {ITEM_COLUMNS}) FROM STDIN"), rows).await?;
    Ok(())
}

pub async fn delete_items<C: ConnectionTrait>(db: &C, plan: &PlanId) -> Result<(), DbErr> {
    exec(db, "DELETE FROM plan_items WHERE plan_id = ?", vec![plan.0.clone().into()]).await?;
    Ok(())
}

fn read_item(row: &QueryResult) -> Result<PlanItem, DbErr> {
    let mk: i64 = col(row, 9)?;
    let missing = match mk {
        0 => None,
        n => Some((i32::try_from(n).ok().and_then(Kind::from_number).ok_or_else(|| super::corrupt("kind", n))?, col(row, 10)?)),
    };
    Ok(PlanItem {
        seq: col(row, 0)?,
        kind: enum_col(row, 1, "kind", Kind::from_number)?,
        key: col(row, 2)?,
        outcome: enum_col(row, 3, "outcome", Outcome::from_number)?,
        sharing: enum_col(row, 4, "sharing", Sharing::from_number)?,
        source_entity_id: col(row, 5)?,
        recipient_entity_id: col(row, 6)?,
        source_hash: col(row, 7)?,
        recipient_hash: col(row, 8)?,
        missing,
    })
}

/// A page of items after `after_seq`, optionally only some outcomes and kinds.
pub async fn items<C: ConnectionTrait>(
    db: &C,
    plan: &PlanId,
    outcomes: &[Outcome],
    kinds: &[Kind],
    after_seq: i64,
    limit: u64,
) -> Result<Vec<PlanItem>, DbErr> {
    let mut sql = format!("SELECT {ITEM_COLUMNS} FROM plan_items WHERE plan_id = ? AND seq > ?");
    let mut values: Vec<Value> = vec![plan.0.clone().into(), after_seq.into()];
    if !outcomes.is_empty() {
        sql.push_str(&format!(" AND outcome IN ({})", placeholders(outcomes.len())));
        values.extend(outcomes.iter().map(|o| Value::from(i64::from(o.number()))));
    }
    if !kinds.is_empty() {
        sql.push_str(&format!(" AND kind IN ({})", placeholders(kinds.len())));
        values.extend(kinds.iter().map(|k| Value::from(i64::from(k.number()))));
    }
    sql.push_str(" ORDER BY seq LIMIT ?");
    values.push((limit as i64).into());
    all(db, &sql, values).await?.iter().map(read_item).collect()
}

/// Items of the given outcomes (missing dependencies excluded), for preconditions.
pub async fn first_items<C: ConnectionTrait>(db: &C, plan: &PlanId, outcome: Outcome, limit: u64) -> Result<Vec<PlanItem>, DbErr> {
    items(db, plan, &[outcome], &[], -1, limit).await
}

//! Mappings of integrations.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, col, exec, one, opt_text};
use crate::domain::{EnvName, IntegrationName, Mapping, MappingName};

const COLS: &str =
    "env, integration, id, display_name, target_env, bound_env, active, field_mapping_json, fenced, origin_env, created_at, updated_at";

/// Turns an insert into a replace by primary key.
const UPSERT: &str = " ON CONFLICT (env, integration, id) DO UPDATE SET \
    display_name = excluded.display_name, target_env = excluded.target_env, \
    bound_env = excluded.bound_env, active = excluded.active, \
    field_mapping_json = excluded.field_mapping_json, fenced = excluded.fenced, \
    origin_env = excluded.origin_env, created_at = excluded.created_at, updated_at = excluded.updated_at";

fn read(row: &QueryResult) -> Result<Mapping, DbErr> {
    let env: String = col(row, 0)?;
    let integration: String = col(row, 1)?;
    let id: String = col(row, 2)?;
    let target: String = col(row, 4)?;
    let bound: String = col(row, 5)?;
    let origin: Option<String> = col(row, 9)?;
    Ok(Mapping {
        name: MappingName::new(&env, &integration, &id),
        display_name: col(row, 3)?,
        target: EnvName::from_stored(&target),
        bound: EnvName::from_stored(&bound),
        active: col(row, 6)?,
        field_mapping_json: col(row, 7)?,
        fenced: col(row, 8)?,
        origin: origin.as_deref().map(EnvName::from_stored),
        created_at: col(row, 10)?,
        updated_at: col(row, 11)?,
    })
}

pub async fn find<C: ConnectionTrait>(db: &C, name: &MappingName) -> Result<Option<Mapping>, DbErr> {
    let i = &name.integration;
    one(
        db,
        &format!("SELECT {COLS} FROM mappings WHERE env = ? AND integration = ? AND id = ?"),
        vec![i.env.id().into(), i.id.as_str().into(), name.id.as_str().into()],
    )
    .await?
    .map(|r| read(&r))
    .transpose()
}

/// One integration's mappings ordered by id, after `after`.
pub async fn list_of<C: ConnectionTrait>(
    db: &C,
    i: &IntegrationName,
    after: Option<&str>,
    limit: Option<u64>,
) -> Result<Vec<Mapping>, DbErr> {
    let rows = all(
        db,
        &format!("SELECT {COLS} FROM mappings WHERE env = ? AND integration = ? AND id > ? ORDER BY id LIMIT ?"),
        vec![i.env.id().into(), i.id.as_str().into(), after.unwrap_or("").into(), Value::from(limit.map(|l| l as i64).unwrap_or(i64::MAX))],
    )
    .await?;
    rows.iter().map(read).collect()
}

/// Every mapping of an environment ordered by (integration, id), after `after`.
pub async fn list_env<C: ConnectionTrait>(
    db: &C,
    env: &EnvName,
    after: Option<(String, String)>,
    limit: Option<u64>,
) -> Result<Vec<Mapping>, DbErr> {
    let (ai, am) = after.unwrap_or_default();
    let rows = all(
        db,
        &format!(
            "SELECT {COLS} FROM mappings WHERE env = ? AND (integration > ? OR (integration = ? AND id > ?))
             ORDER BY integration, id LIMIT ?"
        ),
        vec![env.id().into(), ai.clone().into(), ai.into(), am.into(), Value::from(limit.map(|l| l as i64).unwrap_or(i64::MAX))],
    )
    .await?;
    rows.iter().map(read).collect()
}

/// Inserts (`replace`: or replaces) a mapping by name.
async fn write<C: ConnectionTrait>(db: &C, replace: bool, m: &Mapping) -> Result<(), DbErr> {
    let i = &m.name.integration;
    exec(
        db,
        &format!("INSERT INTO mappings ({COLS}) VALUES ({}){}", ferry_kit::db::placeholders(12), if replace { UPSERT } else { "" }),
        vec![
            i.env.id().into(),
            i.id.as_str().into(),
            m.name.id.as_str().into(),
            m.display_name.as_str().into(),
            m.target.id().into(),
            m.bound.id().into(),
            m.active.into(),
            m.field_mapping_json.as_str().into(),
            m.fenced.into(),
            opt_text(m.origin.as_ref().map(|e| e.id())),
            m.created_at.into(),
            m.updated_at.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Inserts a new row; a row with the same name fails with a unique violation.
pub async fn insert<C: ConnectionTrait>(db: &C, m: &Mapping) -> Result<(), DbErr> {
    write(db, false, m).await
}

/// Inserts or replaces a row by name.
pub async fn save<C: ConnectionTrait>(db: &C, m: &Mapping) -> Result<(), DbErr> {
    write(db, true, m).await
}

pub async fn delete<C: ConnectionTrait>(db: &C, name: &MappingName) -> Result<u64, DbErr> {
    let i = &name.integration;
    exec(
        db,
        "DELETE FROM mappings WHERE env = ? AND integration = ? AND id = ?",
        vec![i.env.id().into(), i.id.as_str().into(), name.id.as_str().into()],
    )
    .await
}

pub async fn delete_of<C: ConnectionTrait>(db: &C, i: &IntegrationName) -> Result<u64, DbErr> {
    exec(db, "DELETE FROM mappings WHERE env = ? AND integration = ?", vec![i.env.id().into(), i.id.as_str().into()]).await
}

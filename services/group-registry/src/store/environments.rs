//! Environments.

use ferry_kit::db::{Scope, ScopedBy, and_in_scope};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, col, corrupt, one};
use crate::domain::{EnvName, Environment, ResourceId, Tier};

/// An environment row: its id and what it is.
#[derive(Debug, Clone)]
pub struct EnvRow {
    pub id: i64,
    pub env: Environment,
}

const COLS: &str = "id, name, tier, display_name, created_at";

fn read(row: &QueryResult) -> Result<EnvRow, DbErr> {
    let tier: i32 = col(row, 2)?;
    let name: String = col(row, 1)?;
    Ok(EnvRow {
        id: col(row, 0)?,
        env: Environment {
            name: EnvName(ResourceId::from_stored(&name)),
            tier: Tier::from_number(tier).map_err(|_| corrupt("tier", tier))?,
            display_name: col(row, 3)?,
            created_at: col(row, 4)?,
        },
    })
}

pub async fn insert<C: ConnectionTrait>(db: &C, env: &Environment) -> Result<EnvRow, DbErr> {
    let row = one(
        db,
        &format!("INSERT INTO environments (name, tier, display_name, created_at) VALUES (?, ?, ?, ?) RETURNING {COLS}"),
        vec![env.name.id().into(), env.tier.number().into(), env.display_name.as_str().into(), env.created_at.into()],
    )
    .await?
    .ok_or_else(|| DbErr::Custom("insert returned no row".into()))?;
    read(&row)
}

pub async fn find<C: ConnectionTrait>(db: &C, name: &EnvName) -> Result<Option<EnvRow>, DbErr> {
    one(db, &format!("SELECT {COLS} FROM environments WHERE name = ?"), vec![name.id().into()]).await?.map(|r| read(&r)).transpose()
}

/// Environments ordered by name, after `after`.
pub async fn list<C: ConnectionTrait>(db: &C, after: Option<&str>, limit: u64, scope: Scope<'_>) -> Result<Vec<EnvRow>, DbErr> {
    let mut sql = format!("SELECT {COLS} FROM environments WHERE name > ? AND name < '~'");
    let mut values = vec![after.unwrap_or("").into()];
    and_in_scope(&mut sql, &mut values, ScopedBy::Id("name"), scope);
    sql.push_str(" ORDER BY name LIMIT ?");
    values.push(Value::from(limit as i64));
    all(db, &sql, values).await?.iter().map(read).collect()
}

//! Integrations, with their sealed credentials.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, col, corrupt, exec, one, opt_text};
use crate::domain::secrets::Sealed;
use crate::domain::{CredentialState, EnvName, Integration, IntegrationName};

/// An integration as stored: the record and its sealed key (and the sealing key's id).
#[derive(Clone)]
pub struct IntegrationRow {
    pub integration: Integration,
    pub sealed: Option<Sealed>,
}

impl std::fmt::Debug for IntegrationRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationRow").field("integration", &self.integration).field("sealed", &"***").finish()
    }
}

const COLS: &str = "env, id, display_name, external_system, base_url, active, credential_state, sealed_key, fingerprint, fenced, \
                    origin_env, created_at, updated_at, sealing_key_id";

/// Turns an insert into a replace by primary key.
const UPSERT: &str = " ON CONFLICT (env, id) DO UPDATE SET \
    display_name = excluded.display_name, external_system = excluded.external_system, \
    base_url = excluded.base_url, active = excluded.active, credential_state = excluded.credential_state, \
    sealed_key = excluded.sealed_key, fingerprint = excluded.fingerprint, fenced = excluded.fenced, \
    origin_env = excluded.origin_env, created_at = excluded.created_at, updated_at = excluded.updated_at, \
    sealing_key_id = excluded.sealing_key_id";

fn read(row: &QueryResult) -> Result<IntegrationRow, DbErr> {
    let env: String = col(row, 0)?;
    let id: String = col(row, 1)?;
    let state: i32 = col(row, 6)?;
    let origin: Option<String> = col(row, 10)?;
    let sealed: Option<Vec<u8>> = col(row, 7)?;
    let key_id: Option<String> = col(row, 13)?;
    Ok(IntegrationRow {
        integration: Integration {
            name: IntegrationName::new(&env, &id),
            display_name: col(row, 2)?,
            external_system: col(row, 3)?,
            base_url: col(row, 4)?,
            active: col(row, 5)?,
            credential_state: CredentialState::from_number(state).ok_or_else(|| corrupt("credential state", state))?,
            fingerprint: col(row, 8)?,
            fenced: col(row, 9)?,
            origin: origin.as_deref().map(EnvName::from_stored),
            created_at: col(row, 11)?,
            updated_at: col(row, 12)?,
        },
        sealed: match (sealed, key_id) {
            (Some(bytes), Some(key_id)) => Some(Sealed { key_id, bytes }),
            (None, _) => None,
            (Some(_), None) => return Err(DbErr::Custom(format!("sealed key of {env}/{id} has no sealing key id"))),
        },
    })
}

pub async fn find<C: ConnectionTrait>(db: &C, name: &IntegrationName) -> Result<Option<IntegrationRow>, DbErr> {
    one(db, &format!("SELECT {COLS} FROM integrations WHERE env = ? AND id = ?"), vec![name.env.id().into(), name.id.as_str().into()])
        .await?
        .map(|r| read(&r))
        .transpose()
}

/// An environment's integrations ordered by id, after `after`, at most `limit`.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    env: &EnvName,
    after: Option<&str>,
    limit: Option<u64>,
) -> Result<Vec<IntegrationRow>, DbErr> {
    let rows = all(
        db,
        &format!("SELECT {COLS} FROM integrations WHERE env = ? AND id > ? ORDER BY id LIMIT ?"),
        vec![env.id().into(), after.unwrap_or("").into(), Value::from(limit.map(|l| l as i64).unwrap_or(i64::MAX))],
    )
    .await?;
    rows.iter().map(read).collect()
}

/// Inserts (`replace`: or replaces) an integration by name.
async fn write<C: ConnectionTrait>(db: &C, replace: bool, row: &IntegrationRow) -> Result<(), DbErr> {
    let i = &row.integration;
    exec(
        db,
        &format!("INSERT INTO integrations ({COLS}) VALUES ({}){}", ferry_kit::db::placeholders(14), if replace { UPSERT } else { "" }),
        vec![
            i.name.env.id().into(),
            i.name.id.as_str().into(),
            i.display_name.as_str().into(),
            i.external_system.as_str().into(),
            i.base_url.as_str().into(),
            i.active.into(),
            i.credential_state.number().into(),
            Value::Bytes(row.sealed.as_ref().map(|s| s.bytes.clone())),
            i.fingerprint.as_str().into(),
            i.fenced.into(),
            opt_text(i.origin.as_ref().map(|e| e.id())),
            i.created_at.into(),
            i.updated_at.into(),
            opt_text(row.sealed.as_ref().map(|s| s.key_id.as_str())),
        ],
    )
    .await?;
    Ok(())
}

/// Inserts a new row; a row with the same name fails with a unique violation.
pub async fn insert<C: ConnectionTrait>(db: &C, row: &IntegrationRow) -> Result<(), DbErr> {
    write(db, false, row).await
}

/// Inserts or replaces a row by name.
pub async fn save<C: ConnectionTrait>(db: &C, row: &IntegrationRow) -> Result<(), DbErr> {
    write(db, true, row).await
}

pub async fn delete<C: ConnectionTrait>(db: &C, name: &IntegrationName) -> Result<u64, DbErr> {
    exec(db, "DELETE FROM integrations WHERE env = ? AND id = ?", vec![name.env.id().into(), name.id.as_str().into()]).await
}

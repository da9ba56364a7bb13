//! `request_id` idempotency (AIP-155). A mutating call records its reply under its
//! request id in the same transaction as its writes; a retry with the same id and the
//! same request gets that reply back and writes nothing; the same id with a different
//! request is refused. Each service's migrations create the table with
//! [`create_table_sql`]. Replies are stored as the bytes the service chooses (services
//! serialise their domain result), so the kit stays free of any one service's types.

use sea_orm::{ConnectionTrait, DbErr, Value};
use sha2::{Digest, Sha256};

use crate::db::{now_micros, stmt};

/// The table (SQLite spelling; see [`create_table_sql`]).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS request_log (
    request_id TEXT NOT NULL PRIMARY KEY,
    method TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    response BLOB NOT NULL,
    created_at BIGINT NOT NULL
)";

/// PostgreSQL has no BLOB: the same table with BYTEA.
pub fn create_table_sql(backend: sea_orm::DbBackend) -> String {
    match backend {
        sea_orm::DbBackend::Postgres => CREATE_TABLE.replace("BLOB", "BYTEA"),
        _ => CREATE_TABLE.to_owned(),
    }
}

/// The index that lets old replies be pruned by age (`prune::pruner` with [`REPLIES`]).
const INDEX: &str = "CREATE INDEX IF NOT EXISTS request_log_by_time ON request_log (created_at)";

/// The migration every service runs after creating the table: the index by age.
pub struct IndexByAge;

impl sea_orm_migration::MigrationName for IndexByAge {
    fn name(&self) -> &str {
        "m20261203_900001_index_request_log_by_age"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for IndexByAge {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(INDEX).await?;
        Ok(())
    }

    async fn down(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP INDEX IF EXISTS request_log_by_time").await?;
        Ok(())
    }
}

/// The replies, as they age: pruned past `--request-log-retention-hours` by
/// `prune::pruner` (a retry with a forgotten `request_id` is a new request).
pub const REPLIES: crate::prune::Aged = crate::prune::Aged { table: "request_log", key: "request_id", time: "created_at" };

/// What a lookup found.
#[derive(Debug)]
pub enum Replay {
    /// First time this id is seen: do the work, then [`record`].
    Fresh,
    /// Seen with this very request: answer with the stored reply.
    Done(Vec<u8>),
    /// Seen with a different request or method.
    Mismatch,
}

/// A digest of the request message (`encoded`) that identifies it.
pub fn fingerprint(method: &str, encoded: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(encoded);
    hex::encode(&h.finalize()[..16])
}

/// A recorded call.
#[derive(Debug, Clone)]
pub struct Stored {
    pub method: String,
    pub fingerprint: String,
    pub response: Vec<u8>,
}

/// The call recorded under `request_id`, if any.
pub async fn find<C: ConnectionTrait>(db: &C, request_id: &str) -> Result<Option<Stored>, DbErr> {
    let row = db
        .query_one_raw(stmt(
            db.get_database_backend(),
            "SELECT method, fingerprint, response FROM request_log WHERE request_id = ?",
            [Value::from(request_id)],
        ))
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Stored { method: row.try_get_by_index(0)?, fingerprint: row.try_get_by_index(1)?, response: row.try_get_by_index(2)? }))
}

/// Whether `request_id` was seen, and with this request.
pub async fn lookup<C: ConnectionTrait>(db: &C, request_id: &str, method: &str, fingerprint: &str) -> Result<Replay, DbErr> {
    Ok(match find(db, request_id).await? {
        None => Replay::Fresh,
        Some(s) if s.method == method && s.fingerprint == fingerprint => Replay::Done(s.response),
        Some(_) => Replay::Mismatch,
    })
}

pub async fn record<C: ConnectionTrait>(db: &C, request_id: &str, method: &str, fingerprint: &str, response: Vec<u8>) -> Result<(), DbErr> {
    db.execute_raw(stmt(
        db.get_database_backend(),
        "INSERT INTO request_log (request_id, method, fingerprint, response, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            Value::from(request_id),
            Value::from(method),
            Value::from(fingerprint),
            Value::Bytes(Some(response)),
            Value::BigInt(Some(now_micros())),
        ],
    ))
    .await?;
    Ok(())
}

/// The `request_id` of a mutation and a fingerprint of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub request_id: String,
    pub fingerprint: String,
}

impl RequestKey {
    /// `None` for an empty id; an id must be 1–128 printable ASCII characters.
    pub fn parse(request_id: &str, fingerprint: String) -> Result<Option<Self>, String> {
        if request_id.is_empty() {
            return Ok(None);
        }
        if request_id.len() > 128 || !request_id.chars().all(|c| c.is_ascii_graphic()) {
            return Err("must be 1-128 printable ASCII characters (a UUID is ideal)".into());
        }
        Ok(Some(Self { request_id: request_id.to_owned(), fingerprint }))
    }
}

/// What a service's error type must express for [`transaction`].
pub trait TxError: From<DbErr> + From<serde_json::Error> + Send {
    /// The request id was used before for a different request.
    fn request_id_reused() -> Self;
}

/// The work of one mutation, given its transaction.
pub type TxFuture<'t, T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send + 't>>;

/// Runs `work` in one transaction as the call `method`, with `request_id` semantics: a
/// replay returns the recorded reply and writes nothing; a different request under a used
/// id is refused; the reply, and the call's audit event, are recorded in the same
/// transaction as the writes. When the work or the record collides with a concurrent call
/// that carried the same request id and committed first, the caller gets that call's
/// reply, as a retry would.
pub async fn transaction<T, E, F>(db: &sea_orm::DatabaseConnection, key: Option<&RequestKey>, method: &str, work: F) -> Result<T, E>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send,
    E: TxError,
    F: for<'t> FnOnce(&'t sea_orm::DatabaseTransaction) -> TxFuture<'t, T, E> + Send,
{
    let txn = crate::db::begin(db).await?;
    if let Some(k) = key {
        match lookup(&txn, &k.request_id, method, &k.fingerprint).await? {
            Replay::Done(bytes) => {
                crate::audit::replayed();
                return Ok(serde_json::from_slice(&bytes)?);
            }
            Replay::Mismatch => return Err(E::request_id_reused()),
            Replay::Fresh => {}
        }
    }
    let out = match work(&txn).await {
        Ok(out) => out,
        Err(e) => {
            drop(txn);
            return replay_after_race(db, key, method, e).await;
        }
    };
    let event = crate::audit::append_in(&txn).await?;
    if let Some(k) = key
        && let Err(e) = record(&txn, &k.request_id, method, &k.fingerprint, serde_json::to_vec(&out)?).await
    {
        drop(txn);
        let lost = if crate::db::is_unique_violation(&e) { E::request_id_reused() } else { e.into() };
        return replay_after_race(db, key, method, lost).await;
    }
    txn.commit().await?;
    event.committed();
    Ok(out)
}

/// After a failed attempt: the reply of a concurrent call with this very request, if one
/// committed, else the attempt's own error.
async fn replay_after_race<T: serde::de::DeserializeOwned, E: TxError>(
    db: &sea_orm::DatabaseConnection,
    key: Option<&RequestKey>,
    method: &str,
    lost: E,
) -> Result<T, E> {
    if let Some(k) = key
        && let Replay::Done(bytes) = lookup(db, &k.request_id, method, &k.fingerprint).await?
    {
        crate::audit::replayed();
        return Ok(serde_json::from_slice(&bytes)?);
    }
    Err(lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert_eq!(RequestKey::parse("", "f".into()), Ok(None));
        assert!(RequestKey::parse("a b", "f".into()).is_err());
        assert!(RequestKey::parse(&"x".repeat(129), "f".into()).is_err());
        assert_eq!(RequestKey::parse("r-1", "f".into()).ok().flatten().map(|k| k.request_id), Some("r-1".to_string()));
    }
}

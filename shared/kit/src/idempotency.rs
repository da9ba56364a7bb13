//! `request_id` idempotency (AIP-155). A mutating call records its reply under its
//! request id in the same transaction as its writes; a retry with the same id and the
//! same request gets that reply back and writes nothing; the same id with a different
//! request is refused. Each service's migrations create the table with
//! [`create_table_sql`]. Replies are stored as the bytes the service chooses (services
//! serialise their domain result), so the kit stays free of any one service's types.

use prost::Message;
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

/// A digest of the request message that identifies it.
pub fn fingerprint<M: Message>(method: &str, request: &M) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(request.encode_to_vec());
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

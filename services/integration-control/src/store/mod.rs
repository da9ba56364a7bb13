//! integration-control's storage: the schema ([`migrations`]) and the queries, as functions
//! over `&impl ConnectionTrait` so the service layer owns every transaction. SQL is written
//! once with `?` placeholders (numbered for PostgreSQL by the kit). Writes are upserts by
//! primary key (`INSERT … ON CONFLICT … DO UPDATE`), the same on both backends.

pub mod deliveries;
pub mod fences;
pub mod integrations;
pub mod jobs;
pub mod leases;
pub mod mappings;
pub mod migrations;
pub mod sealed;
pub mod snapshots;
pub mod webhooks;

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use ferry_kit::db::stmt;

pub(crate) async fn all<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(stmt(db.get_database_backend(), sql, values)).await
}

pub(crate) async fn one<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<Option<QueryResult>, DbErr> {
    db.query_one_raw(stmt(db.get_database_backend(), sql, values)).await
}

pub(crate) async fn exec<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    Ok(db.execute_raw(stmt(db.get_database_backend(), sql, values)).await?.rows_affected())
}

/// Reads column `i` of a row.
pub(crate) fn col<T: sea_orm::TryGetable>(row: &QueryResult, i: usize) -> Result<T, DbErr> {
    row.try_get_by_index(i)
}

/// A stored enum number that no longer maps to a variant: the database was changed behind
/// the service's back.
pub(crate) fn corrupt(what: &str, n: i32) -> DbErr {
    DbErr::Custom(format!("stored {what} {n} is not known"))
}

pub(crate) fn opt_text(s: Option<&str>) -> Value {
    s.map(str::to_owned).into()
}

//! The schema (migrations) and the SQL helpers the engine's tables use; callers own the
//! transactions.

mod legacy;
pub mod migrations;

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

pub(crate) async fn all<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(ferry_kit::db::stmt(db.get_database_backend(), sql, values)).await
}

pub(crate) async fn one<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<Option<QueryResult>, DbErr> {
    db.query_one_raw(ferry_kit::db::stmt(db.get_database_backend(), sql, values)).await
}

/// Runs a statement; the rows it affected.
pub(crate) async fn exec<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    Ok(db.execute_raw(ferry_kit::db::stmt(db.get_database_backend(), sql, values)).await?.rows_affected())
}

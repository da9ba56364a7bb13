//! The engine's storage: the schema ([`migrations`]), plans and their items
//! ([`plans`]), jobs, their checkpoints and effects ([`jobs`]), what retention prunes
//! ([`retention`]), the work waiting ([`work`]). Functions take
//! `&impl ConnectionTrait`; the service layer owns every transaction. SQL is written once
//! with `?` placeholders (numbered for PostgreSQL by the kit); item writes are multi-row
//! inserts chunked under the bind-parameter limits (plan items: `COPY` on PostgreSQL).

pub mod jobs;
pub mod migrations;
pub mod plans;
pub mod retention;
pub mod work;

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

pub(crate) fn col<T: sea_orm::TryGetable>(row: &QueryResult, i: usize) -> Result<T, DbErr> {
    row.try_get_by_index(i)
}

/// A stored enum number that no longer maps to a variant.
pub(crate) fn corrupt(what: &str, n: i64) -> DbErr {
    DbErr::Custom(format!("stored {what} {n} is not known"))
}

/// `(?, ?), (?, ?)` for `rows` tuples of `width` values.
pub(crate) fn tuples(rows: usize, width: usize) -> String {
    let one = format!("({})", ferry_kit::db::placeholders(width));
    vec![one; rows].join(", ")
}

/// Reads a stored enum number.
pub(crate) fn enum_col<T>(row: &QueryResult, i: usize, what: &str, from: impl Fn(i32) -> Option<T>) -> Result<T, DbErr> {
    let n: i64 = col(row, i)?;
    i32::try_from(n).ok().and_then(from).ok_or_else(|| corrupt(what, n))
}

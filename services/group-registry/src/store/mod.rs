//! The registry's storage: the schema ([`migrations`]) and the queries, as functions over
//! `&impl ConnectionTrait` so the service layer owns every transaction. SQL is written once
//! with `?` placeholders (numbered for PostgreSQL by the kit) and is set-based on the bulk
//! paths.

pub mod bulk;
pub mod copy;
pub mod entities;
pub mod environments;
pub mod groups;
pub mod migrations;
pub mod prior;
pub mod projects;
pub mod restore_points;
pub mod sharing;

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use ferry_kit::db::stmt;

pub(crate) async fn all<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<Value>) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(stmt(db.get_database_backend(), sql, values)).await
}

/// Runs `sql`, whose one `{ids}` stands for a list of placeholders, for each 1,000 of
/// `ids` (under every backend's bind limit); every row.
pub(crate) async fn all_for_ids<C: ConnectionTrait>(db: &C, sql: &str, ids: &[i64]) -> Result<Vec<QueryResult>, DbErr> {
    let mut rows = Vec::new();
    for chunk in ids.chunks(1000) {
        let sql = sql.replace("{ids}", &ferry_kit::db::placeholders(chunk.len()));
        rows.extend(all(db, &sql, chunk.iter().map(|i| Value::from(*i)).collect()).await?);
    }
    Ok(rows)
}

/// Runs `sql`, whose first placeholder is `now` and whose one `{pairs}` stands for
/// `(?, ?), …`, for each 1,000 of `pairs`.
pub(crate) async fn exec_for_pairs<C, A, B>(db: &C, sql: &str, now: i64, pairs: &[(A, B)]) -> Result<(), DbErr>
where
    C: ConnectionTrait,
    A: Clone + Into<Value>,
    B: Clone + Into<Value>,
{
    for chunk in pairs.chunks(1000) {
        let mut values: Vec<Value> = vec![now.into()];
        for (a, b) in chunk {
            values.push(a.clone().into());
            values.push(b.clone().into());
        }
        exec(db, &sql.replace("{pairs}", &vec!["(?, ?)"; chunk.len()].join(", ")), values).await?;
    }
    Ok(())
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

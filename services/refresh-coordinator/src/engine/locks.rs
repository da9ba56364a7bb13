//! The locks runs hold, for every run kind in one table, taken in the transaction that
//! creates the run and released in the one that ends it.
//!
//! A lock is on an environment (a refresh: nothing else may run in it) or on a project (a
//! promotion into it: another promotion into the same project, or a refresh of its
//! environment, must wait). Locks of one resource exclude each other by the primary key.
//! An environment lock and a project lock in that environment are different rows, so
//! [`take`] first takes the environment's guard row (an upsert, which row-locks it on
//! PostgreSQL until the transaction ends; SQLite has one writer): starts touching one
//! environment run one after the other, and each sees every lock committed before it.

use sea_orm::{ConnectionTrait, DbErr, Value};

use crate::domain::{EnvName, ProjectName};
use crate::store::{exec, one};

/// What a run locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    Environment(EnvName),
    Project(ProjectName),
}

impl Lock {
    fn resource(&self) -> String {
        match self {
            Lock::Environment(e) => e.to_string(),
            Lock::Project(p) => p.to_string(),
        }
    }
    fn environment(&self) -> &EnvName {
        match self {
            Lock::Environment(e) => e,
            Lock::Project(p) => &p.env,
        }
    }
}

/// A lock a run holds: the run's name (`refreshRuns/…`, `promotionRuns/…`) and what it
/// locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub run: String,
    pub resource: String,
}

/// The lock that stands in the way of `lock`, if any: on the same resource, or (for an
/// environment) on anything in it, or (for a project) on its environment.
pub async fn blocking<C: ConnectionTrait>(db: &C, lock: &Lock) -> Result<Option<Held>, DbErr> {
    let env = lock.environment().to_string();
    let (sql, values): (&str, Vec<Value>) = match lock {
        Lock::Environment(_) => ("SELECT run, resource FROM locks WHERE environment = ? ORDER BY resource LIMIT 1", vec![env.into()]),
        Lock::Project(_) => (
            "SELECT run, resource FROM locks WHERE resource = ? OR resource = ? ORDER BY resource LIMIT 1",
            vec![lock.resource().into(), env.into()],
        ),
    };
    let Some(row) = one(db, sql, values).await? else { return Ok(None) };
    Ok(Some(Held { run: row.try_get_by_index(0)?, resource: row.try_get_by_index(1)? }))
}

/// Takes `locks` for `run` in the caller's transaction, or names the lock in the way (and
/// takes none).
pub async fn take<C: ConnectionTrait>(db: &C, run: &str, locks: &[Lock]) -> Result<Result<(), Held>, DbErr> {
    let mut envs: Vec<String> = locks.iter().map(|l| l.environment().to_string()).collect();
    envs.sort();
    envs.dedup();
    // In name order, so two starts over the same environments cannot deadlock.
    for env in &envs {
        exec(
            db,
            "INSERT INTO lock_guards (environment, touched) VALUES (?, 1) \
             ON CONFLICT (environment) DO UPDATE SET touched = lock_guards.touched + 1",
            vec![env.as_str().into()],
        )
        .await?;
    }
    for lock in locks {
        if let Some(held) = blocking(db, lock).await? {
            return Ok(Err(held));
        }
    }
    for lock in locks {
        exec(
            db,
            "INSERT INTO locks (resource, environment, run) VALUES (?, ?, ?)",
            vec![lock.resource().into(), lock.environment().to_string().into(), run.into()],
        )
        .await?;
    }
    Ok(Ok(()))
}

/// Releases every lock `run` holds.
pub async fn release<C: ConnectionTrait>(db: &C, run: &str) -> Result<(), DbErr> {
    exec(db, "DELETE FROM locks WHERE run = ?", vec![run.into()]).await?;
    Ok(())
}

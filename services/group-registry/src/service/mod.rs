//! The registry's service layer: each operation is one transaction that checks the
//! domain rules, runs the store's queries and, for mutations, records its reply under the
//! caller's `request_id` so a retry is a no-op. No proto types here.

mod bulk;
mod entities;
mod projects;
mod restore_points;
pub use restore_points::{PRUNE_BATCH, pruner};
mod settle;

pub use bulk::{IMPORT_METHOD, ImportStart, ImportTx};

use std::sync::Arc;

use ferry_kit::db::PointReads;
use ferry_kit::idempotency;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use serde::{Serialize, de::DeserializeOwned};

use crate::domain::{EnvName, Environment, Group, GroupName, Page, RequestKey};
use crate::error::{Error, Result};
use crate::store::{self, environments::EnvRow, groups::GroupRow};

type BoxFut<'a, T> = idempotency::TxFuture<'a, T, Error>;

/// The registry: a handle on its database.
#[derive(Clone)]
pub struct Registry {
    db: DatabaseConnection,
    /// Plain reads outside transactions (`ferry_kit::db::read_pool`): on SQLite, read-only
    /// connections beside the writer; on PostgreSQL, `db` itself.
    reads: DatabaseConnection,
    /// GetEntity's reads (`ferry_kit::db::point_reads`): in place on a SQLite file, a pool
    /// keeping generic plans on PostgreSQL.
    points: Arc<PointReads>,
    /// How long a new restore point is kept.
    restore_point_retention: std::time::Duration,
}

impl Registry {
    pub fn new(db: DatabaseConnection, reads: DatabaseConnection, points: PointReads) -> Self {
        let restore_point_retention = std::time::Duration::from_secs(crate::config::DEFAULT_RESTORE_POINT_RETENTION_HOURS * 3600);
        Self { db, reads, points: Arc::new(points), restore_point_retention }
    }

    /// Keeps new restore points for `retention`.
    pub fn with_restore_point_retention(mut self, retention: std::time::Duration) -> Self {
        self.restore_point_retention = retention;
        self
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Runs `work` in one transaction as the call `method`, with `request_id` replay
    /// (see `ferry_kit::idempotency::transaction`).
    async fn write<T, F>(&self, key: Option<RequestKey>, method: &'static str, work: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send,
        F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFut<'t, T> + Send,
    {
        idempotency::transaction(&self.db, key.as_ref(), method, work).await
    }

    // Environments.

    pub async fn create_environment(&self, key: Option<RequestKey>, env: Environment) -> Result<Environment> {
        self.write(key, "CreateEnvironment", move |txn| {
            Box::pin(async move {
                if store::environments::find(txn, &env.name).await?.is_some() {
                    return Err(Error::AlreadyExists {
                        resource: "environment",
                        name: env.name.to_string(),
                        message: format!("{} already exists", env.name),
                    });
                }
                Ok(store::environments::insert(txn, &env).await?.env)
            })
        })
        .await
    }

    pub async fn get_environment(&self, name: &EnvName) -> Result<Environment> {
        Ok(env_row(&self.reads, name).await?.env)
    }

    /// A page of environments, only those in `scope` (a scoped caller's).
    pub async fn list_environments(
        &self,
        after: Option<String>,
        limit: u64,
        scope: ferry_kit::db::Scope<'_>,
    ) -> Result<Page<Environment, String>> {
        let rows = store::environments::list(&self.reads, after.as_deref(), limit + 1, scope).await?;
        Ok(page(rows.into_iter().map(|r| r.env).collect(), limit, |e| e.name.id().to_owned()))
    }

    // Groups.

    pub async fn create_group(&self, key: Option<RequestKey>, name: GroupName, display: String) -> Result<Group> {
        self.write(key, "CreateGroup", move |txn| {
            Box::pin(async move {
                let env = env_row(txn, &name.env).await?;
                if store::groups::find(txn, &name).await?.is_some() {
                    return Err(Error::AlreadyExists {
                        resource: "group",
                        name: name.to_string(),
                        message: format!("{name} already exists"),
                    });
                }
                Ok(store::groups::insert(txn, env.id, &name, &display, ferry_kit::db::now_micros()).await?.group)
            })
        })
        .await
    }

    /// A group; its member count only when `count` (the count walks the group).
    pub async fn get_group(&self, name: &GroupName, count: bool) -> Result<Group> {
        if count {
            return Ok(group_row(&self.reads, name).await?.group);
        }
        store::groups::find_uncounted(&self.reads, name).await?.ok_or_else(|| Error::not_found("group", name)).map(|r| r.group)
    }

    pub async fn list_groups(&self, env: &EnvName, after: Option<String>, limit: u64) -> Result<Page<Group, String>> {
        let env = env_row(&self.reads, env).await?;
        let rows = store::groups::list(&self.reads, env.id, after.as_deref(), limit + 1).await?;
        Ok(page(rows.into_iter().map(|r| r.group).collect(), limit, |g| g.name.group.as_str().to_owned()))
    }

    /// Deletes a group. Refused while a project uses it, while it holds entities (unless
    /// forced), and always when a shared entity would lose its last link.
    pub async fn delete_group(&self, key: Option<RequestKey>, name: GroupName, force: bool) -> Result<(i64, i64)> {
        use ferry_kit::status::Precondition;
        self.write(key, "DeleteGroup", move |txn| {
            Box::pin(async move {
                let id = group_key(txn, &name).await?.id;
                lock_group(txn, id, &name).await?;
                let g = group_row(txn, &name).await?;
                let projects = store::groups::projects_using(txn, g.id).await?;
                if !projects.is_empty() {
                    return Err(Error::precondition(
                        format!("{name} is used by {} project(s); remove it from them first", projects.len()),
                        projects
                            .into_iter()
                            .map(|p| Precondition::new("GROUP_IN_USE", p, "the project resolves entities through this group"))
                            .collect(),
                    ));
                }
                if g.group.entity_count > 0 && !force {
                    return Err(Error::precondition(
                        format!(
                            "{name} holds {} entities; set force to delete its duplicated entities and unlink its shared ones",
                            g.group.entity_count
                        ),
                        vec![Precondition::new("GROUP_NOT_EMPTY", name.to_string(), "set force to delete a group that holds entities")],
                    ));
                }
                let sole = store::groups::sole_shared_members(txn, g.id).await?;
                if !sole.is_empty() {
                    let env = name.env.id().to_owned();
                    return Err(Error::precondition(
                        format!("{name} holds the last link of {} shared entit(ies); delete them explicitly first", sole.len()),
                        sole.into_iter()
                            .map(|id| {
                                Precondition::new(
                                    "LAST_LINK",
                                    crate::domain::EntityName::new(&env, id).to_string(),
                                    "delete this entity explicitly",
                                )
                            })
                            .collect(),
                    ));
                }
                Ok(store::groups::delete(txn, g.id).await?)
            })
        })
        .await
    }
}

pub(crate) use ferry_kit::paging::split as page;

pub(crate) async fn env_row<C: sea_orm::ConnectionTrait>(db: &C, name: &EnvName) -> Result<EnvRow> {
    store::environments::find(db, name).await?.ok_or_else(|| Error::not_found("environment", name))
}

pub(crate) async fn group_row<C: sea_orm::ConnectionTrait>(db: &C, name: &GroupName) -> Result<GroupRow> {
    store::groups::find(db, name).await?.ok_or_else(|| Error::not_found("group", name))
}

/// A group's ids and revision (no member count): what the write paths look up.
pub(crate) async fn group_key<C: sea_orm::ConnectionTrait>(db: &C, name: &GroupName) -> Result<store::groups::GroupKey> {
    store::groups::key_of(db, name).await?.ok_or_else(|| Error::not_found("group", name))
}

/// Locks a group found by `group_key` for the rest of the transaction: writers that add
/// to it (members, project links) and its deletion wait for each other, so a check made
/// after the lock still holds at commit. NOT_FOUND when it was deleted meanwhile.
pub(crate) async fn lock_group<C: sea_orm::ConnectionTrait>(db: &C, id: i64, name: &GroupName) -> Result<()> {
    if store::groups::lock(db, id).await? { Ok(()) } else { Err(Error::not_found("group", name)) }
}

//! Restore points of an environment: take, read, delete, restore (see
//! `store::restore_points`). Each mutation is one transaction with `request_id` replay.

use ferry_kit::db::now_micros;
use ferry_kit::status::Precondition;

use super::{Registry, env_row, page};
use crate::domain::{EnvName, NewRestorePoint, Page, RequestKey, RestorePoint, RestorePointName, Restored};
use crate::error::{Error, Result};
use crate::store::{self, restore_points::PointRow};

async fn point_row<C: sea_orm::ConnectionTrait>(db: &C, name: &RestorePointName) -> Result<(store::environments::EnvRow, PointRow)> {
    let env = env_row(db, &name.env).await?;
    let row = store::restore_points::find(db, env.id, name.id.as_str()).await?.ok_or_else(|| Error::not_found("restore point", name))?;
    Ok((env, row))
}

impl Registry {
    /// Takes a restore point of its environment, expiring after the retention.
    pub async fn create_restore_point(&self, key: Option<RequestKey>, new: NewRestorePoint) -> Result<RestorePoint> {
        let retention = self.restore_point_retention;
        self.write(key, "CreateRestorePoint", move |txn| {
            Box::pin(async move {
                let env = env_row(txn, &new.name.env).await?;
                if store::restore_points::find(txn, env.id, new.name.id.as_str()).await?.is_some() {
                    return Err(Error::already_exists("restore point", &new.name));
                }
                let now = now_micros();
                let point = RestorePoint {
                    name: new.name,
                    run: new.run,
                    integration_snapshot: new.integration_snapshot,
                    description: new.description,
                    counts: Default::default(),
                    size_bytes: 0,
                    created_at: now,
                    expire_at: now.saturating_add(retention.as_micros().min(i64::MAX as u128) as i64),
                    restored_at: None,
                };
                Ok(store::restore_points::create(txn, &env, point).await?)
            })
        })
        .await
    }

    pub async fn get_restore_point(&self, name: &RestorePointName) -> Result<RestorePoint> {
        Ok(point_row(&self.reads, name).await?.1.point)
    }

    pub async fn list_restore_points(&self, env: &EnvName, after: Option<String>, limit: u64) -> Result<Page<RestorePoint, String>> {
        let env = env_row(&self.reads, env).await?;
        let rows = store::restore_points::list(&self.reads, env.id, after.as_deref(), limit + 1).await?;
        Ok(page(rows.into_iter().map(|r| r.point).collect(), limit, |p| p.name.id.as_str().to_owned()))
    }

    pub async fn delete_restore_point(&self, key: Option<RequestKey>, name: RestorePointName) -> Result<()> {
        self.write(key, "DeleteRestorePoint", move |txn| {
            Box::pin(async move {
                let (_, row) = point_row(txn, &name).await?;
                store::restore_points::delete(txn, &row).await?;
                Ok(())
            })
        })
        .await
    }

    /// Replaces the environment's content with the restore point's; refused once it expired.
    pub async fn restore_environment(&self, key: Option<RequestKey>, name: RestorePointName) -> Result<Restored> {
        self.write(key, "RestoreEnvironment", move |txn| {
            Box::pin(async move {
                let (env, row) = point_row(txn, &name).await?;
                let now = now_micros();
                if row.point.expire_at <= now {
                    let when = ferry_kit::db::rfc3339(row.point.expire_at);
                    return Err(Error::precondition(
                        format!("{name} expired at {when} and can no longer be restored"),
                        vec![Precondition::new("RESTORE_POINT_EXPIRED", name.to_string(), format!("expired at {when}; it is pruned"))],
                    ));
                }
                let replaced = store::restore_points::restore(txn, &row, env.id, now).await?;
                let (_, row) = point_row(txn, &name).await?;
                Ok(Restored { restore_point: row.point, replaced })
            })
        })
        .await
    }
}

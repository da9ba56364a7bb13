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
                store::restore_points::retire(txn, &row).await?;
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

/// Rows a prune statement deletes at most: a restore point of a million entities goes in
/// two hundred statements, each short, rather than one that holds the writer for long.
pub const PRUNE_BATCH: u64 = 5_000;

impl Registry {
    /// Prunes every restore point that expired or was deleted, in batches of `batch`
    /// rows, each its own statement; logs each one pruned with its rate. How many, and
    /// how many rows they held.
    pub async fn prune_restore_points(&self, batch: u64) -> Result<(usize, u64)> {
        let (mut pruned, mut total) = (0, 0);
        while let Some((id, archive, name)) = store::restore_points::due(&self.db, now_micros()).await? {
            let started = std::time::Instant::now();
            let mut rows = 0;
            for children in store::restore_points::KEPT {
                rows += ferry_kit::prune::prune_all_children(&self.db, children, archive.into(), batch).await?;
            }
            store::restore_points::remove(&self.db, id, archive).await?;
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(restore_point = %name, rows, secs, rows_per_sec = (rows as f64 / secs.max(1e-6)) as u64, "restore point pruned");
            pruned += 1;
            total += rows;
        }
        Ok((pruned, total))
    }
}

/// Prunes due restore points now and then every `interval`, for as long as the server
/// serves; a failure is logged and tried again at the next tick.
pub async fn pruner(registry: Registry, interval: std::time::Duration) {
    ferry_kit::prune::every(interval, "restore points", || registry.prune_restore_points(PRUNE_BATCH)).await
}

//! Environment fences.

use sea_orm::{ConnectionTrait, DbErr};

use super::{col, exec, one};
use crate::domain::{EnvName, Fence};

pub async fn find<C: ConnectionTrait>(db: &C, env: &EnvName) -> Result<Option<Fence>, DbErr> {
    let Some(row) = one(db, "SELECT holder, reason, fence_time FROM fences WHERE env = ?", vec![env.id().into()]).await? else {
        return Ok(None);
    };
    Ok(Some(Fence { holder: col(&row, 0)?, reason: col(&row, 1)?, fence_time: col(&row, 2)? }))
}

pub async fn insert<C: ConnectionTrait>(db: &C, env: &EnvName, f: &Fence) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO fences (env, holder, reason, fence_time) VALUES (?, ?, ?, ?)",
        vec![env.id().into(), f.holder.as_str().into(), f.reason.as_str().into(), f.fence_time.into()],
    )
    .await?;
    Ok(())
}

pub async fn delete<C: ConnectionTrait>(db: &C, env: &EnvName) -> Result<u64, DbErr> {
    exec(db, "DELETE FROM fences WHERE env = ?", vec![env.id().into()]).await
}

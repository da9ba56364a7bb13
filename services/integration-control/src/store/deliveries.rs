//! Webhook events (by the outbox's sequence, with the body as sent), one delivery per
//! event and subscription, and every attempt.

use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{all, col, exec, one};
use crate::domain::webhooks::{Attempt, Delivery, DeliveryName, SubscriptionName};

/// Stores an event under `sequence` unless it is there already; whether it was new.
pub async fn insert_event<C: ConnectionTrait>(
    db: &C,
    sequence: i64,
    event: &ferry_kit::outbox::Event,
    body: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "INSERT INTO webhook_events (sequence, id, kind, environment, resource, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
        vec![
            sequence.into(),
            event.id.clone().into(),
            event.kind.clone().into(),
            event.environment.clone().into(),
            event.resource.clone().into(),
            body.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(n == 1)
}

/// Queues the event of `sequence` for `subscription`.
pub async fn insert<C: ConnectionTrait>(db: &C, subscription: &str, sequence: i64, now: i64) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO webhook_deliveries (subscription, sequence, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        vec![subscription.into(), sequence.into(), now.into()],
    )
    .await?;
    Ok(())
}

/// Logs one attempt; `delivered` marks the delivery done.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    subscription: &str,
    sequence: i64,
    attempt: &Attempt,
    delivered: bool,
) -> Result<(), DbErr> {
    exec(
        db,
        "INSERT INTO webhook_attempts (subscription, sequence, time, status_code, error, duration_micros) VALUES (?, ?, ?, ?, ?, ?)",
        vec![
            subscription.into(),
            sequence.into(),
            attempt.time.into(),
            attempt.status_code.into(),
            attempt.error.clone().into(),
            attempt.duration_micros.into(),
        ],
    )
    .await?;
    if delivered {
        exec(
            db,
            "UPDATE webhook_deliveries SET delivered_at = ? WHERE subscription = ? AND sequence = ?",
            vec![attempt.time.into(), subscription.into(), sequence.into()],
        )
        .await?;
    }
    Ok(())
}

/// Makes a delivery pending again; whether it exists.
pub async fn redeliver<C: ConnectionTrait>(db: &C, name: &DeliveryName) -> Result<bool, DbErr> {
    let n = exec(
        db,
        "UPDATE webhook_deliveries SET delivered_at = NULL WHERE subscription = ? AND sequence = ?",
        vec![name.subscription.id().into(), name.sequence.into()],
    )
    .await?;
    Ok(n == 1)
}

const COLS: &str = "d.sequence, e.id, e.kind, e.environment, e.resource, d.created_at, d.delivered_at";

/// A subscription's deliveries, newest first, below `before` (a sequence), at most
/// `limit`, each with its attempts (newest first).
pub async fn list<C: ConnectionTrait>(
    db: &C,
    subscription: &SubscriptionName,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<Delivery>, DbErr> {
    let rows = all(
        db,
        &format!(
            "SELECT {COLS} FROM webhook_deliveries d JOIN webhook_events e ON e.sequence = d.sequence \
             WHERE d.subscription = ? AND d.sequence < ? ORDER BY d.sequence DESC LIMIT ?"
        ),
        vec![subscription.id().into(), before.unwrap_or(i64::MAX).into(), Value::from(limit as i64)],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(Delivery {
            name: DeliveryName { subscription: subscription.clone(), sequence: col(r, 0)? },
            event_id: col(r, 1)?,
            event_type: col(r, 2)?,
            environment: col(r, 3)?,
            resource: col(r, 4)?,
            created_at: col(r, 5)?,
            delivered_at: col(r, 6)?,
            delivered: col::<Option<i64>>(r, 6)?.is_some(),
            attempts: Vec::new(),
        });
    }
    if let (Some(first), Some(last)) = (out.first().map(|d| d.name.sequence), out.last().map(|d| d.name.sequence)) {
        let attempts = all(
            db,
            "SELECT sequence, time, status_code, error, duration_micros FROM webhook_attempts \
             WHERE subscription = ? AND sequence >= ? AND sequence <= ? ORDER BY sequence DESC, time DESC",
            vec![subscription.id().into(), last.into(), first.into()],
        )
        .await?;
        for a in &attempts {
            let sequence: i64 = col(a, 0)?;
            if let Some(d) = out.iter_mut().find(|d| d.name.sequence == sequence) {
                d.attempts.push(Attempt { time: col(a, 1)?, status_code: col(a, 2)?, error: col(a, 3)?, duration_micros: col(a, 4)? });
            }
        }
    }
    Ok(out)
}

/// One delivery with its attempts.
pub async fn find<C: ConnectionTrait>(db: &C, name: &DeliveryName) -> Result<Option<Delivery>, DbErr> {
    let exists = one(
        db,
        "SELECT 1 FROM webhook_deliveries WHERE subscription = ? AND sequence = ?",
        vec![name.subscription.id().into(), name.sequence.into()],
    )
    .await?;
    if exists.is_none() {
        return Ok(None);
    }
    Ok(list(db, &name.subscription, Some(name.sequence + 1), 1).await?.into_iter().next().filter(|d| d.name.sequence == name.sequence))
}

/// Delivered deliveries, as they age (their attempts go with them).
pub const DELIVERED: ferry_kit::prune::Aged =
    ferry_kit::prune::Aged { table: "webhook_deliveries", key: "subscription, sequence", time: "delivered_at" };

/// Deletes at most `batch` events stored before `before` that no delivery needs any more;
/// how many.
pub async fn prune_events<C: ConnectionTrait>(db: &C, before: i64, batch: u64) -> Result<u64, DbErr> {
    exec(
        db,
        "DELETE FROM webhook_events WHERE sequence IN (SELECT e.sequence FROM webhook_events e WHERE e.created_at < ? \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.sequence = e.sequence) ORDER BY e.created_at LIMIT ?)",
        vec![before.into(), Value::from(batch as i64)],
    )
    .await
}

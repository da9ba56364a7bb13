//! Webhook subscriptions: their rows (the secret sealed beside its key id) and the
//! delivery worker's view of them.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::{all, col, corrupt, exec, one};
use crate::domain::ResourceId;
use crate::domain::secrets::Sealed;
use crate::domain::webhooks::{Subscription, SubscriptionName, SubscriptionState};

/// A subscription as stored: the record, its sealed secret, whether failures disabled it
/// (events keep queueing for it then) and when its head delivery is next due.
#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    pub subscription: Subscription,
    pub sealed: Sealed,
    pub failure_disabled: bool,
    pub next_attempt_at: i64,
}

const COLS: &str = "id, url, event_types, environments, state, disabled_reason, failure_disabled, consecutive_failures, \
                    next_attempt_at, sealed_secret, sealing_key_id, secret_fingerprint, created_by, created_at, updated_at";

fn list_of(text: &str) -> Result<Vec<String>, DbErr> {
    serde_json::from_str(text).map_err(|e| DbErr::Custom(format!("stored list: {e}")))
}

fn json(list: &[String]) -> Value {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into()).into()
}

fn read(r: &QueryResult) -> Result<SubscriptionRow, DbErr> {
    let id: String = col(r, 0)?;
    let state = match col::<i32>(r, 4)? {
        1 => SubscriptionState::Active,
        2 => SubscriptionState::Disabled,
        n => return Err(corrupt("webhook subscription state", n)),
    };
    Ok(SubscriptionRow {
        subscription: Subscription {
            name: SubscriptionName(ResourceId::from_stored(&id)),
            url: col(r, 1)?,
            event_types: list_of(&col::<String>(r, 2)?)?,
            environments: list_of(&col::<String>(r, 3)?)?,
            state,
            disabled_reason: col(r, 5)?,
            consecutive_failures: col(r, 7)?,
            secret_fingerprint: col(r, 11)?,
            created_by: col(r, 12)?,
            created_at: col(r, 13)?,
            updated_at: col(r, 14)?,
        },
        failure_disabled: col::<i32>(r, 6)? != 0,
        next_attempt_at: col(r, 8)?,
        sealed: Sealed { bytes: col(r, 9)?, key_id: col(r, 10)? },
    })
}

pub async fn find<C: ConnectionTrait>(db: &C, name: &SubscriptionName) -> Result<Option<SubscriptionRow>, DbErr> {
    one(db, &format!("SELECT {COLS} FROM webhook_subscriptions WHERE id = ?"), vec![name.id().into()]).await?.map(|r| read(&r)).transpose()
}

/// Subscriptions ordered by id, after `after`, at most `limit`.
pub async fn list<C: ConnectionTrait>(db: &C, after: Option<&str>, limit: u64) -> Result<Vec<SubscriptionRow>, DbErr> {
    let rows = all(
        db,
        &format!("SELECT {COLS} FROM webhook_subscriptions WHERE id > ? ORDER BY id LIMIT ?"),
        vec![after.unwrap_or("").into(), Value::from(limit as i64)],
    )
    .await?;
    rows.iter().map(read).collect()
}

/// The subscriptions new events queue for: the active ones and those failures disabled
/// (re-enabled, they resume where they stopped). One disabled by hand gets none.
pub async fn receiving<C: ConnectionTrait>(db: &C) -> Result<Vec<SubscriptionRow>, DbErr> {
    let rows =
        all(db, &format!("SELECT {COLS} FROM webhook_subscriptions WHERE state = 1 OR failure_disabled = 1 ORDER BY id"), vec![]).await?;
    rows.iter().map(read).collect()
}

/// Inserts or replaces a subscription.
pub async fn save<C: ConnectionTrait>(db: &C, row: &SubscriptionRow) -> Result<(), DbErr> {
    let s = &row.subscription;
    exec(
        db,
        &format!(
            "INSERT INTO webhook_subscriptions ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET url = excluded.url, event_types = excluded.event_types, \
             environments = excluded.environments, state = excluded.state, disabled_reason = excluded.disabled_reason, \
             failure_disabled = excluded.failure_disabled, consecutive_failures = excluded.consecutive_failures, \
             next_attempt_at = excluded.next_attempt_at, sealed_secret = excluded.sealed_secret, \
             sealing_key_id = excluded.sealing_key_id, secret_fingerprint = excluded.secret_fingerprint, \
             updated_at = excluded.updated_at"
        ),
        vec![
            s.name.id().into(),
            s.url.clone().into(),
            json(&s.event_types),
            json(&s.environments),
            (s.state as i32).into(),
            s.disabled_reason.clone().into(),
            i32::from(row.failure_disabled).into(),
            s.consecutive_failures.into(),
            row.next_attempt_at.into(),
            Value::Bytes(Some(row.sealed.bytes.clone())),
            row.sealed.key_id.clone().into(),
            s.secret_fingerprint.clone().into(),
            s.created_by.clone().into(),
            s.created_at.into(),
            s.updated_at.into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn delete<C: ConnectionTrait>(db: &C, name: &SubscriptionName) -> Result<u64, DbErr> {
    exec(db, "DELETE FROM webhook_attempts WHERE subscription = ?", vec![name.id().into()]).await?;
    exec(db, "DELETE FROM webhook_deliveries WHERE subscription = ?", vec![name.id().into()]).await?;
    exec(db, "DELETE FROM webhook_subscriptions WHERE id = ?", vec![name.id().into()]).await
}

/// What the worker needs to send one subscription's head delivery.
#[derive(Debug, Clone)]
pub struct Due {
    pub subscription: String,
    pub url: String,
    pub sealed: Sealed,
    pub sequence: i64,
    pub event_id: String,
    pub body: String,
}

/// Active subscriptions whose next attempt is due by `now`, each with its head: the
/// undelivered delivery of the lowest event sequence. At most `limit`.
pub async fn due<C: ConnectionTrait>(db: &C, now: i64, limit: u64) -> Result<Vec<Due>, DbErr> {
    let rows = all(
        db,
        "SELECT s.id, s.url, s.sealed_secret, s.sealing_key_id, h.sequence, e.id, e.body FROM webhook_subscriptions s \
         JOIN (SELECT subscription, MIN(sequence) AS sequence FROM webhook_deliveries WHERE delivered_at IS NULL GROUP BY subscription) h \
           ON h.subscription = s.id \
         JOIN webhook_events e ON e.sequence = h.sequence \
         WHERE s.state = 1 AND s.next_attempt_at <= ? ORDER BY s.next_attempt_at, s.id LIMIT ?",
        vec![now.into(), Value::from(limit as i64)],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Due {
                subscription: col(r, 0)?,
                url: col(r, 1)?,
                sealed: Sealed { bytes: col(r, 2)?, key_id: col(r, 3)? },
                sequence: col(r, 4)?,
                event_id: col(r, 5)?,
                body: col(r, 6)?,
            })
        })
        .collect()
}

/// After a success: the failure count is reset and the next head is due at once.
pub async fn succeeded<C: ConnectionTrait>(db: &C, id: &str) -> Result<u64, DbErr> {
    exec(db, "UPDATE webhook_subscriptions SET consecutive_failures = 0, next_attempt_at = 0 WHERE id = ?", vec![id.into()]).await
}

/// Failed attempts in a row so far.
pub async fn failures<C: ConnectionTrait>(db: &C, id: &str) -> Result<i32, DbErr> {
    Ok(match one(db, "SELECT consecutive_failures FROM webhook_subscriptions WHERE id = ?", vec![id.into()]).await? {
        Some(r) => col(&r, 0)?,
        None => 0,
    })
}

/// After a failure: the count, and when to try again; past `disable_after` failures in a
/// row the subscription is DISABLED with `reason`. Returns the new count.
pub async fn failed<C: ConnectionTrait>(db: &C, id: &str, next_attempt_at: i64, disable_after: i32, reason: &str) -> Result<i32, DbErr> {
    let row = one(
        db,
        "UPDATE webhook_subscriptions SET consecutive_failures = consecutive_failures + 1, next_attempt_at = ? \
         WHERE id = ? AND state = 1 RETURNING consecutive_failures",
        vec![next_attempt_at.into(), id.into()],
    )
    .await?;
    let Some(row) = row else { return Ok(0) };
    let failures: i32 = col(&row, 0)?;
    if failures >= disable_after {
        exec(
            db,
            "UPDATE webhook_subscriptions SET state = 2, failure_disabled = 1, disabled_reason = ? WHERE id = ?",
            vec![reason.into(), id.into()],
        )
        .await?;
    }
    Ok(failures)
}

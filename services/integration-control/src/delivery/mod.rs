//! The webhook delivery worker. Per subscription, deliveries go out in event-sequence
//! order: only a subscription's head (its oldest undelivered event) is sent, so a failing
//! receiver holds back its own subscription only, and the events of one resource arrive
//! in the order they were committed. Each attempt is logged; a failure sets the next
//! attempt with exponential backoff and jitter; `disable_after` failures in a row disable
//! the subscription with the reason. Sending holds no transaction: the head is read, the
//! POST made, and the outcome written in one short transaction.

pub mod http;

use std::time::{Duration, Instant};

use ferry_kit::db::now_micros;
use ferry_kit::outbox::backoff;
use rand::Rng;
use sea_orm::DatabaseConnection;

use crate::domain::secrets::Sealer;
use crate::domain::webhooks::{Attempt, signature};
use crate::store::{self, webhooks::Due};

/// The header that names the event (receivers de-duplicate by it).
pub const EVENT_ID_HEADER: &str = "Ferry-Event-Id";
/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "Ferry-Signature";

/// How deliveries are paced.
#[derive(Debug, Clone)]
pub struct Policy {
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Failed attempts in a row that disable a subscription.
    pub disable_after: i32,
    /// The wait when nothing is due.
    pub idle: Duration,
    /// Subscriptions sent to at once.
    pub parallel: u64,
}

/// The worker, forever; idle, it looks again after `policy.idle`, or at once when
/// `queued` is notified (a fan-out queued deliveries).
pub async fn run(
    db: DatabaseConnection,
    sealer: Sealer,
    client: http::Client,
    policy: Policy,
    queued: std::sync::Arc<tokio::sync::Notify>,
) {
    loop {
        let sent = match round(&db, &sealer, &client, &policy).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "webhook delivery round failed");
                0
            }
        };
        if sent == 0 {
            ferry_kit::outbox::idle(&queued, policy.idle).await;
        }
    }
}

/// Sends every due head once, concurrently across subscriptions; how many were sent.
pub async fn round(db: &DatabaseConnection, sealer: &Sealer, client: &http::Client, policy: &Policy) -> Result<usize, sea_orm::DbErr> {
    let due = store::webhooks::due(db, now_micros(), policy.parallel).await?;
    let n = due.len();
    let sends = due.into_iter().map(|d| async move {
        let attempt = send(sealer, client, &d).await;
        if let Err(e) = record(db, policy, &d, attempt).await {
            tracing::warn!(subscription = %d.subscription, error = %e, "webhook attempt not recorded");
        }
    });
    futures::future::join_all(sends).await;
    Ok(n)
}

async fn send(sealer: &Sealer, client: &http::Client, d: &Due) -> Attempt {
    let time = now_micros();
    let started = Instant::now();
    let (status_code, error) = match sealer.open(&d.sealed) {
        Err(_) => (0, format!("the secret cannot be opened (sealing key {})", d.sealed.key_id)),
        Ok(secret) => {
            let t = time / 1_000_000;
            let headers = [(EVENT_ID_HEADER, d.event_id.clone()), (SIGNATURE_HEADER, signature(&secret, t, d.body.as_bytes()))];
            match client.post(&d.url, &headers, d.body.clone()).await {
                http::Outcome::Status(s) if (200..300).contains(&s) => (i32::from(s), String::new()),
                http::Outcome::Status(s) => (i32::from(s), format!("HTTP {s}")),
                http::Outcome::Failed(e) => (0, e),
            }
        }
    };
    Attempt { time, status_code, error, duration_micros: started.elapsed().as_micros() as i64 }
}

async fn record(db: &DatabaseConnection, policy: &Policy, d: &Due, attempt: Attempt) -> Result<(), sea_orm::DbErr> {
    let ok = attempt.error.is_empty();
    let txn = ferry_kit::db::begin(db).await?;
    store::deliveries::record(&txn, &d.subscription, d.sequence, &attempt, ok).await?;
    if ok {
        store::webhooks::succeeded(&txn, &d.subscription).await?;
        txn.commit().await?;
        return Ok(());
    }
    let failures = store::webhooks::failures(&txn, &d.subscription).await? + 1;
    let wait = jitter(backoff(policy.min_backoff, policy.max_backoff, failures.max(1) as u32));
    let reason = format!("{failures} delivery attempts failed in a row; the last: {}", attempt.error);
    let failures =
        store::webhooks::failed(&txn, &d.subscription, attempt.time + wait.as_micros() as i64, policy.disable_after, &reason).await?;
    txn.commit().await?;
    if failures >= policy.disable_after {
        tracing::warn!(subscription = %d.subscription, failures, error = %attempt.error, "webhook subscription disabled");
    } else {
        tracing::info!(subscription = %d.subscription, failures, error = %attempt.error, "webhook delivery failed");
    }
    Ok(())
}

/// Between half and all of `d`, so receivers coming back are not hit by every sender at once.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// Forgets what is past `retention`, every `interval`: delivered deliveries (with their
/// attempts), then the events no delivery needs. Undelivered ones are kept however old.
pub async fn pruner(db: DatabaseConnection, retention: Duration, interval: Duration) {
    ferry_kit::prune::every(interval, "webhook deliveries", || async {
        let mut rows = ferry_kit::prune::prune_all(&db, store::deliveries::DELIVERED, retention, ferry_kit::prune::BATCH).await?;
        let before = now_micros().saturating_sub(retention.as_micros().min(i64::MAX as u128) as i64);
        loop {
            let n = store::deliveries::prune_events(&db, before, ferry_kit::prune::BATCH).await?;
            rows += n;
            if n < ferry_kit::prune::BATCH {
                break;
            }
        }
        if rows > 0 {
            tracing::info!(rows, "pruned webhook deliveries and events");
        }
        Ok::<_, sea_orm::DbErr>(())
    })
    .await
}

//! integration-control's domain metrics, on the process registry (`ferry_kit::metrics`).

use std::sync::LazyLock;

use ferry_kit::metrics::{Counter, CounterFamily, Family, Gauge, register};

use crate::domain::authorize::DenyReason;

/// AuthorizeSync answers that said no, by the reason given (the first failing check).
static DENIALS: LazyLock<CounterFamily<1>> =
    LazyLock::new(|| register("ferry_sync_denials", "AuthorizeSync denials, by the reason given", Family::default()));

/// AuthorizeSync answers that said yes.
static ALLOWED: LazyLock<Counter> =
    LazyLock::new(|| register("ferry_sync_allowed", "AuthorizeSync answers that allowed the sync", Counter::default()));

/// Sync lease events: granted, renewed, refused (a grant or a renewal denied), released,
/// revoked.
static LEASES: LazyLock<CounterFamily<1>> =
    LazyLock::new(|| register("ferry_sync_leases", "Sync lease events, by event", Family::default()));

/// Sync leases outstanding (ACTIVE, not expired), as last counted ([`count_outstanding`]).
static OUTSTANDING: LazyLock<Gauge> =
    LazyLock::new(|| register("ferry_sync_leases_outstanding", "Sync leases outstanding, counted every few seconds", Gauge::default()));

const LEASE_EVENTS: [&str; 5] = ["granted", "renewed", "refused", "released", "revoked"];

/// The reason as the contract's enum value spells it, without its prefix, lowercase.
fn label(reason: DenyReason) -> String {
    reason.code().to_ascii_lowercase()
}

/// Registers the metrics with every series at 0, so they are scraped before any decision.
pub(crate) fn init() {
    LazyLock::force(&ALLOWED);
    LazyLock::force(&OUTSTANDING);
    for event in LEASE_EVENTS {
        let _ = LEASES.get_or_create(&[("event", event.to_owned())]);
    }
    for reason in DenyReason::ALL {
        let _ = DENIALS.get_or_create(&[("reason", label(reason))]);
    }
}

/// Counts one AuthorizeSync answer: allowed when `reason` is `None`.
pub(crate) fn decided(reason: Option<DenyReason>) {
    match reason {
        None => {
            ALLOWED.inc();
        }
        Some(r) => {
            DENIALS.get_or_create(&[("reason", label(r))]).inc();
        }
    }
}

/// Counts `n` lease events of kind `event` (one of [`LEASE_EVENTS`]).
pub(crate) fn leases(event: &'static str, n: u64) {
    if n > 0 {
        LEASES.get_or_create(&[("event", event.to_owned())]).inc_by(n);
    }
}

/// Counts the outstanding leases every `interval`, for as long as the server serves.
pub(crate) async fn count_outstanding(db: sea_orm::DatabaseConnection, interval: std::time::Duration) {
    ferry_kit::prune::every(interval, "sync_leases_outstanding", || async {
        let n = crate::store::leases::outstanding(&db, ferry_kit::db::now_micros()).await?;
        OUTSTANDING.set(n);
        Ok::<_, sea_orm::DbErr>(())
    })
    .await
}

//! Events out: every state change appends its events to the outbox in the change's own
//! transaction (derived from before/after states by `domain::webhooks::events_of`), and
//! the outbox's sink fans each event out to the subscriptions that want it, one delivery
//! row each, in one transaction. Only the append is in the change's transaction:
//! delivery never blocks or fails a change.

use ferry_kit::db::{now_micros, rfc3339};
use ferry_kit::outbox::{self, Event, Stored};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use crate::domain::webhooks::events_of;
use crate::domain::{Change, ChangeSet, ResourceState, ResourceType};
use crate::store;

/// Appends the events of every change in `cs`.
pub(crate) async fn emit_set<C: ConnectionTrait>(txn: &C, cs: &ChangeSet) -> Result<(), DbErr> {
    let events: Vec<Event> = cs.changes.iter().flat_map(|c| events_of(cs.environment.id(), c)).collect();
    outbox::append(txn, &events).await?;
    Ok(())
}

/// Appends the events of one resource's change from `before` to `after`.
pub(crate) async fn emit_change<C: ConnectionTrait>(
    txn: &C,
    environment: &str,
    resource: impl ToString,
    kind: ResourceType,
    before: ResourceState,
    after: ResourceState,
) -> Result<(), DbErr> {
    let change = Change { resource: resource.to_string(), kind, before, after };
    outbox::append(txn, &events_of(environment, &change)).await?;
    Ok(())
}

/// Appends events made by hand (credentials rotated, leases revoked).
pub(crate) async fn emit<C: ConnectionTrait>(txn: &C, events: &[Event]) -> Result<(), DbErr> {
    outbox::append(txn, events).await?;
    Ok(())
}

/// The JSON body a receiver gets.
pub fn body(e: &Event) -> String {
    serde_json::json!({
        "id": e.id,
        "type": e.kind,
        "time": rfc3339(e.time),
        "environment": e.environment,
        "resource": e.resource,
        "data": e.data,
    })
    .to_string()
}

/// The outbox's sink: each event stored once (by its outbox sequence) and queued for every
/// subscription that receives it, in one short transaction.
pub async fn fan_out(db: DatabaseConnection, rows: Vec<Stored>) -> Result<(), DbErr> {
    let txn = ferry_kit::db::begin(&db).await?;
    let subscriptions = store::webhooks::receiving(&txn).await?;
    let now = now_micros();
    for row in &rows {
        if !store::deliveries::insert_event(&txn, row.sequence, &row.event, &body(&row.event), now).await? {
            continue;
        }
        for s in subscriptions.iter().filter(|s| s.subscription.wants(&row.event)) {
            store::deliveries::insert(&txn, s.subscription.name.id(), row.sequence, now).await?;
        }
    }
    txn.commit().await?;
    Ok(())
}

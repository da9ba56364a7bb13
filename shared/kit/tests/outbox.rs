//! `outbox::append` writes each event id once, on both backends: an id already in the
//! outbox, or repeated within one call (in one chunk or across chunks), is skipped, and the
//! events written get consecutive sequences in the order given.

use ferry_kit::outbox::{self, Event};
use ferry_testkit::{Backend, database, per_backend, temp_dir};
use sea_orm::TransactionTrait;
use sea_orm_migration::{MigrationTrait, MigratorTrait};

struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(outbox::Migration)]
    }
}

async fn each_event_id_is_written_once(backend: Backend) {
    let dir = temp_dir("ferry-kit-outbox");
    let Some(url) = database(backend, &dir, "kit.db").await else { return };
    let db = ferry_kit::db::connect(&url).await.expect("connect");
    Migrator::up(&db, None).await.expect("migrate");

    // More events than one chunk of the multi-row insert holds, so a repeat of the first
    // event lands in the second chunk; one event repeated at once lands in the first.
    let n = ferry_kit::db::rows_per_chunk(4) + 5;
    let events: Vec<Event> =
        (0..n).map(|i| Event::new("thing.changed", "env", format!("things/{i}"), serde_json::json!({"i": i}))).collect();
    let mut batch = vec![events[0].clone(), events[0].clone()];
    batch.extend(events[1..].iter().cloned());
    batch.push(events[0].clone());
    let txn = db.begin().await.expect("begin");
    assert_eq!(outbox::append(&txn, &batch).await.expect("append"), n as u64, "every id once");
    txn.commit().await.expect("commit");

    // Ids already written are skipped; a new one follows the last sequence.
    let later = Event::new("thing.changed", "env", "things/later", serde_json::json!({}));
    let txn = db.begin().await.expect("begin");
    assert_eq!(outbox::append(&txn, &[events[2].clone(), later.clone()]).await.expect("append"), 1);
    txn.commit().await.expect("commit");

    let stored = outbox::unrelayed(&db, (n + 10) as u64).await.expect("read");
    let sequences: Vec<i64> = stored.iter().map(|s| s.sequence).collect();
    assert_eq!(sequences, (1..=(n as i64 + 1)).collect::<Vec<_>>(), "consecutive, from 1");
    let ids: Vec<&str> = stored.iter().map(|s| s.event.id.as_str()).collect();
    let expected: Vec<&str> = events.iter().chain([&later]).map(|e| e.id.as_str()).collect();
    assert_eq!(ids, expected, "in the order given");
    assert_eq!(stored[0].event, events[0], "the body round-trips");
    db.close().await.ok();
    let _ = std::fs::remove_dir_all(&dir);
}

per_backend!(each_event_id_is_written_once);

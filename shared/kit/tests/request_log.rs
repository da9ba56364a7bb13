//! `request_id` replies past their retention are pruned in bounded batches, on both
//! backends; newer ones stay.

use ferry_kit::idempotency;
use ferry_testkit::{Backend, database, per_backend, temp_dir};
use sea_orm::{ConnectionTrait, Statement};

async fn count(db: &sea_orm::DatabaseConnection) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) FROM request_log"))
        .await
        .expect("count")
        .expect("a row");
    row.try_get_by_index(0).expect("count")
}

async fn old_replies_are_pruned_in_batches(backend: Backend) {
    let dir = temp_dir("ferry-kit-request-log");
    let Some(url) = database(backend, &dir, "kit.db").await else { return };
    let db = ferry_kit::db::connect(&url).await.expect("connect");
    db.execute_unprepared(&idempotency::create_table_sql(db.get_database_backend())).await.expect("table");
    // 25 replies from 10 days ago, 5 from now.
    let now = ferry_kit::db::now_micros();
    for i in 0..30 {
        let at = if i < 25 { now - 10 * 24 * 3600 * 1_000_000 } else { now };
        let sql = ferry_kit::db::stmt(
            db.get_database_backend(),
            "INSERT INTO request_log (request_id, method, fingerprint, response, created_at) VALUES (?, 'M', 'f', ?, ?)",
            vec![format!("r{i}").into(), vec![1u8].into(), at.into()],
        );
        db.execute_raw(sql).await.expect("insert");
    }
    let week_ago = now - 7 * 24 * 3600 * 1_000_000;
    assert_eq!(ferry_kit::prune::prune(&db, idempotency::REPLIES, week_ago, 10).await.expect("prune"), 10, "one batch is bounded");
    assert_eq!(count(&db).await, 20);

    // The background pruner takes the rest, and only those.
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    let task = tokio::spawn(ferry_kit::prune::pruner(db.clone(), idempotency::REPLIES, week, std::time::Duration::from_secs(3600), 10));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(&db).await > 5 {
        assert!(std::time::Instant::now() < deadline, "not pruned");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    task.abort();
    assert_eq!(count(&db).await, 5, "replies within the retention stay");
    let _ = std::fs::remove_dir_all(&dir);
}

per_backend!(old_replies_are_pruned_in_batches);

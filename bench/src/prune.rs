//! Pruning at scale, after a merge run: the plan's items and the apply job's effects go
//! as the engine's retention pass prunes them (batches of 5,000 rows, one statement
//! each), then a million `request_log` rows as every service's pruner does. Each timed:
//! rows and rows/s.

use std::time::{Duration, Instant};

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database};

/// `request_log` rows written and pruned.
const REQUEST_LOG_ROWS: i64 = 1_000_000;

pub struct Figures {
    pub rows: u64,
    pub secs: f64,
    pub request_log_rows: u64,
    pub request_log_secs: f64,
}

impl Figures {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "prune_rows": self.rows, "prune_s": crate::round(self.secs),
            "prune_request_log_rows": self.request_log_rows, "prune_request_log_s": crate::round(self.request_log_secs),
        })
    }

    pub fn line(&self) -> String {
        let rate = |rows: u64, secs: f64| rows as f64 / secs.max(1e-9);
        format!(
            "pruned {} plan items and job effects in {:.2} s ({:.0} rows/s); {} request_log rows in {:.2} s ({:.0} rows/s)",
            self.rows,
            self.secs,
            rate(self.rows, self.secs),
            self.request_log_rows,
            self.request_log_secs,
            rate(self.request_log_rows, self.request_log_secs)
        )
    }
}

/// Prunes everything in the engine's database at `url` (PostgreSQL) as if its retention
/// had passed, then a million old `request_log` rows.
pub async fn run(url: &str) -> anyhow::Result<Figures> {
    let db = Database::connect(url).await.context("connecting to the engine's database")?;
    let started = Instant::now();
    let p = merge_engine::service::retention::prune(&db, i64::MAX / 2, ferry_kit::prune::BATCH).await?;
    let secs = started.elapsed().as_secs_f64();
    db.execute_unprepared(&format!(
        "INSERT INTO request_log (request_id, method, fingerprint, response, created_at) \
         SELECT 'bench-' || g, 'Bench', 'f', '\\x00'::bytea, g FROM generate_series(1, {REQUEST_LOG_ROWS}) g"
    ))
    .await?;
    db.execute_unprepared("VACUUM ANALYZE request_log").await?;
    let started = Instant::now();
    let request_log_rows =
        ferry_kit::prune::prune_all(&db, ferry_kit::idempotency::REPLIES, Duration::from_secs(3600), ferry_kit::prune::BATCH).await?;
    let request_log_secs = started.elapsed().as_secs_f64();
    db.close().await?;
    Ok(Figures { rows: p.items + p.effects, secs, request_log_rows, request_log_secs })
}

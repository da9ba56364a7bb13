//! The descriptor-driven fuzz test: per backend, the four real services in-process, a small
//! seeded world, then about 15 s of random well-formed requests to every RPC of the
//! descriptor set. No call may get UNKNOWN, INTERNAL, UNAVAILABLE or DATA_LOSS, and every
//! service must still answer health SERVING afterwards.
//!
//! `FERRY_FUZZ_SEED` replays a run (the seed is printed); `FERRY_FUZZ_SECS` changes its
//! length. `ferry-bench fuzz` runs the long one.

use std::time::Duration;

use ferry_fuzz::{Databases, FuzzConfig, Suite};
use ferry_testkit::{Backend, database, temp_dir};
use tonic_health::pb::health_check_response::ServingStatus;

/// Seconds of fuzzing per backend.
const SECS: u64 = 15;

/// Service warnings and errors on the test's output (see [`ferry_fuzz::LOG_FILTER`]);
/// `RUST_LOG` replaces the filter.
fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(ferry_fuzz::LOG_FILTER));
    // Both backends' tests share the process: the second install is refused, which is fine.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

async fn every_rpc_survives_random_requests(backend: Backend) {
    // Arrange
    logs();
    let dir = temp_dir("ferry-fuzz-test");
    let mut urls = Vec::new();
    for file in ["registry.db", "merge.db", "integration.db", "refresh.db"] {
        let Some(url) = database(backend, &dir, file).await else { return };
        urls.push(url);
    }
    let [registry, merge, integration, refresh]: [String; 4] = urls.try_into().expect("four databases"); // ok: test setup
    let suite = Suite::start(&Databases { registry, merge, integration, refresh }, &dir).await.expect("start the suite"); // ok: test setup
    let mut config = FuzzConfig::new().expect("FERRY_FUZZ_SEED"); // ok: test setup
    let secs = std::env::var("FERRY_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(SECS);
    config.duration = Some(Duration::from_secs(secs));

    // Act
    let report = ferry_fuzz::fuzz_suite(&suite, &config).await.expect("seed the world"); // ok: test setup
    let health = suite.health().await;
    suite.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    // Assert
    let not_serving: Vec<String> =
        health.iter().filter(|(_, s)| !matches!(s, Ok(ServingStatus::Serving))).map(|(what, s)| format!("{what}: {s:?}")).collect();
    let serving = if not_serving.is_empty() { "all four SERVING".to_owned() } else { format!("NOT SERVING: {not_serving:?}") };
    // The whole report is in the failure message; this line is for --nocapture runs.
    println!(
        "{backend:?}: {} calls, {:.0} calls/s, {} bad; health after: {serving}",
        report.calls,
        report.calls_per_second(),
        report.bad_count
    );
    assert!(report.calls > 0, "{backend:?}: no call was made\n{report}");
    assert!(
        report.clean(),
        "{backend:?}: {} bad calls ({} distinct), {} malformed replies, {} harness errors (replay: FERRY_FUZZ_SEED={}); \
         health after: {serving}\n{report}",
        report.bad_count,
        report.distinct.len(),
        report.malformed_replies.len(),
        report.harness_errors.len(),
        report.seed,
    );
    assert!(not_serving.is_empty(), "{backend:?}: not SERVING after fuzzing: {not_serving:#?}");
}

ferry_testkit::per_backend!(every_rpc_survives_random_requests);

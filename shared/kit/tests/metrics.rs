//! The `/metrics` endpoint and the call metrics: a server with metrics on port 0, calls
//! that succeed, fail and stream, then a scrape over HTTP. The registry is per process and
//! other tests of this binary may call too, so counts are compared before and after.

use std::time::Duration;

use ferry_kit::config::CommonArgs;
use ferry_kit::server::ServerBuilder;
use ferry_testkit::{Scrape, scrape};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const HANDLED: &str = "ferry_grpc_server_handled_total";
const HEALTH: &str = "grpc.health.v1.Health";

fn handled(s: &Scrape, method: &str, code: &str) -> f64 {
    let service = if method == "unknown" { "unknown" } else { HEALTH };
    s.value(HANDLED, &[("service", service), ("method", method), ("code", code)])
}

#[tokio::test]
async fn calls_are_counted_by_method_and_code_and_timed() {
    // Arrange: auth on, so an unauthenticated application call is refused by the auth layer.
    let dir = ferry_testkit::temp_dir("kit-metrics");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "secret-token-of-the-metrics-test admin *\n").expect("tokens file");
    let args = CommonArgs {
        tokens_file: Some(tokens),
        metrics_listen: Some("127.0.0.1:0".parse().expect("addr")),
        shutdown_grace_secs: 1,
        ..CommonArgs::default()
    };
    let server = ServerBuilder::new().bind("127.0.0.1:0".parse().expect("addr"), &args).await.expect("bind");
    let addr = server.local_addr();
    let metrics = server.metrics_addr().expect("metrics endpoint bound");
    assert_ne!(metrics.port(), 0, "port 0 is resolved to a real port");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));
    let channel = ferry_kit::client::channel(&format!("http://{addr}")).expect("channel");
    let mut health = HealthClient::new(channel.clone());
    health.check(HealthCheckRequest { service: String::new() }).await.expect("warm-up call");
    let before = scrape(metrics, "/metrics").await.expect("scrape");

    // Act: two OK calls, one NOT_FOUND, one stream ended by its client, one call refused
    // by the auth layer (a path no descriptor has: the `unknown` label).
    for _ in 0..2 {
        health.check(HealthCheckRequest { service: String::new() }).await.expect("check");
    }
    let missing = health.check(HealthCheckRequest { service: "no.such.Service".into() }).await.expect_err("unknown service");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.expect("watch").into_inner();
    watch.message().await.expect("first status").expect("a status");
    drop(watch);
    let mut raw = tonic::client::Grpc::new(channel);
    raw.ready().await.expect("ready");
    let refused = raw
        .unary::<_, (), _>(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/ferry.nothing.v1.Nothing/Call"),
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    // Assert: the endpoint serves the exposition, with the calls counted per label set.
    let mut after = scrape(metrics, "/metrics").await.expect("scrape");
    // The stream is counted when the server sees its end, just after the client drops it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while handled(&after, "Watch", "CANCELLED") - handled(&before, "Watch", "CANCELLED") < 1.0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = scrape(metrics, "/metrics").await.expect("scrape");
    }
    assert_eq!(after.status, 200);
    assert!(after.content_type.starts_with("application/openmetrics-text"), "{}", after.content_type);
    assert!(after.body.contains("# TYPE ferry_grpc_server_handled counter"), "{}", after.body);
    assert!(handled(&after, "Check", "OK") - handled(&before, "Check", "OK") >= 2.0, "{}", after.body);
    assert!(handled(&after, "Check", "NOT_FOUND") - handled(&before, "Check", "NOT_FOUND") >= 1.0, "{}", after.body);
    assert!(handled(&after, "Watch", "CANCELLED") - handled(&before, "Watch", "CANCELLED") >= 1.0, "{}", after.body);
    assert!(handled(&after, "unknown", "UNAUTHENTICATED") - handled(&before, "unknown", "UNAUTHENTICATED") >= 1.0, "{}", after.body);
    let count = |s: &Scrape| s.value("ferry_grpc_server_handling_seconds_count", &[("service", HEALTH), ("method", "Check")]);
    assert!(count(&after) - count(&before) >= 3.0, "{}", after.body);
    let le_60 = after.sample("ferry_grpc_server_handling_seconds_bucket", &[("service", HEALTH), ("method", "Check"), ("le", "60.0")]);
    assert_eq!(le_60, Some(count(&after)), "every call falls under the 60 s bucket");

    let other = scrape(metrics, "/other").await.expect("scrape");
    assert_eq!(other.status, 404);

    // The endpoint stops with the server.
    tx.send(()).expect("signal");
    tokio::time::timeout(Duration::from_secs(5), serving).await.expect("server stops").expect("task").expect("served");
    let gone = tokio::time::timeout(Duration::from_secs(2), scrape(metrics, "/metrics")).await;
    assert!(!matches!(gone, Ok(Ok(_))), "metrics endpoint still answers after shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

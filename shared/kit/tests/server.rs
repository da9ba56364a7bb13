//! The bootstrap: port 0, health, auth on application calls, graceful shutdown.

use std::time::Duration;

use ferry_kit::config::CommonArgs;
use ferry_kit::server::ServerBuilder;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

#[tokio::test]
async fn health_turns_not_serving_on_shutdown_and_the_server_stops() {
    let args = CommonArgs { no_auth: true, shutdown_grace_secs: 1, ..CommonArgs::default() };
    let server = ServerBuilder::new().bind("127.0.0.1:0".parse().expect("addr"), &args).await.expect("bind");
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "port 0 is resolved to a real port");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));

    let channel = ferry_kit::client::channel(&format!("http://{addr}")).expect("channel");
    let mut health = HealthClient::new(channel);
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.expect("watch").into_inner();
    let first: HealthCheckResponse = watch.message().await.expect("message").expect("status");
    assert_eq!(first.status(), ServingStatus::Serving);

    tx.send(()).expect("signal");
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message()).await.expect("status change in time");
    assert_eq!(next.expect("message").expect("status").status(), ServingStatus::NotServing);
    let stopped = tokio::time::timeout(Duration::from_secs(5), serving).await.expect("server stops within the grace period");
    assert!(stopped.expect("task").is_ok());
}

#[tokio::test]
async fn auth_is_required_unless_explicitly_off() {
    let err = ServerBuilder::new().bind("127.0.0.1:0".parse().expect("addr"), &CommonArgs::default()).await.err().expect("refused");
    assert!(err.to_string().contains("tokens-file"), "{err}");
}

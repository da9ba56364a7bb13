//! Health and reflection: what probes and grpcurl rely on, open without a token.

use ferry_cli::up;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::helpers::{eventually, health_status, spawn_suite};

const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;

#[tokio::test]
async fn every_service_reports_serving() {
    // Arrange
    let app = spawn_suite().await;
    let names: Vec<&str> = app.suite.endpoints.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, [up::REGISTRY, up::MERGE, up::INTEGRATION, up::REFRESH]);

    // Act / Assert
    for (name, _) in &app.suite.endpoints {
        let url = app.suite.endpoint(name);
        let status = eventually(name, || {
            let url = url.clone();
            async move {
                match health_status(url, name).await? {
                    SERVING => Ok(SERVING),
                    other => Err(format!("status {other}")),
                }
            }
        })
        .await;
        assert_eq!(status, SERVING, "{name}");
    }
    app.stop().await;
}

async fn list_services(url: &str) -> Vec<String> {
    let channel = ferry_kit::client::channel(url).expect("channel");
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
    let mut replies = client.server_reflection_info(tokio_stream::once(request)).await.expect("reflection call").into_inner();
    let reply = replies.message().await.expect("reflection reply").expect("one reply");
    match reply.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection reply {other:?}"),
    }
}

#[tokio::test]
async fn reflection_lists_each_service_and_health() {
    // Arrange
    let app = spawn_suite().await;

    for (name, _) in &app.suite.endpoints {
        // Act
        let services = list_services(&app.suite.endpoint(name)).await;

        // Assert
        assert!(services.iter().any(|s| s == name), "{name} not listed on its own port: {services:?}");
        assert!(services.iter().any(|s| s == "grpc.health.v1.Health"), "health not listed for {name}: {services:?}");
        // Every server also serves its own audit log.
        assert!(services.iter().any(|s| s == "ferry.audit.v1.AuditService"), "no audit log on {name}'s port: {services:?}");
        let other_ferry: Vec<&String> =
            services.iter().filter(|s| s.starts_with("ferry.") && *s != name && *s != "ferry.audit.v1.AuditService").collect();
        assert!(other_ferry.is_empty(), "{name}'s port lists services it does not serve: {other_ferry:?}");
    }
    app.stop().await;
}

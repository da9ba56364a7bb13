//! Bearer tokens across the suite: the admin token `up` writes opens the registry;
//! nothing else does, on every service.

use ferry_cli::up;
use ferry_kit::client::{ClientInterceptor, channel};
use ferry_proto::integration::v1::GetIntegrationRequest;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;
use ferry_proto::merge::v1::ListJobsRequest;
use ferry_proto::merge::v1::merge_service_client::MergeServiceClient;
use ferry_proto::refresh::v1::ListRefreshRunsRequest;
use ferry_proto::refresh::v1::refresh_service_client::RefreshServiceClient;
use ferry_proto::registry::v1::ListEnvironmentsRequest;
use tonic::Code;

use crate::helpers::spawn_suite;

#[tokio::test]
async fn registry_needs_a_known_token() {
    // Arrange
    let app = spawn_suite().await;
    let token = app.suite.admin_token.clone();

    // Act
    let none = app.registry(None).list_environments(ListEnvironmentsRequest::default()).await;
    let wrong = app.registry(Some("not-the-admin-token-0123456789")).list_environments(ListEnvironmentsRequest::default()).await;
    let admin = app.registry(Some(&token)).list_environments(ListEnvironmentsRequest::default()).await;

    // Assert
    assert_eq!(none.map(|_| ()).unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(wrong.map(|_| ()).unwrap_err().code(), Code::Unauthenticated);
    let envs = admin.expect("admin token lists environments").into_inner();
    assert!(envs.environments.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn every_service_authenticates_its_calls() {
    // Arrange
    let app = spawn_suite().await;
    let token = app.suite.admin_token.clone();
    let merge = |token: Option<&str>| {
        let channel = channel(&app.suite.endpoint(up::MERGE)).expect("channel");
        MergeServiceClient::with_interceptor(channel, ClientInterceptor::new(token).expect("token"))
    };
    let integration = |token: Option<&str>| {
        let channel = channel(&app.suite.endpoint(up::INTEGRATION)).expect("channel");
        IntegrationServiceClient::with_interceptor(channel, ClientInterceptor::new(token).expect("token"))
    };
    let refresh = |token: Option<&str>| {
        let channel = channel(&app.suite.endpoint(up::REFRESH)).expect("channel");
        RefreshServiceClient::with_interceptor(channel, ClientInterceptor::new(token).expect("token"))
    };

    // Act
    let calls = [
        ("merge", merge(None).list_jobs(ListJobsRequest::default()).await.map(|_| ())),
        ("integration", integration(None).get_integration(GetIntegrationRequest::default()).await.map(|_| ())),
        ("refresh", refresh(None).list_refresh_runs(ListRefreshRunsRequest::default()).await.map(|_| ())),
    ];
    let admin = merge(Some(&token)).list_jobs(ListJobsRequest::default()).await;

    // Assert
    for (service, call) in calls {
        assert_eq!(call.unwrap_err().code(), Code::Unauthenticated, "{service} served a call without a token");
    }
    assert!(admin.is_ok(), "the admin token is served: {admin:?}");
    app.stop().await;
}

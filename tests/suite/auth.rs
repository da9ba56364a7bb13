//! Bearer tokens across the suite: the admin token `up` writes opens the registry;
//! nothing else does.

use ferry_cli::up;
use ferry_kit::client::{ClientInterceptor, channel};
use ferry_proto::merge::v1::ListJobsRequest;
use ferry_proto::merge::v1::merge_service_client::MergeServiceClient;
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
async fn merge_service_authenticates_then_answers_unimplemented() {
    // Arrange
    let app = spawn_suite().await;
    let client = |token: Option<&str>| {
        let channel = channel(&app.suite.endpoint(up::MERGE)).expect("channel");
        MergeServiceClient::with_interceptor(channel, ClientInterceptor::new(token).expect("token"))
    };

    // Act
    let anonymous = client(None).list_jobs(ListJobsRequest::default()).await;
    let admin = client(Some(&app.suite.admin_token)).list_jobs(ListJobsRequest::default()).await;

    // Assert
    assert_eq!(anonymous.map(|_| ()).unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(admin.map(|_| ()).unwrap_err().code(), Code::Unimplemented);
    app.stop().await;
}

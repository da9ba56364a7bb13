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

/// Every service reads its tokens file again when it changes: a token added is served
/// within seconds, and a token removed is refused from then on, without a restart.
#[tokio::test]
async fn a_token_removed_from_the_tokens_file_stops_working_without_a_restart() {
    // Arrange
    let app = spawn_suite().await;
    let path = app.dir.path().join("data").join(up::TOKENS_FILE);
    let original = std::fs::read_to_string(&path).expect("tokens file");
    let ci = "ci-pipeline-token-0123456789abcdef";
    const REFUSED: Codes = (Some(Code::Unauthenticated), Some(Code::Unauthenticated));
    let before = codes(&app, ci).await;

    // Act: add a line, then take it out again, then write a bad line.
    std::fs::write(&path, format!("{original}{ci} viewer * ci-pipeline\n")).expect("add a token");
    let added = eventually_codes(|| codes(&app, ci), (None, None)).await;
    std::fs::write(&path, &original).expect("remove the token");
    let removed = eventually_codes(|| codes(&app, ci), REFUSED).await;
    std::fs::write(&path, format!("{original}{ci} root * ci-pipeline\n")).expect("a bad line");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;

    // Assert
    assert_eq!(before, REFUSED, "not yet in the file");
    assert!(added, "the added token was served within 20 s on the registry and the merge engine");
    assert!(removed, "the removed token was refused within 20 s");
    assert_eq!(codes(&app, &app.suite.admin_token).await, (None, None), "a bad file leaves the tokens in force as they were");
    assert_eq!(codes(&app, ci).await, REFUSED, "the bad line grants nothing");
    app.stop().await;
}

/// What the registry's ListEnvironments and the merge engine's ListJobs answer `token`.
type Codes = (Option<Code>, Option<Code>);

async fn codes(app: &crate::helpers::TestSuite, token: &str) -> Codes {
    let r = app.registry(Some(token)).list_environments(ListEnvironmentsRequest::default()).await.err().map(|e| e.code());
    let channel = channel(&app.suite.endpoint(up::MERGE)).expect("channel");
    let mut merge = MergeServiceClient::with_interceptor(channel, ClientInterceptor::new(Some(token)).expect("token"));
    let m = merge.list_jobs(ListJobsRequest::default()).await.err().map(|e| e.code());
    (r, m)
}

/// Whether `call` answers `want` within 20 s.
async fn eventually_codes<F, Fut>(call: F, want: Codes) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Codes>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if call().await == want {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    false
}

//! `ferry up`'s data folder: one admin token and one coordinator holder id, written once,
//! private, reused; one suite on a folder at a time.

use ferry_cli::up;

use crate::helpers::{TempDir, options};

#[tokio::test]
async fn restart_reuses_the_admin_token_and_keeps_it_private() {
    // Arrange
    let dir = TempDir::new();
    let first = up::start(options(dir.path())).await.expect("first start");
    let token = first.admin_token.clone();
    first.shutdown().await;

    // Act
    let second = up::start(options(dir.path())).await.expect("second start");

    // Assert
    assert_eq!(second.admin_token, token);
    assert_eq!(token.len(), 64, "32 random bytes in hex");
    let data = dir.path().join("data");
    let stored = std::fs::read_to_string(data.join(up::ADMIN_TOKEN_FILE)).expect("admin.token");
    assert_eq!(stored.trim(), token);
    let tokens = std::fs::read_to_string(data.join(up::TOKENS_FILE)).expect("tokens");
    assert!(tokens.lines().any(|l| l == format!("{token} admin+service * {}", up::LOCAL_ADMIN)), "{tokens}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [up::ADMIN_TOKEN_FILE, up::TOKENS_FILE] {
            let mode = std::fs::metadata(data.join(file)).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    second.shutdown().await;
}

#[tokio::test]
async fn one_suite_per_data_folder_with_one_holder_id() {
    // Arrange
    let dir = TempDir::new();
    let first = up::start(options(dir.path())).await.expect("first start");
    let holder = std::fs::read_to_string(dir.path().join("data").join(up::HOLDER_ID_FILE)).expect("holder id file");

    // Act
    let second = up::start(options(dir.path())).await.map(|_| ()).expect_err("a second suite on the same folder");
    first.shutdown().await;
    let third = up::start(options(dir.path())).await.expect("the folder is free again");

    // Assert
    let message = format!("{second:#}");
    assert!(message.contains("another `ferry up` is running on"), "{message}");
    assert!(holder.trim().starts_with("ferry-up-"), "{holder}");
    let again = std::fs::read_to_string(dir.path().join("data").join(up::HOLDER_ID_FILE)).expect("holder id file");
    assert_eq!(again, holder, "the holder id is kept: a restarted suite takes back its own runs");
    third.shutdown().await;
}

#[tokio::test]
async fn a_taken_port_fails_the_start() {
    // Arrange
    let dir = TempDir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut opts = options(dir.path());
    opts.refresh_port = taken.local_addr().expect("addr").port();

    // Act
    let result = up::start(opts).await;

    // Assert
    let err = result.map(|_| ()).expect_err("the refresh port is taken");
    assert!(format!("{err:#}").contains("refresh-coordinator"), "{err:#}");
}

/// `ferry up --metrics-listen`: one endpoint, bound on port 0 here, serves every service's
/// metrics; calls that succeed and fail are counted with their service, method and code.
/// (The registry is per process and other tests of this binary call too: deltas.)
#[tokio::test]
async fn metrics_of_all_four_services_on_one_endpoint() {
    use ferry_kit::client::{ClientInterceptor, channel};
    use ferry_proto::registry::v1 as rpb;
    use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;

    // Arrange
    let dir = TempDir::new();
    let mut opts = options(dir.path());
    opts.common.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
    let suite = up::start(opts).await.expect("start");
    let metrics = suite.metrics.expect("a metrics endpoint");
    let interceptor = ClientInterceptor::new(Some(&suite.admin_token)).expect("token");
    let mut registry = RegistryServiceClient::with_interceptor(channel(&suite.endpoint(up::REGISTRY)).expect("channel"), interceptor);
    let before = ferry_testkit::scrape(metrics, "/metrics").await.expect("scrape");

    // Act: one call that succeeds, one that fails.
    registry.list_environments(rpb::ListEnvironmentsRequest::default()).await.expect("list environments");
    let missing = registry
        .get_environment(rpb::GetEnvironmentRequest { name: "environments/nowhere".into() })
        .await
        .expect_err("no such environment");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // Assert
    let after = ferry_testkit::scrape(metrics, "/metrics").await.expect("scrape");
    assert_eq!(after.status, 200);
    let svc = ("service", "ferry.registry.v1.RegistryService");
    let delta = |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    assert!(delta("ferry_grpc_server_handled_total", &[svc, ("method", "ListEnvironments"), ("code", "OK")]) >= 1.0, "{}", after.body);
    assert!(delta("ferry_grpc_server_handled_total", &[svc, ("method", "GetEnvironment"), ("code", "NOT_FOUND")]) >= 1.0, "{}", after.body);
    assert!(delta("ferry_grpc_server_handling_seconds_count", &[svc, ("method", "GetEnvironment")]) >= 1.0, "{}", after.body);
    // The other services' domain counters are in the same process registry (from 0; the
    // step histogram shows once a step ran).
    for family in
        ["ferry_merge_items_applied", "ferry_merge_jobs_pending", "ferry_merge_items_pending", "ferry_sync_denials", "ferry_sync_allowed"]
    {
        assert!(after.body.contains(&format!("# TYPE {family} ")), "{family} is served: {}", after.body);
    }
    suite.shutdown().await;
}

//! Identities beyond the tokens file, through the real services: a JWT from a test JWKS
//! server pauses a sync job and the job records the JWT's subject; only a caller with the
//! service right may pass `x-ferry-on-behalf-of`; under mutual TLS a client certificate's
//! SPIFFE id is the caller, and a certificate with no mapped SAN is refused naming its SANs.

use ferry_cli::up;
use ferry_kit::client::{ClientInterceptor, channel, channel_with};
use ferry_kit::config::{CommonArgs, JwtArgs};
use ferry_proto::integration::v1::PauseSyncJobRequest;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use ferry_proto::registry::v1::{CreateEnvironmentRequest, Environment, ListEnvironmentsRequest};
use ferry_testkit::jwt::{JwksServer, SigningKey, claims, jwks};
use tonic::Code;

use crate::helpers::{TempDir, TestSuite, eventually, health_status, options};
use crate::tls::{Pki, SPIFFE_ID};

const ISSUER: &str = "https://login.example.com";

#[tokio::test]
async fn a_jwt_caller_pauses_a_sync_job_as_its_subject_and_only_a_service_passes_a_caller_on() {
    // Arrange: the suite accepting JWTs of the test issuer beside ferry up's tokens file.
    let key = SigningKey::rsa(0, "test-key");
    let issuer = JwksServer::start(jwks(&[&key]), None, None).await;
    let dir = TempDir::new();
    let mut opts = options(dir.path());
    *opts.common.jwt = JwtArgs {
        issuer: Some(ISSUER.into()),
        audience: Some("ferry".into()),
        jwks_url: Some(issuer.url("/jwks")),
        role_map: "ferry-ops=operator,ferry-services=admin+service".into(),
        ..JwtArgs::default()
    };
    let suite = up::start(opts).await.expect("start the suite with JWTs");
    let app = TestSuite { suite, dir };
    let url = app.suite.endpoint(up::INTEGRATION);
    eventually("integration health", || async { health_status(url.clone(), up::INTEGRATION).await.map(|_| ()) }).await;
    app.cli_json(&["env", "create", "dev", "--tier", "non-production"]).await;
    let nightly = app.cli_json(&["job", "create", "dev", "nightly", "--schedule", "0 2 * * *"]).await;
    let weekly = app.cli_json(&["job", "create", "dev", "weekly", "--schedule", "0 3 * * 0"]).await;
    let jwt = |sub: &str, group: &str| {
        let mut c = claims(ISSUER, "ferry", sub);
        c["groups"] = serde_json::json!([group]);
        key.sign(&c)
    };
    let integration = |token: &str| {
        IntegrationServiceClient::with_interceptor(channel(&url).expect("channel"), ClientInterceptor::new(Some(token)).expect("token"))
    };
    let pause = |name: &serde_json::Value| PauseSyncJobRequest {
        name: name["name"].as_str().expect("job name").to_owned(),
        reason: "maintenance".into(),
        request_id: String::new(),
    };

    // Act
    let paused = integration(&jwt("dana@example.com", "ferry-ops")).pause_sync_job(pause(&nightly)).await;
    let passing_on = ferry_kit::client::on_behalf_of("pat@example.com", async {
        let person = integration(&jwt("dana@example.com", "ferry-ops")).pause_sync_job(pause(&weekly)).await;
        let service =
            integration(&jwt("system:serviceaccount:ferry:refresh-coordinator", "ferry-services")).pause_sync_job(pause(&weekly)).await;
        (person, service)
    })
    .await;
    let stranger = integration(&jwt("eve@example.com", "outsiders")).pause_sync_job(pause(&weekly)).await;

    // Assert
    assert_eq!(paused.expect("the JWT caller pauses the job").into_inner().paused_by, "dana@example.com");
    let person = passing_on.0.expect_err("an operator may not pass a caller on");
    assert_eq!(
        (person.code(), person.message()),
        (Code::PermissionDenied, "only a caller with the service right may pass x-ferry-on-behalf-of")
    );
    assert!(passing_on.1.is_ok(), "a caller with +service may: {:?}", passing_on.1);
    assert_eq!(stranger.expect_err("no role").code(), Code::PermissionDenied);
    app.stop().await;
}

#[tokio::test]
async fn a_client_certificate_is_the_caller_by_its_spiffe_id_and_an_unmapped_one_is_refused() {
    // Arrange: the suite on mutual TLS, the coordinator's SPIFFE id mapped to a viewer.
    let pki = Pki::new();
    let dir = TempDir::new();
    let identities = dir.path().join("identities");
    std::fs::write(&identities, format!("# test identities\n{SPIFFE_ID} viewer *\n")).expect("identities file");
    let mut opts = options(dir.path());
    opts.common = CommonArgs { tls_client_identities_file: Some(identities), ..pki.server_args(true) };
    let suite = up::start(opts).await.expect("start the suite on mTLS");
    let url = suite.endpoint(up::REGISTRY);
    let registry = |identity: &str| RegistryServiceClient::new(channel_with(&url, &pki.client("ca.pem", Some(identity))).expect("channel"));
    eventually("registry over mTLS", || async {
        registry("spiffe").list_environments(ListEnvironmentsRequest::default()).await.map(|_| ()).map_err(|s| s.to_string())
    })
    .await;

    // Act
    let listed = registry("spiffe").list_environments(ListEnvironmentsRequest::default()).await;
    let create = CreateEnvironmentRequest { environment_id: "dev".into(), environment: Some(Environment::default()), ..Default::default() };
    let too_low = registry("spiffe").create_environment(create).await;
    let unmapped = registry("client").list_environments(ListEnvironmentsRequest::default()).await;

    // Assert
    assert!(listed.is_ok(), "the SPIFFE id is a viewer: {listed:?}");
    let too_low = too_low.expect_err("a viewer may not create environments");
    assert_eq!((too_low.code(), too_low.message()), (Code::PermissionDenied, "createenvironment needs the admin role"));
    let unmapped = unmapped.expect_err("no SAN of the certificate is mapped");
    assert_eq!(unmapped.code(), Code::Unauthenticated);
    assert!(unmapped.message().ends_with("(SANs: localhost)"), "{}", unmapped.message());
    suite.shutdown().await;
}

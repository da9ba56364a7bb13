//! TLS and mutual TLS with certificates the test makes (rcgen): a CA, a server
//! certificate for `localhost`/`127.0.0.1` (also usable as a client certificate, as the
//! services present it on their own calls), a client certificate, and a second CA that
//! nobody trusts with a client certificate of its own, and a client certificate whose URI
//! SAN is a SPIFFE id ([`SPIFFE_ID`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use ferry_cli::up;
use ferry_kit::client::{ClientTls, channel, channel_with};
use ferry_kit::config::CommonArgs;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use ferry_proto::registry::v1::{CreateEnvironmentRequest, Environment, ListEnvironmentsRequest};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use tokio::task::JoinHandle;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::helpers::{TempDir, eventually, options};

/// The URI SAN of the `spiffe` client certificate.
pub const SPIFFE_ID: &str = "spiffe://cluster.local/ns/ferry/sa/refresh-coordinator";

/// The test's certificates, as PEM files in a temporary folder.
pub struct Pki {
    dir: TempDir,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA certificate")
}

/// A certificate for `localhost` and `127.0.0.1` (and the URI SAN `uri`), good for
/// server and client auth.
fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, name: &str, uri: Option<&str>) -> (String, String) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
    if let Some(uri) = uri {
        params.subject_alt_names.push(rcgen::SanType::URI(uri.try_into().expect("URI SAN")));
    }
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &**issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    pub fn new() -> Self {
        let dir = TempDir::new();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write PEM");
        let (trusted, other) = (ca("Ferry test CA"), ca("Some other CA"));
        write("ca.pem", &trusted.pem());
        write("other-ca.pem", &other.pem());
        for (name, issuer, uri) in
            [("server", &trusted, None), ("client", &trusted, None), ("rogue", &other, None), ("spiffe", &trusted, Some(SPIFFE_ID))]
        {
            let (cert, key) = leaf(issuer, name, uri);
            write(&format!("{name}.pem"), &cert);
            write(&format!("{name}.key"), &key);
        }
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Service settings: TLS with the server certificate (presented on outgoing calls
    /// too), trusting the test CA; with `mutual`, clients must present a certificate
    /// the test CA signed.
    pub fn server_args(&self, mutual: bool) -> CommonArgs {
        CommonArgs {
            tls_cert_file: Some(self.path("server.pem")),
            tls_key_file: Some(self.path("server.key")),
            tls_client_ca_file: mutual.then(|| self.path("ca.pem")),
            tls_ca_file: Some(self.path("ca.pem")),
            shutdown_grace_secs: 5,
            ..CommonArgs::default()
        }
    }

    /// A client trusting `ca`, presenting `identity` (`"client"`, `"rogue"`, `"spiffe"`)
    /// when given.
    pub fn client(&self, ca: &str, identity: Option<&str>) -> ClientTls {
        let cert = identity.map(|n| self.path(&format!("{n}.pem")));
        let key = identity.map(|n| self.path(&format!("{n}.key")));
        ClientTls::load(Some(&self.path(ca)), cert.as_deref(), key.as_deref()).expect("client TLS")
    }
}

/// A group-registry of its own (no auth), serving until dropped or stopped.
struct Registry {
    addr: SocketAddr,
    health_addr: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ferry_kit::Error>>,
    _dir: TempDir,
}

impl Registry {
    async fn start(mut common: CommonArgs) -> Self {
        let dir = TempDir::new();
        common.no_auth = true;
        let config = group_registry::Config::new(
            "127.0.0.1:0".parse().expect("addr"),
            format!("sqlite://{}", dir.path().join("registry.db").display()),
            common,
        );
        let server = group_registry::build(&config).await.expect("start group-registry");
        let (addr, health_addr) = (server.local_addr(), server.health_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        Self { addr, health_addr, stop: Some(stop), task, _dir: dir }
    }

    fn https(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// Starts the graceful shutdown; [`Registry::stopped`] waits for its end.
    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    async fn stopped(mut self) {
        self.shut_down();
        self.task.await.expect("server task").expect("server stopped cleanly");
    }
}

async fn list_environments(url: &str, tls: &ClientTls) -> Result<Vec<Environment>, tonic::Status> {
    let channel = channel_with(url, tls).map_err(|e| tonic::Status::internal(e.to_string()))?;
    let reply = RegistryServiceClient::new(channel).list_environments(ListEnvironmentsRequest::default()).await?;
    Ok(reply.into_inner().environments)
}

async fn health(url: &str, tls: &ClientTls) -> Result<i32, tonic::Status> {
    let channel = channel_with(url, tls).map_err(|e| tonic::Status::internal(e.to_string()))?;
    let reply: tonic::Response<HealthCheckResponse> = HealthClient::new(channel).check(HealthCheckRequest::default()).await?;
    Ok(reply.into_inner().status)
}

const SERVING: i32 = ServingStatus::Serving as i32;
const NOT_SERVING: i32 = ServingStatus::NotServing as i32;

#[tokio::test]
async fn a_client_trusting_the_ca_reaches_a_tls_server() {
    // Arrange
    let pki = Pki::new();
    let registry = Registry::start(pki.server_args(false)).await;
    let tls = pki.client("ca.pem", None);
    let url = registry.https();

    // Act
    let status = eventually("tls health", || async { health(&url, &tls).await.map_err(|s| s.to_string()) }).await;
    let channel = channel_with(&url, &tls).expect("channel");
    let created = RegistryServiceClient::new(channel)
        .create_environment(CreateEnvironmentRequest {
            environment_id: "dev".into(),
            environment: Some(Environment { tier: 2, ..Default::default() }),
            request_id: "tls-1".into(),
        })
        .await;
    let listed = list_environments(&url, &tls).await;

    // Assert
    assert_eq!(status, SERVING);
    assert_eq!(created.expect("create over TLS").into_inner().name, "environments/dev");
    let names: Vec<String> = listed.expect("list over TLS").into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["environments/dev"]);
    registry.stopped().await;
}

#[tokio::test]
async fn a_tls_server_refuses_plaintext_and_clients_trusting_another_ca() {
    // Arrange
    let pki = Pki::new();
    let registry = Registry::start(pki.server_args(false)).await;
    let trusted = pki.client("ca.pem", None);
    eventually("tls health", || async { health(&registry.https(), &trusted).await.map_err(|s| s.to_string()) }).await;

    // Act
    let plaintext = list_environments(&format!("http://{}", registry.addr), &ClientTls::default()).await;
    let other_ca = list_environments(&registry.https(), &pki.client("other-ca.pem", None)).await;
    let trusted_again = list_environments(&registry.https(), &trusted).await;

    // Assert
    assert!(plaintext.is_err(), "a plaintext client got an answer from a TLS port: {plaintext:?}");
    let refused = other_ca.expect_err("a client trusting another CA got an answer");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused}");
    assert!(trusted_again.is_ok(), "the refusals are about the clients: {trusted_again:?}");
    registry.stopped().await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_trusted_ca() {
    // Arrange
    let pki = Pki::new();
    let registry = Registry::start(pki.server_args(true)).await;
    let url = registry.https();
    let with_cert = pki.client("ca.pem", Some("client"));
    eventually("mtls health", || async { health(&url, &with_cert).await.map_err(|s| s.to_string()) }).await;

    // Act
    let no_cert = list_environments(&url, &pki.client("ca.pem", None)).await;
    let untrusted_cert = list_environments(&url, &pki.client("ca.pem", Some("rogue"))).await;
    let right_cert = list_environments(&url, &with_cert).await;

    // Assert
    assert!(no_cert.is_err(), "answered a client without a certificate: {no_cert:?}");
    assert!(untrusted_cert.is_err(), "answered a client certificate from an untrusted CA: {untrusted_cert:?}");
    assert!(right_cert.is_ok(), "refused the right certificate: {right_cert:?}");
    registry.stopped().await;
}

#[tokio::test]
async fn the_plaintext_health_listener_answers_while_the_main_port_is_tls() {
    // Arrange
    let pki = Pki::new();
    let mut args = pki.server_args(true);
    args.health_listen = Some("127.0.0.1:0".parse().expect("addr"));
    let mut registry = Registry::start(args).await;
    let probe = format!("http://{}", registry.health_addr.expect("health listener bound"));
    let tls_url = registry.https();
    let with_cert = pki.client("ca.pem", Some("client"));

    // Act
    let status = eventually("plaintext health", || async { health(&probe, &ClientTls::default()).await.map_err(|s| s.to_string()) }).await;
    let other_service =
        RegistryServiceClient::new(channel(&probe).expect("channel")).list_environments(ListEnvironmentsRequest::default()).await;
    // A call in flight on the TLS port (a health Watch stream) keeps the server draining
    // after the shutdown signal, so the probe port can be seen turning NOT_SERVING.
    let channel = channel_with(&tls_url, &with_cert).expect("channel");
    let mut watch = HealthClient::new(channel).watch(HealthCheckRequest::default()).await.expect("watch over mTLS").into_inner();
    let first = watch.message().await.expect("watch reply").expect("a status");
    registry.shut_down();
    let draining = eventually("probe sees NOT_SERVING", || async {
        match health(&probe, &ClientTls::default()).await {
            Ok(NOT_SERVING) => Ok(NOT_SERVING),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Assert
    assert_eq!(status, SERVING);
    assert_eq!(other_service.expect_err("the probe port serves health only").code(), tonic::Code::Unimplemented);
    assert_eq!(first.status, SERVING);
    assert_eq!(draining, NOT_SERVING);
    drop(watch);
    registry.stopped().await;
    assert!(health(&probe, &ClientTls::default()).await.is_err(), "the probe port closes with the server");
}

#[tokio::test]
async fn tls_settings_are_checked_at_start_with_the_file_named() {
    // Arrange
    let pki = Pki::new();
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let cert_only = CommonArgs { tls_cert_file: Some(pki.path("server.pem")), ..CommonArgs::default() };
    let ca_only = CommonArgs { tls_client_ca_file: Some(pki.path("ca.pem")), ..CommonArgs::default() };
    let bad_cert = CommonArgs { tls_cert_file: Some(garbage.clone()), ..pki.server_args(false) };
    let bad_key = CommonArgs { tls_key_file: Some(pki.path("server.pem")), ..pki.server_args(false) };
    let wrong_key = CommonArgs { tls_key_file: Some(pki.path("client.key")), ..pki.server_args(false) };
    let missing_ca = CommonArgs { tls_client_ca_file: Some(pki.path("nope.pem")), ..pki.server_args(false) };
    let bind = |mut args: CommonArgs| async move {
        args.no_auth = true;
        match ferry_kit::server::ServerBuilder::new().bind("127.0.0.1:0".parse().expect("addr"), &args).await {
            Ok(_) => String::from("started"),
            Err(e) => e.to_string(),
        }
    };

    // Act
    let errors = [
        bind(cert_only).await,
        bind(ca_only).await,
        bind(bad_cert).await,
        bind(bad_key).await,
        bind(wrong_key).await,
        bind(missing_ca).await,
    ];
    let https_without_ca =
        channel_with("https://127.0.0.1:1", &ClientTls::default()).map(|_| ()).expect_err("https needs a CA").to_string();

    // Assert
    let [cert_only, ca_only, bad_cert, bad_key, wrong_key, missing_ca] = errors;
    assert!(cert_only.contains("--tls-cert-file") && cert_only.contains("without --tls-key-file"), "{cert_only}");
    assert!(ca_only.contains("--tls-client-ca-file") && ca_only.contains("needs --tls-cert-file"), "{ca_only}");
    assert!(bad_cert.contains(&garbage.display().to_string()) && bad_cert.contains("no PEM certificate"), "{bad_cert}");
    assert!(bad_key.contains(&pki.path("server.pem").display().to_string()) && bad_key.contains("no PEM private key"), "{bad_key}");
    assert!(wrong_key.contains(&pki.path("client.key").display().to_string()), "{wrong_key}");
    assert!(missing_ca.contains("--tls-client-ca-file") && missing_ca.contains("nope.pem"), "{missing_ca}");
    assert!(https_without_ca.contains("--tls-ca-file"), "{https_without_ca}");
}

/// Runs `ferry` against `suite` over TLS, presenting the test's client certificate.
async fn cli(suite: &up::Suite, pki: &Pki, args: &[&str]) -> serde_json::Value {
    let mut argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    for (flag, value) in [
        ("--registry", suite.endpoint(up::REGISTRY)),
        ("--merge", suite.endpoint(up::MERGE)),
        ("--integration", suite.endpoint(up::INTEGRATION)),
        ("--token", suite.admin_token.clone()),
        ("--tls-ca-file", pki.path("ca.pem").display().to_string()),
        ("--tls-cert-file", pki.path("client.pem").display().to_string()),
        ("--tls-key-file", pki.path("client.key").display().to_string()),
        ("-o", "json".to_owned()),
    ] {
        argv.extend([flag.to_owned(), value]);
    }
    match ferry_cli::run(argv).await {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| panic!("ferry {}: not JSON ({e}): {text}", args.join(" "))),
        Err(e) => panic!("ferry {}: {}", args.join(" "), ferry_cli::render_error(&e)),
    }
}

#[tokio::test]
async fn services_call_each_other_over_mutual_tls_and_the_cli_reaches_them() {
    // Arrange: the whole suite on mTLS; the merge engine and integration control call the
    // registry on https:// presenting the server certificate as their client certificate.
    let pki = Pki::new();
    let dir = TempDir::new();
    let mut opts = options(dir.path());
    opts.common = CommonArgs { no_auth: false, ..pki.server_args(true) };
    let suite = up::start(opts).await.expect("start the suite on mTLS");
    let registry_url = suite.endpoint(up::REGISTRY);
    assert!(registry_url.starts_with("https://"), "{registry_url}");
    let client = pki.client("ca.pem", Some("client"));
    eventually("registry over mTLS", || async { health(&registry_url, &client).await.map_err(|s| s.to_string()) }).await;
    cli(&suite, &pki, &["env", "create", "dev", "--tier", "non-production"]).await;
    for group in ["test", "live"] {
        cli(&suite, &pki, &["group", "create", "dev", group]).await;
    }
    cli(&suite, &pki, &["entity", "create", "dev", "test", "--kind", "table", "--key", "orders"]).await;

    // Act: merge-engine → registry, and integration-control → registry.
    let plan = cli(&suite, &pki, &["merge", "plan", "dev", "test", "live"]).await;
    let snapshot = cli(&suite, &pki, &["snapshot", "create", "dev"]).await;
    let plaintext_peer = list_environments(&registry_url.replace("https://", "http://"), &ClientTls::default()).await;

    // Assert
    assert_eq!(plan["counts"]["creates"], serde_json::json!(1), "{plan}");
    assert!(snapshot["name"].as_str().is_some_and(|n| n.starts_with("environments/dev/snapshots/")), "{snapshot}");
    assert!(plaintext_peer.is_err(), "the registry answered plaintext: {plaintext_peer:?}");
    suite.shutdown().await;
}

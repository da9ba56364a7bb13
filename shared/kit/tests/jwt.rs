//! JWT bearer tokens against a real JWKS server on 127.0.0.1 (`ferry_testkit::jwt`):
//! claims to principal, every refusal and its message, the refetch limit and key
//! rotation, a JWKS file, a Kubernetes service-account token over https, and the flags.

use std::sync::Arc;
use std::time::Duration;

use ferry_kit::auth::jwt::{JwtConfig, KeySource};
use ferry_kit::auth::{Authenticator, Credential, Jwt, Role, Tokens};
use ferry_kit::config::JwtArgs;
use ferry_testkit::jwt::{JwksServer, SigningKey, claims, hmac, jwks, now, unsigned};
use serde_json::json;
use tonic::Code;

const ISS: &str = "https://issuer.example.com";
const AUD: &str = "ferry";

fn config(server: &JwksServer) -> JwtConfig {
    let keys = KeySource::Url { url: server.url("/jwks").parse().unwrap(), ca_file: None, token_file: None };
    let mut config = JwtConfig::new(ISS, AUD, keys);
    config.role_map = ferry_kit::auth::jwt::parse_role_map("ferry-admins=admin,ferry-ops=operator,ferry-approvers=+approver").unwrap();
    config.environments_claim = Some("ferry_envs".into());
    config.environments_default_all = false;
    config
}

/// The message of a refusal, checking its code and that the token is not in it.
async fn refused(jwt: &Jwt, token: &str, code: Code) -> String {
    let status = jwt.authenticate(token).await.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(!status.message().contains(token), "the token is not echoed: {}", status.message());
    status.message().to_owned()
}

#[tokio::test]
async fn a_valid_token_maps_its_claims_and_each_bad_one_is_refused_saying_why() {
    // Arrange
    let key = SigningKey::rsa(0, "k1");
    let server = JwksServer::start(jwks(&[&key]), None, None).await;
    let jwt = Jwt::start(config(&server)).await.unwrap();
    let with = |patch: serde_json::Value| {
        let mut c = claims(ISS, AUD, "alice@example.com");
        c["groups"] = json!(["ferry-ops", "ferry-approvers", "unrelated"]);
        c["ferry_envs"] = json!("dev,uat");
        c.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        c.as_object_mut().unwrap().retain(|_, v| !v.is_null());
        c
    };

    // Act
    let alice = jwt.authenticate(&key.sign(&with(json!({})))).await.unwrap();
    let admin = jwt.authenticate(&key.sign(&with(json!({"groups": "ferry-admins", "ferry_envs": ["*"]})))).await.unwrap();
    let unscoped = jwt.authenticate(&key.sign(&with(json!({"ferry_envs": null})))).await.unwrap();

    // Assert
    assert_eq!((alice.subject.as_str(), alice.credential, alice.role), ("alice@example.com", Credential::Jwt, Role::Operator));
    assert!(alice.approver && !alice.service);
    assert_eq!(alice.environments, Some(["dev".to_owned(), "uat".to_owned()].into()));
    assert_eq!((admin.role, admin.approver, admin.environments), (Role::Admin, false, None));
    assert_eq!(unscoped.environments, Some(Default::default()), "no environments claim: no environment (configured so)");

    let expired = key.sign(&with(json!({"exp": now() - 3600})));
    assert_eq!(refused(&jwt, &expired, Code::Unauthenticated).await, "jwt: token expired");
    let within_leeway = key.sign(&with(json!({"exp": now() - 10})));
    assert!(jwt.authenticate(&within_leeway).await.is_ok(), "10 s past exp is within the 30 s leeway");
    let early = key.sign(&with(json!({"nbf": now() + 3600})));
    assert_eq!(refused(&jwt, &early, Code::Unauthenticated).await, "jwt: token not yet valid (nbf is in the future)");
    let audience = key.sign(&with(json!({"aud": "someone-else"})));
    assert_eq!(refused(&jwt, &audience, Code::Unauthenticated).await, "jwt: wrong audience (accepted: ferry)");
    let issuer = key.sign(&with(json!({"iss": "https://evil.example.com"})));
    assert_eq!(refused(&jwt, &issuer, Code::Unauthenticated).await, "jwt: wrong issuer (accepted: https://issuer.example.com)");
    let no_exp = key.sign(&with(json!({"exp": null})));
    assert_eq!(refused(&jwt, &no_exp, Code::Unauthenticated).await, "jwt: the token has no exp claim");
    let none = unsigned(&with(json!({})), "k1");
    assert_eq!(refused(&jwt, &none, Code::Unauthenticated).await, "jwt: alg none is refused: the token must be signed");
    let hs = hmac(&with(json!({})), "k1", b"a shared secret");
    assert_eq!(
        refused(&jwt, &hs, Code::Unauthenticated).await,
        "jwt: HMAC algorithm HS256 is refused: Ferry accepts only public-key signatures"
    );
    let es = SigningKey::ec("k1").sign(&with(json!({})));
    assert_eq!(refused(&jwt, &es, Code::Unauthenticated).await, "jwt: algorithm \"ES256\" is not allowed (allowed: RS256)");
    let good = key.sign(&with(json!({})));
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped: String = sig.chars().enumerate().map(|(i, c)| if i == 10 { if c == 'A' { 'B' } else { 'A' } } else { c }).collect();
    assert_eq!(refused(&jwt, &format!("{head}.{flipped}"), Code::Unauthenticated).await, "jwt: bad signature");
    let other_key = SigningKey::rsa(1, "k1").sign(&with(json!({})));
    assert_eq!(refused(&jwt, &other_key, Code::Unauthenticated).await, "jwt: bad signature", "same kid, another key");
    assert!(refused(&jwt, "bm90.anNvbg.c2ln", Code::Unauthenticated).await.starts_with("jwt: malformed token"));
    let nobody = key.sign(&with(json!({"groups": ["nobody"]})));
    let denied = refused(&jwt, &nobody, Code::PermissionDenied).await;
    assert!(denied.contains("alice@example.com has no role") && denied.contains("--jwt-role-map"), "{denied}");
}

#[tokio::test]
async fn an_unknown_kid_is_fetched_at_most_once_per_interval_and_a_rotated_key_is_then_accepted() {
    // Arrange: the server has k1; tokens come signed with k2 before it is published.
    let (k1, k2) = (SigningKey::rsa(0, "k1"), SigningKey::rsa(1, "k2"));
    let server = JwksServer::start(jwks(&[&k1]), None, None).await;
    let mut config = config(&server);
    config.refetch_interval = Duration::from_secs(1);
    config.default_grant.role = Some(Role::Viewer);
    let jwt = Jwt::start(config).await.unwrap();
    let token = |key: &SigningKey| key.sign(&claims(ISS, AUD, "alice"));
    let flood = |jwt: Arc<Jwt>, token: String| async move {
        let calls = (0..20).map(|_| {
            let (jwt, token) = (jwt.clone(), token.clone());
            tokio::spawn(async move { jwt.authenticate(&token).await })
        });
        futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(server.hits(), 1, "fetched at start");

    // Act + Assert: within the interval after the start, unknown kids fetch nothing.
    let early = flood(jwt.clone(), token(&k2)).await;
    assert!(
        early
            .iter()
            .all(|r| r.as_ref().unwrap_err().message() == "jwt: unknown kid \"k2\" (not in the JWKS, also after fetching it again)")
    );
    assert_eq!(server.hits(), 1, "no fetch within the refetch interval");

    // After the interval a flood of an unknown kid makes one fetch.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let k3 = SigningKey::rsa(1, "k3");
    assert!(flood(jwt.clone(), token(&k3)).await.iter().all(|r| r.is_err()));
    assert_eq!(server.hits(), 2, "one fetch for twenty tokens of an unknown kid");

    // k2 is rotated in at the server: taken once the interval has passed.
    server.set(jwks(&[&k1, &k2]));
    assert!(jwt.authenticate(&token(&k2)).await.is_err(), "not yet: the last fetch is recent");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = flood(jwt.clone(), token(&k2)).await;
    assert!(later.iter().all(|r| r.as_ref().is_ok_and(|p| p.subject == "alice")), "{:?}", later[0]);
    assert_eq!(server.hits(), 3);
    assert!(jwt.authenticate(&token(&k1)).await.is_ok(), "the key kept in the new set still verifies");

    // A server that went away: the keys fetched before stay in force.
    drop(server);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(jwt.authenticate(&token(&k3)).await.is_err());
    assert!(jwt.authenticate(&token(&k2)).await.is_ok(), "a failed fetch keeps the old keys");
}

#[tokio::test]
async fn a_jwks_file_an_ec_key_and_a_key_of_the_wrong_type() {
    // Arrange: an EC key and an RSA key in a file; both algorithms allowed.
    let (ec, rsa) = (SigningKey::ec("ec-1"), SigningKey::rsa(0, "rsa-1"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&ec, &rsa])).unwrap();
    let mut config = JwtConfig::new(ISS, AUD, KeySource::File(file.clone()));
    config.algorithms = vec![jsonwebtoken::Algorithm::RS256, jsonwebtoken::Algorithm::ES256];
    config.default_grant.role = Some(Role::Viewer);
    let jwt = Jwt::start(config).await.unwrap();

    // Act
    let by_ec = jwt.authenticate(&ec.sign(&claims(ISS, AUD, "bob"))).await.unwrap();
    let by_rsa = jwt.authenticate(&rsa.sign(&claims(ISS, AUD, "carol"))).await.unwrap();
    let mismatched = SigningKey::ec("rsa-1").sign(&claims(ISS, AUD, "mallory"));

    // Assert
    assert_eq!((by_ec.subject.as_str(), by_ec.role, by_ec.environments), ("bob", Role::Viewer, None), "default role, every environment");
    assert_eq!(by_rsa.subject, "carol");
    assert_eq!(refused(&jwt, &mismatched, Code::Unauthenticated).await, "jwt: key \"rsa-1\" is a Rsa key, which cannot verify ES256");
    let missing = JwtConfig::new(ISS, AUD, KeySource::File(dir.path().join("nope.json")));
    assert!(Jwt::start(missing).await.unwrap_err().to_string().contains("--jwt-jwks-file: JWKS file"), "a missing file stops the start");
}

/// A CA and a certificate it signed for 127.0.0.1, as a TLS acceptor and the CA's PEM.
fn https_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &*ca).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into())
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem())
}

#[tokio::test]
async fn a_kubernetes_service_account_token_through_the_cluster_jwks_over_https() {
    // Arrange: the API server's JWKS at /openid/v1/jwks over https with the cluster CA,
    // asking for the pod's own token; the server's flags as the k8s overlay sets them.
    let key = SigningKey::rsa(0, "sa-key");
    let (acceptor, ca_pem) = https_acceptor();
    let server = JwksServer::start(jwks(&[&key]), Some(acceptor), Some("pod-own-token".into())).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca_pem).unwrap();
    std::fs::write(dir.path().join("token"), "pod-own-token\n").unwrap();
    let issuer = "https://kubernetes.default.svc.cluster.local";
    let args = JwtArgs {
        issuer: Some(issuer.into()),
        audience: Some("ferry".into()),
        jwks_url: Some(server.url("/openid/v1/jwks")),
        jwks_ca_file: Some(dir.path().join("ca.crt")),
        jwks_token_file: Some(dir.path().join("token")),
        role_claim: "sub".into(),
        role_map: "system:serviceaccount:ferry:refresh-coordinator=admin+service".into(),
        ..JwtArgs::default()
    };
    let jwt = Jwt::start(args.config().unwrap().unwrap()).await.unwrap();
    let no_ca = Jwt::start(JwtArgs { jwks_ca_file: None, ..args.clone() }.config().unwrap().unwrap()).await.unwrap_err();
    assert!(no_ca.to_string().contains("set --jwt-jwks-ca-file (FERRY_JWT_JWKS_CA_FILE)"), "{no_ca}");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "static-token-0123456789 viewer * ci\n").unwrap();
    let auth = Authenticator { tokens: Some(Arc::new(Tokens::open(&tokens).unwrap())), jwt: Some(jwt.clone()), identities: None };
    let sa = |name: &str| {
        let mut c = claims(issuer, "ferry", &format!("system:serviceaccount:ferry:{name}"));
        c["kubernetes.io"] = json!({"namespace": "ferry", "serviceaccount": {"name": name, "uid": "0e1f"}, "pod": {"name": format!("{name}-0"), "uid": "9a8b"}});
        key.sign(&c)
    };
    let headers = |token: &str, on_behalf_of: Option<&str>| {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        if let Some(s) = on_behalf_of {
            h.insert("x-ferry-on-behalf-of", s.parse().unwrap());
        }
        h
    };
    let path = "/ferry.integration.v1.IntegrationService/PauseSyncJobs";

    // Act
    let coordinator = auth.authenticate(path, &headers(&sa("refresh-coordinator"), Some("pat@example.com")), None).await;
    let other = auth.authenticate(path, &headers(&sa("someone-else"), None), None).await;
    let static_token =
        auth.authenticate("/ferry.registry.v1.RegistryService/ListEnvironments", &headers("static-token-0123456789", None), None).await;
    let static_passing_on = auth.authenticate(path, &headers("static-token-0123456789", Some("pat@example.com")), None).await;

    // Assert
    let coordinator = coordinator.unwrap().unwrap();
    assert_eq!(coordinator.subject, "system:serviceaccount:ferry:refresh-coordinator");
    assert_eq!((coordinator.role, coordinator.service, coordinator.credential), (Role::Admin, true, Credential::Jwt));
    assert_eq!(coordinator.actor(), "pat@example.com");
    assert_eq!(other.unwrap_err().code(), Code::PermissionDenied, "a service account with no role");
    assert_eq!(static_token.unwrap().unwrap().credential, Credential::StaticToken, "static tokens still work beside JWTs");
    assert_eq!(static_passing_on.unwrap_err().code(), Code::PermissionDenied, "a viewer without +service");
    assert_eq!(server.hits(), 1, "one fetch, with the pod's token");
}

#[test]
fn jwt_flags_are_checked_at_start_naming_the_flag() {
    let err = |args: JwtArgs| args.config().unwrap_err().to_string();
    let base = || JwtArgs {
        issuer: Some(ISS.into()),
        audience: Some(AUD.into()),
        jwks_url: Some("http://127.0.0.1:1/jwks".into()),
        ..JwtArgs::default()
    };
    assert!(base().config().unwrap().is_some());
    assert!(JwtArgs::default().config().unwrap().is_none(), "no issuer: JWTs off");
    assert!(err(JwtArgs { issuer: None, ..base() }).contains("--jwt-audience is set without --jwt-issuer"));
    assert!(err(JwtArgs { audience: None, ..base() }).contains("--jwt-audience (FERRY_JWT_AUDIENCE): required"));
    assert!(err(JwtArgs { jwks_file: Some("/x".into()), ..base() }).contains("--jwt-jwks-url and --jwt-jwks-file are both set"));
    assert!(err(JwtArgs { jwks_url: None, ..base() }).contains("needs --jwt-jwks-url"));
    assert!(
        err(JwtArgs { jwks_url: Some("ftp://x/jwks".into()), ..base() })
            .contains("--jwt-jwks-url (FERRY_JWT_JWKS_URL): ftp://x/jwks: not an http")
    );
    assert!(
        err(JwtArgs { algorithms: "RS256,HS256".into(), ..base() })
            .contains("--jwt-algorithms (FERRY_JWT_ALGORITHMS): HS256 is an HMAC algorithm")
    );
    assert!(err(JwtArgs { algorithms: "none".into(), ..base() }).contains("`none` is never accepted"));
    assert!(err(JwtArgs { role_map: "ferry-ops".into(), ..base() }).contains("--jwt-role-map (FERRY_JWT_ROLE_MAP): entry \"ferry-ops\""));
    assert!(err(JwtArgs { role_map: "a=root".into(), ..base() }).contains("unknown role \"root\""));
    assert!(err(JwtArgs { default_role: Some("boss".into()), ..base() }).contains("--jwt-default-role (FERRY_JWT_DEFAULT_ROLE)"));
}

//! A JWT issuer for tests and benches: signing keys with their JWKS, and a real HTTP(S)
//! server on 127.0.0.1:0 that serves the JWKS and counts the requests it answers.
//!
//! The RSA keys are the test-only fixtures in `shared/testkit/fixtures/` (ring cannot
//! generate RSA keys); EC keys are generated at run time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};
use rustls_pki_types::PrivatePkcs1KeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

const RSA_KEYS: [&str; 2] = [include_str!("../fixtures/test-only-rsa-key-1.pem"), include_str!("../fixtures/test-only-rsa-key-2.pem")];

/// A key that signs JWTs, and its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    /// Test RSA key `n` (0 or 1), RS256, under `kid`.
    pub fn rsa(n: usize, kid: &str) -> Self {
        let der = PrivatePkcs1KeyDer::from_pem_slice(RSA_KEYS[n].as_bytes()).expect("test RSA key"); // ok: a checked-in test key
        let pair = signature::RsaKeyPair::from_der(der.secret_pkcs1_der()).expect("test RSA key"); // ok: a checked-in test key
        let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
        let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)});
        Self { kid: kid.into(), alg: Algorithm::RS256, encoding: EncodingKey::from_rsa_der(der.secret_pkcs1_der()), jwk }
    }

    /// A new P-256 key, ES256, under `kid`.
    pub fn ec(kid: &str) -> Self {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let rng = SystemRandom::new();
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("EC key"); // ok: ring generating a test key
        let pair = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("EC key"); // ok: the key ring just generated
        let point = pair.public_key().as_ref(); // 0x04 || x || y
        let jwk = json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
        Self { kid: kid.into(), alg: Algorithm::ES256, encoding: EncodingKey::from_ec_der(pkcs8.as_ref()), jwk }
    }

    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// `claims` signed with this key, its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign") // ok: RS/EC signing of test claims with a valid key
    }
}

/// A JWKS document of `keys`.
pub fn jwks(keys: &[&SigningKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

/// `claims` with `alg: none` and no signature.
pub fn unsigned(claims: &Value, kid: &str) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string();
    format!("{}.{}.", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// `claims` signed with HMAC-SHA256 under `secret`.
pub fn hmac(claims: &Value, kid: &str, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("sign") // ok: HMAC signing of test claims
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Claims from `iss` for `aud` naming `sub`, valid from a minute ago for an hour.
pub fn claims(iss: &str, aud: &str, sub: &str) -> Value {
    json!({"iss": iss, "aud": aud, "sub": sub, "iat": now() - 60, "nbf": now() - 60, "exp": now() + 3600})
}

/// An HTTP/1.1 server answering every GET with the JWKS it holds now.
pub struct JwksServer {
    pub addr: SocketAddr,
    jwks: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    tls: bool,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    /// Serves `jwks`, over TLS with `tls`; with `bearer`, a request without
    /// `authorization: Bearer <bearer>` is answered 401 (the Kubernetes API server's way).
    pub async fn start(jwks: String, tls: Option<tokio_rustls::TlsAcceptor>, bearer: Option<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind JWKS server"); // ok: test setup: a loopback port
        let addr = listener.local_addr().expect("addr"); // ok: a bound listener has an address
        let (document, hits) = (Arc::new(Mutex::new(jwks)), Arc::new(AtomicUsize::new(0)));
        let is_tls = tls.is_some();
        let (doc, count) = (document.clone(), hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let (doc, count, tls, bearer) = (doc.clone(), count.clone(), tls.clone(), bearer.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        count.fetch_add(1, Ordering::SeqCst);
                        let wanted = bearer.as_ref().map(|b| format!("Bearer {b}"));
                        let given = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
                        let (status, body) = match wanted {
                            Some(w) if given.as_deref() != Some(w.as_str()) => (401, "unauthorized".to_owned()),
                            _ => (200, doc.lock().expect("jwks").clone()), // ok: a test server's lock, never poisoned by a panic while held
                        };
                        let response = http::Response::builder()
                            .status(status)
                            .header(http::header::CONTENT_TYPE, "application/json")
                            .body(http_body_util::Full::new(bytes::Bytes::from(body)));
                        std::future::ready(response)
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => http.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await,
                            Err(_) => return,
                        },
                        None => http.serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await,
                    };
                });
            }
        });
        Self { addr, jwks: document, hits, tls: is_tls, task }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Serves `jwks` from now on (a key rotated in).
    pub fn set(&self, jwks: String) {
        *self.jwks.lock().expect("jwks") = jwks; // ok: a test server's lock, never poisoned by a panic while held
    }

    /// How many requests it answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

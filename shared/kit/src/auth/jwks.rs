//! The JWKS a JWT issuer publishes, from a URL (http, or https trusting only a given CA
//! bundle) or a file, cached. A token whose `kid` is not cached makes one fetch, at most
//! once per refetch interval however many such tokens come; a failed fetch keeps the keys
//! in force.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Largest JWKS document read.
const MAX_JWKS: usize = 1 << 20;
/// A JWKS fetch that takes longer fails.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `http://` or `https://`; for https the CA bundle it must chain to. `token_file`: a
    /// bearer token sent with each fetch, read each time (the Kubernetes API server wants
    /// the pod's own service-account token at `/openid/v1/jwks`).
    Url {
        url: http::Uri,
        ca_file: Option<PathBuf>,
        token_file: Option<PathBuf>,
    },
    File(PathBuf),
}

/// What a key verifies, from its JWK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// The kind of key `alg` needs.
    pub(crate) fn of(alg: Algorithm) -> Option<KeyKind> {
        use Algorithm::*;
        match alg {
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(KeyKind::Rsa),
            ES256 => Some(KeyKind::P256),
            ES384 => Some(KeyKind::P384),
            EdDSA => Some(KeyKind::Ed25519),
            HS256 | HS384 | HS512 => None,
        }
    }
}

pub(crate) struct Key {
    pub kind: KeyKind,
    /// The JWK's `alg`, when it names one: only that algorithm may use the key.
    pub alg: Option<Algorithm>,
    pub decoding: DecodingKey,
}

/// Keys by `kid`; keys without a `kid` under "".
#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
}

impl KeySet {
    /// The keys of a JWKS document. Keys Ferry cannot use (symmetric, encryption, other
    /// curves, malformed) are skipped with a log line; a document that is not a JWKS is
    /// an error.
    pub(crate) fn parse(text: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(text).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut by_kid = HashMap::new();
        for value in doc.keys {
            let kid = value.get("kid").and_then(|k| k.as_str()).unwrap_or_default().to_owned();
            match key(value) {
                Ok(Some(key)) => {
                    by_kid.insert(kid, Arc::new(key));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(kid = %kid, error = %e, "JWKS key skipped"),
            }
        }
        Ok(Self { by_kid })
    }

    /// The key for a token's `kid`; without a `kid`, the only key there is.
    pub(crate) fn find(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None if self.by_kid.len() == 1 => self.by_kid.values().next().cloned(),
            None => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_kid.len()
    }
}

/// One JWK as a verifying key; `None` for keys not for signatures or of no kind used here.
fn key(value: serde_json::Value) -> Result<Option<Key>, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("not a JWK Ferry can use: {e}"))?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => KeyKind::P256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P384 => KeyKind::P384,
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => KeyKind::Ed25519,
        // Symmetric keys (HMAC) are never accepted, nor curves ring does not verify here.
        _ => return Ok(None),
    };
    let alg = match jwk.common.key_algorithm {
        // An encryption algorithm (RSA-OAEP…): not a key for signatures.
        Some(a) => match a.to_string().parse::<Algorithm>() {
            Ok(alg) => Some(alg),
            Err(_) => return Ok(None),
        },
        None => None,
    };
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("key: {e}"))?;
    Ok(Some(Key { kind, alg, decoding }))
}

/// The cached keys and how to get them again.
pub(crate) struct Jwks {
    source: KeySource,
    tls: Option<tokio_rustls::TlsConnector>,
    keys: RwLock<Arc<KeySet>>,
    refetch: Duration,
    last_fetch: Mutex<Option<Instant>>,
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl Jwks {
    /// Reads the CA bundle of an https URL; fetches nothing yet.
    pub(crate) fn new(source: KeySource, refetch: Duration) -> Result<Self, crate::Error> {
        let tls = match &source {
            KeySource::Url { url, ca_file, .. } if url.scheme_str() == Some("https") => {
                let path = ca_file.as_ref().ok_or_else(|| {
                    crate::Error::Config(format!(
                        "--jwt-jwks-url {url} is https: set --jwt-jwks-ca-file (FERRY_JWT_JWKS_CA_FILE) to the CA bundle it chains to"
                    ))
                })?;
                Some(connector(path)?)
            }
            _ => None,
        };
        Ok(Self {
            source,
            tls,
            keys: RwLock::default(),
            refetch,
            last_fetch: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        })
    }

    pub(crate) fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fetches (or reads) the keys now; they are in force when that succeeds, and the
    /// keys before stay when it fails.
    pub(crate) async fn load(&self) -> Result<usize, String> {
        *self.last_fetch.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let text = match &self.source {
            KeySource::File(path) => tokio::fs::read(path).await.map_err(|e| format!("JWKS file {}: {e}", path.display()))?,
            KeySource::Url { url, token_file, .. } => {
                let token = match token_file {
                    Some(path) => {
                        Some(tokio::fs::read_to_string(path).await.map_err(|e| format!("JWKS token file {}: {e}", path.display()))?)
                    }
                    None => None,
                };
                tokio::time::timeout(FETCH_TIMEOUT, get(url, self.tls.as_ref(), token.as_deref().map(str::trim)))
                    .await
                    .map_err(|_| format!("JWKS {url}: no answer within {}s", FETCH_TIMEOUT.as_secs()))?
                    .map_err(|e| format!("JWKS {url}: {e}"))?
            }
        };
        let set = KeySet::parse(&text)?;
        let n = set.len();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(n)
    }

    /// The key for `kid`, fetching the keys again when it is not cached and the last
    /// fetch is older than the refetch interval. Callers that come while a fetch runs wait
    /// for it rather than starting their own.
    pub(crate) async fn find(&self, kid: Option<&str>) -> Option<Arc<Key>> {
        if let Some(key) = self.current().find(kid) {
            return Some(key);
        }
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(key) = self.current().find(kid) {
            return Some(key);
        }
        let last = *self.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < self.refetch) {
            return None;
        }
        match self.load().await {
            Ok(n) => tracing::info!(keys = n, kid = kid.unwrap_or_default(), "JWKS fetched again for an unknown kid"),
            Err(e) => tracing::warn!(error = %e, "JWKS not fetched; the keys before stay in force"),
        }
        self.current().find(kid)
    }

    /// How many fetches (or reads) were made.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}

fn connector(ca_file: &std::path::Path) -> Result<tokio_rustls::TlsConnector, crate::Error> {
    crate::tls::ca_connector(ca_file, "--jwt-jwks-ca-file")
}

/// `GET url` over HTTP/1.1 (TLS with `tls` for https); the body of a 200 answer.
async fn get(url: &http::Uri, tls: Option<&tokio_rustls::TlsConnector>, token: Option<&str>) -> Result<Vec<u8>, String> {
    let host = url.host().ok_or("no host in the URL")?;
    let https = url.scheme_str() == Some("https");
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)).await.map_err(|e| format!("connect: {e}"))?;
    let mut request = http::Request::get(url.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, url.authority().map_or(host, |a| a.as_str()))
        .header(http::header::ACCEPT, "application/json");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(http_body_util::Empty::<bytes::Bytes>::new()).map_err(|e| format!("request: {e}"))?;
    match (https, tls) {
        (true, Some(tls)) => {
            let name = rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                .map_err(|e| format!("server name {host}: {e}"))?;
            let stream = tls.connect(name, tcp).await.map_err(|e| format!("tls: {}", crate::tls::chain(&e)))?;
            send(stream, request).await
        }
        (true, None) => Err("https without a CA bundle".into()),
        (false, _) => send(tcp, request).await,
    }
}

async fn send<IO>(io: IO, request: http::Request<http_body_util::Empty<bytes::Bytes>>) -> Result<Vec<u8>, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await.map_err(|e| format!("http: {e}"))?;
    // The connection is driven on its own task; it ends when `sender` is dropped.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "JWKS connection ended");
        }
    });
    let response = sender.send_request(request).await.map_err(|e| format!("http: {e}"))?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("answered HTTP {}", response.status()));
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS);
    body.collect().await.map(|b| b.to_bytes().to_vec()).map_err(|e| format!("body: {e}"))
}

//! Client side of service-to-service and CLI calls: a channel to an endpoint (TLS for
//! `https://` URLs) and an interceptor that adds the bearer token and the current trace
//! context (W3C `traceparent`) to every request, so one request is one trace across services.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

tokio::task_local! {
    /// The original caller's subject, sent as `x-ferry-on-behalf-of` on every call made
    /// inside [`on_behalf_of`] (the receiving service honours it only from a caller with
    /// the service right).
    pub static ON_BEHALF_OF: String;
}

/// Runs `work` with calls made in it sent on behalf of `subject`.
pub async fn on_behalf_of<F: std::future::Future>(subject: impl Into<String>, work: F) -> F::Output {
    ON_BEHALF_OF.scope(subject.into(), work).await
}

type Bearer = MetadataValue<tonic::metadata::Ascii>;

fn bearer(token: &str) -> Result<Bearer, crate::Error> {
    format!("Bearer {}", token.trim())
        .parse::<Bearer>()
        .map_err(|_| crate::Error::Config("token has characters not allowed in a header".into()))
}

/// Where the bearer token comes from.
#[derive(Clone, Default)]
enum Token {
    #[default]
    None,
    Static(Bearer),
    /// A file read again at most every [`TokenFile::REREAD`] (a projected service-account
    /// token is rotated in place).
    File(Arc<TokenFile>),
}

struct TokenFile {
    path: PathBuf,
    current: Mutex<(Bearer, Instant)>,
}

impl TokenFile {
    const REREAD: Duration = Duration::from_secs(1);

    fn read(path: &Path) -> Result<Bearer, crate::Error> {
        let text =
            std::fs::read_to_string(path).map_err(|e| crate::Error::Config(format!("--service-token-file {}: {e}", path.display())))?;
        bearer(&text).map_err(|e| crate::Error::Config(format!("--service-token-file {}: {e}", path.display())))
    }

    /// The token now; a file that went bad keeps the token read before (and says so).
    fn get(&self) -> Bearer {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.1.elapsed() >= Self::REREAD {
            match Self::read(&self.path) {
                Ok(token) => current.0 = token,
                Err(e) => tracing::warn!(error = %e, "service token not read again; the one before is sent"),
            }
            current.1 = Instant::now();
        }
        current.0.clone()
    }
}

/// Adds `authorization`, `x-ferry-on-behalf-of` (inside [`on_behalf_of`]) and W3C trace
/// context to outgoing requests.
#[derive(Clone, Default)]
pub struct ClientInterceptor {
    token: Token,
}

impl ClientInterceptor {
    pub fn new(token: Option<&str>) -> Result<Self, crate::Error> {
        Ok(Self { token: token.map(bearer).transpose()?.map_or(Token::None, Token::Static) })
    }

    /// Sends the token in `path`, read now (a missing file is a configuration error) and
    /// again when it may have changed.
    pub fn from_file(path: &Path) -> Result<Self, crate::Error> {
        let first = TokenFile::read(path)?;
        Ok(Self { token: Token::File(Arc::new(TokenFile { path: path.to_owned(), current: Mutex::new((first, Instant::now())) })) })
    }
}

impl Interceptor for ClientInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        match &self.token {
            Token::None => {}
            Token::Static(b) => {
                request.metadata_mut().insert("authorization", b.clone());
            }
            Token::File(f) => {
                request.metadata_mut().insert("authorization", f.get());
            }
        }
        if let Ok(Some(subject)) = ON_BEHALF_OF.try_with(|s| (!s.is_empty()).then(|| s.clone())) {
            let value = MetadataValue::try_from(subject.as_str())
                .map_err(|_| tonic::Status::invalid_argument("the subject passed on has characters not allowed in a header"))?;
            request.metadata_mut().insert(crate::auth::ON_BEHALF_OF_HEADER, value);
        }
        crate::telemetry::inject_current(request.metadata_mut());
        Ok(request)
    }
}

/// What a client trusts and presents on `https://` URLs: the CA bundle that signed the
/// servers' certificates (required: system roots are never trusted) and, for mutual TLS,
/// a client certificate and key. `Default` is plaintext only.
#[derive(Clone, Default)]
pub struct ClientTls {
    ca: Option<Certificate>,
    identity: Option<Identity>,
}

impl ClientTls {
    /// Reads and checks the PEM files: `ca` (`--tls-ca-file`), `cert` and `key`
    /// (`--tls-cert-file`, `--tls-key-file`; both or neither).
    pub fn load(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> Result<Self, crate::Error> {
        let ca = ca.map(|path| crate::tls::certificates(path, "--tls-ca-file")).transpose()?;
        Ok(Self { ca, identity: crate::tls::identity(cert, key)? })
    }
}

/// Bytes a server may send on one call before the caller reads them.
const STREAM_WINDOW: u32 = 2 << 20;

/// A lazily connecting plaintext channel to `url` (`http://host:port`).
pub fn channel(url: &str) -> Result<Channel, crate::Error> {
    channel_with(url, &ClientTls::default())
}

/// A lazily connecting channel to `url`: TLS with `tls` for `https://`, plaintext for
/// `http://`. An `https://` URL without a CA bundle is a configuration error.
pub fn channel_with(url: &str, tls: &ClientTls) -> Result<Channel, crate::Error> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| crate::Error::Config(format!("endpoint {url}: {e}")))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true)
        // HTTP/2's default 64 KiB window lets a server stream only that far ahead of what the
        // caller has read; a key-manifest page alone is about 350 KiB.
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(4 * STREAM_WINDOW));
    if endpoint.uri().scheme_str() == Some("https") {
        let ca = tls.ca.clone().ok_or_else(|| {
            crate::Error::Config(format!(
                "endpoint {url} is https: set --tls-ca-file (FERRY_TLS_CA_FILE) to the CA that signed its certificate"
            ))
        })?;
        let mut config = ClientTlsConfig::new().ca_certificate(ca);
        if let Some(identity) = &tls.identity {
            config = config.identity(identity.clone());
        }
        endpoint =
            endpoint.tls_config(config).map_err(|e| crate::Error::Config(format!("endpoint {url}: tls: {}", crate::tls::chain(&e))))?;
    }
    Ok(endpoint.connect_lazy())
}

/// Most items asked for in one page (the servers' maximum).
const MAX_PAGE: usize = 1000;

/// Whether a failed call to another service is worth retrying later: the peer was
/// unreachable, too slow or went away. A call that broke in the transport counts too: a
/// connection reset mid-call (a peer shutting down) comes back from tonic as INTERNAL
/// "h2 protocol error" with the transport's error as its source, while a status the peer
/// sent has no source.
pub fn is_transient(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled) || std::error::Error::source(status).is_some()
}

/// Follows `next_page_token` to the end of a list, or until `limit` items.
/// `fetch(page_size, page_token)` makes one call and returns the page and the next token.
pub async fn all_pages<T, E, F, Fut>(limit: Option<usize>, mut fetch: F) -> Result<Vec<T>, E>
where
    F: FnMut(i32, String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), E>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let want = limit.map_or(MAX_PAGE, |l| l.saturating_sub(items.len()).min(MAX_PAGE));
        if want == 0 {
            break;
        }
        let size = i32::try_from(want).unwrap_or(i32::MAX);
        let (page, next) = fetch(size, std::mem::take(&mut token)).await?;
        items.extend(page);
        if next.is_empty() {
            break;
        }
        token = next;
    }
    if let Some(l) = limit {
        items.truncate(l);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_breaks_and_unreachable_peers_are_transient_statuses_the_peer_sent_are_not() {
        assert!(is_transient(&tonic::Status::unavailable("down")));
        assert!(is_transient(&tonic::Status::deadline_exceeded("slow")));
        assert!(is_transient(&tonic::Status::cancelled("gone")));
        let reset = tonic::Status::from_error(Box::new(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset")));
        assert!(is_transient(&reset), "{reset:?}");
        assert!(!is_transient(&tonic::Status::internal("the peer's bug")));
        assert!(!is_transient(&tonic::Status::not_found("no such thing")));
    }

    #[tokio::test]
    async fn the_subject_passed_on_and_a_token_file_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first-token\n").unwrap();
        let mut interceptor = ClientInterceptor::from_file(&path).unwrap();
        let sent = |i: &mut ClientInterceptor| {
            let r = i.call(tonic::Request::new(())).unwrap();
            let header = |k: &str| r.metadata().get(k).map(|v| v.to_str().unwrap().to_owned());
            (header("authorization"), header(crate::auth::ON_BEHALF_OF_HEADER))
        };
        assert_eq!(sent(&mut interceptor), (Some("Bearer first-token".into()), None));
        let passed_on = on_behalf_of("pat@example.com", async { sent(&mut interceptor.clone()) }).await;
        assert_eq!(passed_on.1.as_deref(), Some("pat@example.com"));
        std::fs::write(&path, "rotated-token\n").unwrap();
        tokio::time::sleep(TokenFile::REREAD).await;
        assert_eq!(sent(&mut interceptor).0.as_deref(), Some("Bearer rotated-token"));
        std::fs::remove_file(&path).unwrap();
        tokio::time::sleep(TokenFile::REREAD).await;
        assert_eq!(sent(&mut interceptor).0.as_deref(), Some("Bearer rotated-token"), "a file gone keeps the token before");
        assert!(ClientInterceptor::from_file(&path).is_err(), "a missing file is a configuration error");
    }

    #[tokio::test]
    async fn all_pages_follows_tokens_and_stops_at_the_limit() {
        // A list of 25 items served 10 at a time at most.
        let fetch = |size: i32, token: String| async move {
            let from: usize = token.parse().unwrap_or(0);
            let to = (from + size.min(10) as usize).min(25);
            let next = if to < 25 { to.to_string() } else { String::new() };
            Ok::<_, ()>(((from..to).collect::<Vec<_>>(), next))
        };
        assert_eq!(all_pages(None, fetch).await, Ok((0..25).collect::<Vec<_>>()));
        assert_eq!(all_pages(Some(12), fetch).await, Ok((0..12).collect::<Vec<_>>()));
    }
}

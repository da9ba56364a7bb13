//! Client side of service-to-service and CLI calls: a channel to an endpoint (TLS for
//! `https://` URLs) and an interceptor that adds the bearer token and the current trace
//! context (W3C `traceparent`) to every request, so one request is one trace across services.

use std::path::Path;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Adds `authorization` and W3C trace context to outgoing requests.
#[derive(Clone, Default)]
pub struct ClientInterceptor {
    bearer: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl ClientInterceptor {
    pub fn new(token: Option<&str>) -> Result<Self, crate::Error> {
        let bearer = token
            .map(|t| {
                format!("Bearer {t}")
                    .parse::<MetadataValue<_>>()
                    .map_err(|_| crate::Error::Config("token has characters not allowed in a header".into()))
            })
            .transpose()?;
        Ok(Self { bearer })
    }
}

impl Interceptor for ClientInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(b) = &self.bearer {
            request.metadata_mut().insert("authorization", b.clone());
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

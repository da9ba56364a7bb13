//! The webhook HTTP client: one `POST` over HTTP/1.1 (TLS for https, verified against the
//! configured CA bundle), bounded by a timeout. hyper and tokio-rustls are already the
//! kit's (the JWKS fetch); no connection pool: a delivery is one request.

use std::time::Duration;

use http_body_util::BodyExt;

/// What an attempt got: the status, or why there was none.
#[derive(Debug)]
pub enum Outcome {
    Status(u16),
    Failed(String),
}

/// An HTTP client for receivers.
#[derive(Clone)]
pub struct Client {
    tls: Option<tokio_rustls::TlsConnector>,
    timeout: Duration,
}

impl Client {
    /// `ca_file`: the PEM roots https receivers are verified against (none: https refused).
    pub fn new(ca_file: Option<&std::path::Path>, timeout: Duration) -> Result<Self, ferry_kit::Error> {
        let tls = ca_file.map(connector).transpose()?;
        Ok(Self { tls, timeout })
    }

    /// POSTs `body` with `headers` to `url`.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: String) -> Outcome {
        match tokio::time::timeout(self.timeout, self.send(url, headers, body)).await {
            Ok(Ok(status)) => Outcome::Status(status),
            Ok(Err(e)) => Outcome::Failed(e),
            Err(_) => Outcome::Failed(format!("timed out after {} ms", self.timeout.as_millis())),
        }
    }

    async fn send(&self, url: &str, headers: &[(&str, String)], body: String) -> Result<u16, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("url: {e}"))?;
        let host = uri.host().ok_or("no host in the URL")?.trim_matches(['[', ']']).to_owned();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("connect: {e}"))?;
        let mut request = http::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, uri.authority().map_or(host.as_str(), |a| a.as_str()))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "ferry-webhooks/1");
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        let request = request.body(http_body_util::Full::new(bytes::Bytes::from(body))).map_err(|e| format!("request: {e}"))?;
        match (https, &self.tls) {
            (true, Some(tls)) => {
                let name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| format!("server name {host}: {e}"))?;
                let stream = tls.connect(name, tcp).await.map_err(|e| format!("tls: {e}"))?;
                exchange(stream, request).await
            }
            (true, None) => Err("https receivers need --webhook-ca-file".into()),
            (false, _) => exchange(tcp, request).await,
        }
    }
}

async fn exchange<IO>(io: IO, request: http::Request<http_body_util::Full<bytes::Bytes>>) -> Result<u16, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await.map_err(|e| format!("http: {e}"))?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| format!("http: {e}"))?;
    let status = response.status().as_u16();
    // The answer's body is read (at most 64 KiB) and dropped, so the exchange completes.
    let _ = http_body_util::Limited::new(response.into_body(), 64 * 1024).collect().await;
    drop(sender);
    driver.abort();
    Ok(status)
}

fn connector(ca_file: &std::path::Path) -> Result<tokio_rustls::TlsConnector, ferry_kit::Error> {
    ferry_kit::tls::ca_connector(ca_file, "--webhook-ca-file")
}

//! Prometheus metrics: one registry per process, a tower layer that counts and times every
//! gRPC call, and the `GET /metrics` endpoint (`--metrics-listen`).
//!
//! Services register their domain metrics with [`register`] from a `static LazyLock`, so
//! each name is registered once per process even when several services (or several
//! instances of one, in tests) run in it. Every endpoint of a process serves the whole
//! registry; the `service` label tells the services' calls apart.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::Full;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::{Metric, Registry};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use prometheus_client;
pub use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram};

/// Label set of metrics with fixed label names and values known at compile time or built
/// from a bounded set.
pub type Labels<const N: usize> = [(&'static str, String); N];

/// A counter per label set.
pub type CounterFamily<const N: usize> = Family<Labels<N>, Counter>;

/// A histogram per label set (each made with the buckets given to [`histogram_family`]).
pub type HistogramFamily<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

/// The content type of the exposition (OpenMetrics text, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));

/// Adds `metric` to the process registry under `name` and returns it (metrics are shared
/// handles: the returned one and the registered one are the same). Call once per name,
/// from a `static LazyLock`. Counters get the `_total` suffix in the exposition, and the
/// help text a final period (so give it none). A labelled family shows once it has a series.
pub fn register<M: Metric + Clone>(name: &str, help: &str, metric: M) -> M {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner).register(name, help, metric.clone());
    metric
}

/// Latency buckets from 1 ms to 60 s (roughly ×2.5 apart).
pub const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A histogram family whose histograms have [`LATENCY_BUCKETS`].
pub fn histogram_family<const N: usize>() -> HistogramFamily<N> {
    Family::new_with_constructor(latency_histogram)
}

/// The registry in the text exposition format.
pub fn render() -> String {
    let mut out = String::new();
    // ok: writing into a String cannot fail, and our label values are plain strings.
    let _ = encode(&mut out, &REGISTRY.lock().unwrap_or_else(PoisonError::into_inner));
    out
}

// ---------------------------------------------------------------------------------------
// gRPC call metrics

struct CallMetrics {
    handled: CounterFamily<3>,
    seconds: HistogramFamily<2>,
}

static CALLS: LazyLock<CallMetrics> = LazyLock::new(|| CallMetrics {
    handled: register("ferry_grpc_server_handled", "gRPC calls completed, by service, method and status code", Family::default()),
    seconds: register(
        "ferry_grpc_server_handling_seconds",
        "Time from a gRPC call's arrival to its last message (streams included)",
        histogram_family(),
    ),
});

/// Every method of every package a Ferry server can serve, path → (service, method).
/// Paths not in here are counted as `unknown`, so label values stay bounded.
static METHODS: LazyLock<HashMap<String, (String, String)>> = LazyLock::new(|| {
    let sets = [
        ferry_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = HashMap::new();
    for set in sets.into_iter().filter_map(crate::descriptors::decode) {
        for m in crate::descriptors::methods(&set) {
            methods.insert(m.path, (m.service, m.name.to_owned()));
        }
    }
    methods
});

const UNKNOWN: &str = "unknown";

fn call_labels(path: &str) -> (String, String) {
    METHODS.get(path).cloned().unwrap_or_else(|| (UNKNOWN.to_owned(), UNKNOWN.to_owned()))
}

pub use crate::status::code_name;

fn grpc_status(headers: &http::HeaderMap) -> Option<(tonic::Code, String)> {
    let code = headers.get("grpc-status").map(|v| tonic::Code::from_bytes(v.as_bytes()))?;
    let message = headers.get("grpc-message").map(|v| percent_decoded(v.as_bytes())).unwrap_or_default();
    Some((code, message))
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2); decoded for the log.
fn percent_decoded(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if let [b'%', h, l, ..] = raw[i..]
            && let (Some(h), Some(l)) = (hex(h), hex(l))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Who a failed call's code blames, which decides how loudly it is logged: alerts watch
/// ERROR, so ERROR is only for failures on our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// A bug, lost data or a dependency down (INTERNAL, UNKNOWN, DATA_LOSS, UNAVAILABLE).
    Ours,
    /// Out of time or capacity (DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED): worth a look.
    Load,
    /// The request, or the state it met (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION,
    /// ABORTED, PERMISSION_DENIED, ...): an ordinary answer.
    Caller,
    /// The client went away (CANCELLED).
    Gone,
}

pub fn blame(code: tonic::Code) -> Option<Blame> {
    use tonic::Code::*;
    Some(match code {
        Ok => return None,
        Internal | Unknown | DataLoss | Unavailable => Blame::Ours,
        DeadlineExceeded | ResourceExhausted => Blame::Load,
        Cancelled => Blame::Gone,
        InvalidArgument | NotFound | AlreadyExists | PermissionDenied | FailedPrecondition | Aborted | OutOfRange | Unimplemented
        | Unauthenticated => Blame::Caller,
    })
}

/// The one log line of a failed call: ERROR on our side, WARN for time or capacity, INFO
/// for the caller's, DEBUG for a client gone. The message is cut at 300 characters: the
/// reply has it whole.
fn log_failed(service: &str, method: &str, code: tonic::Code, message: &str) {
    let Some(blame) = blame(code) else { return };
    let message = match message.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    };
    let code = code_name(code);
    match blame {
        Blame::Ours => tracing::error!(rpc.service = service, rpc.method = method, code, %message, "call failed"),
        Blame::Load => tracing::warn!(rpc.service = service, rpc.method = method, code, %message, "call failed"),
        Blame::Caller => tracing::info!(rpc.service = service, rpc.method = method, code, %message, "call refused"),
        Blame::Gone => tracing::debug!(rpc.service = service, rpc.method = method, code, "call cancelled"),
    }
}

/// One call being measured; recorded once, when its status is known. A call dropped
/// before it ends (client gone, server timeout, shutdown) counts as CANCELLED.
struct CallRecord {
    service: String,
    method: String,
    start: Instant,
    done: bool,
}

impl CallRecord {
    fn finish(&mut self, code: tonic::Code, message: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        log_failed(&self.service, &self.method, code, message);
        let (service, method) = (self.service.clone(), self.method.clone());
        CALLS.handled.get_or_create(&[("service", service.clone()), ("method", method.clone()), ("code", code_name(code).into())]).inc();
        CALLS.seconds.get_or_create(&[("service", service), ("method", method)]).observe(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled, "");
    }
}

/// A tower layer recording `ferry_grpc_server_handled_total{service,method,code}` and
/// `ferry_grpc_server_handling_seconds{service,method}` for every call. The code comes
/// from the response headers (trailers-only replies: errors) or else from the trailers,
/// so a stream counts when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallMetricsLayer;

impl<S> tower::Layer<S> for CallMetricsLayer {
    type Service = CallMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LazyLock::force(&CALLS);
        CallMetricsService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct CallMetricsService<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for CallMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (service, method) = call_labels(request.uri().path());
        let mut record = CallRecord { service, method, start: Instant::now(), done: false };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if let Some((code, message)) = grpc_status(response.headers()) {
                record.finish(code, &message);
                return Ok(response);
            }
            Ok(response.map(|inner| tonic::body::Body::new(MeteredBody { inner, record })))
        })
    }
}

/// A response body that records its call when the trailers (or the end) arrive.
struct MeteredBody {
    inner: tonic::body::Body,
    record: CallRecord,
}

impl http_body::Body for MeteredBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some((code, message)) = frame.trailers_ref().and_then(grpc_status) {
                    self.record.finish(code, &message);
                }
            }
            Poll::Ready(Some(Err(status))) => self.record.finish(status.code(), status.message()),
            // Ended without a status: tonic always sends trailers, so this is a broken reply.
            Poll::Ready(None) => self.record.finish(tonic::Code::Unknown, "the reply ended without a status"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

// ---------------------------------------------------------------------------------------
// The /metrics endpoint

/// A bound `/metrics` listener (plain HTTP/1.1), not serving yet.
pub struct Endpoint {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl Endpoint {
    /// Binds `addr` (port 0 works; [`Endpoint::local_addr`] reads the port back).
    pub async fn bind(addr: SocketAddr) -> Result<Self, crate::Error> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(Self { listener, local_addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `GET /metrics` (404 elsewhere) until the future is dropped; dropping it also
    /// drops every open connection.
    pub async fn serve(self) {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(async move {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let service = hyper::service::service_fn(|req| std::future::ready(Ok::<_, Infallible>(respond(&req))));
                            // The timer makes hyper's header read timeout (30 s) apply: a
                            // silent client does not hold its connection for ever.
                            let mut http = hyper::server::conn::http1::Builder::new();
                            http.timer(hyper_util::rt::TokioTimer::new());
                            if let Err(e) = http.serve_connection(io, service).await {
                                tracing::debug!(error = %e, "metrics connection ended with an error");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a metrics connection failed");
                        tokio::time::sleep(crate::server::POLL_INTERVAL).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }
}

fn respond<B>(request: &http::Request<B>) -> http::Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET, "/metrics") => (http::StatusCode::OK, CONTENT_TYPE, render()),
        (_, "/metrics") => (http::StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET\n".to_owned()),
        _ => (http::StatusCode::NOT_FOUND, "text/plain", "not found; metrics are at /metrics\n".to_owned()),
    };
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

/// Runs a task until dropped (the metrics endpoint lives as long as its server).
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_bounded_labels() {
        assert_eq!(
            call_labels("/ferry.registry.v1.RegistryService/GetGroup"),
            ("ferry.registry.v1.RegistryService".to_owned(), "GetGroup".to_owned())
        );
        assert_eq!(call_labels("/grpc.health.v1.Health/Check"), ("grpc.health.v1.Health".to_owned(), "Check".to_owned()));
        assert_eq!(call_labels("/ferry.registry.v1.RegistryService/NoSuchMethod"), (UNKNOWN.to_owned(), UNKNOWN.to_owned()));
        assert_eq!(call_labels("/random/garbage/path"), (UNKNOWN.to_owned(), UNKNOWN.to_owned()));
    }

    #[test]
    fn only_our_failures_are_blamed_on_us() {
        use tonic::Code;
        for c in [Code::Internal, Code::Unknown, Code::DataLoss, Code::Unavailable] {
            assert_eq!(blame(c), Some(Blame::Ours), "{c:?}");
        }
        for c in
            [Code::InvalidArgument, Code::NotFound, Code::FailedPrecondition, Code::Aborted, Code::AlreadyExists, Code::PermissionDenied]
        {
            assert_eq!(blame(c), Some(Blame::Caller), "{c:?}");
        }
        assert_eq!(blame(Code::Ok), None);
        assert_eq!(blame(Code::Cancelled), Some(Blame::Gone));
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(percent_decoded(b"entity 7 not found: 100%25 sure %E2%9C%93"), "entity 7 not found: 100% sure \u{2713}");
        assert_eq!(percent_decoded(b"bad %zz and trailing %4"), "bad %zz and trailing %4");
    }

    #[test]
    fn code_names_are_canonical() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(code_name(tonic::Code::FailedPrecondition), "FAILED_PRECONDITION");
        assert_eq!(code_name(tonic::Code::from_bytes(b"16")), "UNAUTHENTICATED");
    }
}

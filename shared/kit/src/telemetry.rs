//! Logs and traces. A tracing subscriber (pretty or JSON), an OpenTelemetry OTLP exporter
//! when an endpoint is configured, and W3C trace context carried in gRPC metadata:
//! [`inject_current`] on the client side, [`server_span`] on the server side.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{CommonArgs, LogFormat};

/// Flushes and stops trace export when dropped.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("telemetry shutdown: {e}");
        }
    }
}

/// Installs the global subscriber for a process named `service` (logs go to stderr, so a
/// command's output stays clean). Call once, from a binary.
/// `RUST_LOG` filters (default `info`).
pub fn init(service: &str, args: &CommonArgs) -> Result<TelemetryGuard, crate::Error> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match args.log_format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).with_filter(filter()).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter())
            .boxed(),
    };
    let (otel, provider) = match &args.otlp_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| crate::Error::Telemetry(e.to_string()))?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service.to_owned()).build())
                .build();
            (Some(otel_layer(&provider).with_filter(filter())), Some(provider))
        }
        None => (None, None),
    };
    tracing_subscriber::registry().with(fmt).with(otel).try_init().map_err(|e| crate::Error::Telemetry(e.to_string()))?;
    Ok(TelemetryGuard { provider })
}

/// The layer that turns tracing spans into OpenTelemetry spans of `provider` (what
/// [`init`] installs when exporting; tests use it over an in-memory exporter).
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("ferry"))
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) =
            (tonic::metadata::MetadataKey::from_bytes(key.as_bytes()), tonic::metadata::MetadataValue::try_from(value.as_str()))
        {
            self.0.insert(k, v);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_current(metadata: &mut tonic::metadata::MetadataMap) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut MetadataInjector(metadata));
}

/// The current span's trace context as a W3C `traceparent`, to continue the trace later
/// (a durable run stores it); `None` when no trace is being recorded.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the trace context `traceparent` (from [`current_traceparent`]);
/// nothing happens for `None` or a malformed value.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent else { return };
    let carrier = std::collections::HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if opentelemetry::trace::TraceContextExt::span(&parent).span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The span of one incoming call, child of the caller's trace when the request carries one.
pub fn server_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("grpc.server", rpc.method = %request.uri().path(), otel.kind = "server");
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    let _ = span.set_parent(parent);
    span
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// What the client interceptor writes, the server span continues: one trace.
    #[test]
    fn trace_context_crosses_grpc_metadata() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let client_span = tracing::info_span!("client call");
            let _entered = client_span.enter();
            let client_trace = client_span.context().span().span_context().trace_id();
            assert_ne!(client_trace, opentelemetry::trace::TraceId::INVALID);

            let mut metadata = tonic::metadata::MetadataMap::new();
            inject_current(&mut metadata);
            let traceparent = metadata.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            assert!(traceparent.contains(&client_trace.to_string()), "{traceparent}");

            let request = http::Request::builder()
                .uri("/ferry.registry.v1.RegistryService/GetGroup")
                .header("traceparent", traceparent)
                .body(())
                .expect("request");
            let server = server_span(&request);
            assert_eq!(server.context().span().span_context().trace_id(), client_trace);
        });
    }

    /// A stored `traceparent` continues the trace later, in a span made elsewhere.
    #[test]
    fn a_stored_traceparent_continues_the_trace() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(otel_layer(&provider));
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(current_traceparent(), None, "no span, nothing to continue");
            let call = tracing::info_span!("start call");
            let stored = call.in_scope(current_traceparent).expect("a traceparent");
            let trace = call.context().span().span_context().trace_id();

            let later = tracing::info_span!("step");
            continue_trace(&later, Some(&stored));
            assert_eq!(later.context().span().span_context().trace_id(), trace);

            let fresh = tracing::info_span!("other");
            continue_trace(&fresh, Some("not a traceparent"));
            assert_ne!(fresh.context().span().span_context().trace_id(), trace);
        });
    }
}

//! One trace per run: the StartRefresh call, the driver's steps (also after the
//! coordinator restarts mid-run) and the calls they make to integration-control and
//! group-registry share one trace id; a promotion's trace reaches merge-engine too. And
//! logs fit for alerting: a clean scenario with ordinary client errors logs no ERROR.
//!
//! A binary of its own: it installs a global tracing subscriber whose OpenTelemetry layer
//! (`ferry_kit::telemetry::otel_layer`, as `telemetry::init` uses it) exports to memory,
//! beside a layer that keeps every ERROR event and counts refused calls.

#[allow(dead_code)]
#[path = "../refresh/gates.rs"]
mod gates;
#[allow(dead_code)] // shared with the refresh suite; this binary uses part of it
#[path = "../refresh/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../refresh/scenario.rs"]
mod scenario;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use ferry_proto::refresh::v1 as pb;
use helpers::*;
use opentelemetry::trace::TraceId;
use opentelemetry::{Key, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

struct Tracing {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
}

/// Every ERROR event of the process (its fields as text), and how many calls were logged
/// as refused (the caller's errors, at INFO).
static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static REFUSED: AtomicUsize = AtomicUsize::new(0);

struct Levels;

impl<S: tracing::Subscriber> Layer<S> for Levels {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        match *event.metadata().level() {
            tracing::Level::ERROR => ERRORS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(text.0),
            tracing::Level::INFO if text.0.contains("message=call refused") => {
                REFUSED.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Installs the process's subscriber once: every span goes to an in-memory exporter.
fn tracing() -> &'static Tracing {
    static TRACING: OnceLock<Tracing> = OnceLock::new();
    TRACING.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let subscriber = tracing_subscriber::registry()
            .with(ferry_kit::telemetry::otel_layer(&provider).with_filter(LevelFilter::INFO))
            .with(Levels.with_filter(LevelFilter::INFO));
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        Tracing { provider, exporter }
    })
}

fn finished_spans() -> Vec<SpanData> {
    let t = tracing();
    t.provider.force_flush().expect("flush spans");
    t.exporter.get_finished_spans().expect("finished spans")
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key == Key::from(key.to_owned())).map(|kv| &kv.value)
}

fn method(span: &SpanData) -> String {
    attr(span, "rpc.method").map(|v| v.as_str().into_owned()).unwrap_or_default()
}

/// Whether `span` is a step of run `id` of `kind` (the engine's `run.step` spans).
fn is_step_of(span: &SpanData, kind: &str, id: &str) -> bool {
    let text = |key| attr(span, key).map(|v| v.as_str().into_owned());
    span.name == "run.step" && text("kind").as_deref() == Some(kind) && text("run").as_deref() == Some(id)
}

/// The trace of run `id`'s step spans, which must hold the server span of the call to
/// `path` that started the run (other tests of this binary start runs too).
fn trace_of_run(spans: &[SpanData], kind: &str, id: &str, path: &str) -> TraceId {
    let of_run = |sp: &&SpanData| is_step_of(sp, kind, id);
    let trace = spans.iter().find(of_run).map(|sp| sp.span_context.trace_id()).unwrap_or(TraceId::INVALID);
    let calls = spans.iter().filter(|s| s.name == "grpc.server" && method(s) == path && s.span_context.trace_id() == trace).count();
    assert_eq!(calls, 1, "the {path} call that started {id} is in the trace of its steps");
    trace
}

/// The services whose server spans are in `trace` (by gRPC service name).
fn services_in(spans: &[SpanData], trace: TraceId) -> BTreeSet<String> {
    spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace && s.name == "grpc.server")
        .filter_map(|s| method(s).trim_start_matches('/').split_once('/').map(|(svc, _)| svc.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_run_is_one_trace_across_services_and_a_restart() {
    tracing();
    let Some(mut s) = spawn_suite(Backend::Sqlite, Knobs { step_delay_ms: 100, ..Knobs::default() }).await else { return };
    env(&s, "prod", true).await;
    env(&s, "sandbox", false).await;
    group(&s, "prod", "live", &["billing", "orders"]).await;
    let rally = integration(&s, "prod", "rally", true).await;
    mapping(&s, &rally, "portfolio", "environments/prod", true).await;

    // Act: start a MANAGED refresh, stop the coordinator in the middle, start another.
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    wait_for(&s, &run.name, 30, |r| steps_done(r) >= 3).await;
    s.crash_coordinator().await;
    s.start_coordinator().await;
    let done = wait_for(&s, &run.name, 60, |r| r.state == SUCCEEDED || r.state == FAILED).await;
    assert_eq!(done.state, SUCCEEDED, "{:?}", done.error);

    // Assert: the call that started the run, every step and the calls the steps made.
    let spans = finished_spans();
    let id = run.name.rsplit('/').next().unwrap_or_default().to_owned();
    let trace = trace_of_run(&spans, "refresh", &id, "/ferry.refresh.v1.RefreshService/StartRefresh");
    let steps: BTreeSet<i64> = spans
        .iter()
        .filter(|sp| is_step_of(sp, "refresh", &id))
        .inspect(|sp| assert_eq!(sp.span_context.trace_id(), trace, "a step of the run outside its trace"))
        .filter_map(|sp| match attr(sp, "step") {
            Some(Value::I64(n)) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(steps, (1..=9).collect(), "every step, before and after the restart, in the run's trace");
    let services = services_in(&spans, trace);
    for service in ["ferry.refresh.v1.RefreshService", "ferry.integration.v1.IntegrationService", "ferry.registry.v1.RegistryService"] {
        assert!(services.contains(service), "{service} joined the run's trace: {services:?}");
    }
    // Other calls are their own traces: the test's GetRefreshRun polls are not in it.
    let polls: Vec<&SpanData> =
        spans.iter().filter(|sp| sp.name == "grpc.server" && method(sp) == "/ferry.refresh.v1.RefreshService/GetRefreshRun").collect();
    assert!(!polls.is_empty() && polls.iter().all(|sp| sp.span_context.trace_id() != trace));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_run_is_one_trace_reaching_merge_engine() {
    tracing();
    let Some(s) = spawn_suite(Backend::Sqlite, Knobs::default()).await else { return };
    env(&s, "corp", false).await;
    let test_group = group(&s, "corp", "g-test", &["billing", "orders"]).await;
    let prod_group = group(&s, "corp", "g-prod", &["billing"]).await;
    project(&s, "corp", "p-test", vec![test_group]).await;
    project(&s, "corp", "p-prod", vec![prod_group]).await;

    let mut rf = s.refresh.clone();
    let run = rf
        .start_promotion(pb::StartPromotionRequest {
            source_project: "environments/corp/projects/p-test".into(),
            target_project: "environments/corp/projects/p-prod".into(),
            ..Default::default()
        })
        .await
        .expect("start promotion")
        .into_inner();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = rf.get_promotion_run(pb::GetPromotionRunRequest { name: run.name.clone() }).await.expect("get").into_inner();
        if r.state == SUCCEEDED || r.state == FAILED {
            assert_eq!(r.state, SUCCEEDED, "{:?}", r.error);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "promotion stuck: {r:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let spans = finished_spans();
    let id = run.name.rsplit('/').next().unwrap_or_default().to_owned();
    let trace = trace_of_run(&spans, "promotion", &id, "/ferry.refresh.v1.RefreshService/StartPromotion");
    assert!(spans.iter().any(|sp| is_step_of(sp, "promotion", &id) && sp.span_context.trace_id() == trace), "steps in the trace");
    let services = services_in(&spans, trace);
    assert!(services.contains("ferry.merge.v1.MergeService"), "merge-engine joined the promotion's trace: {services:?}");
}

/// The refresh article's scenario and the coordinator's refusals (each one an ordinary
/// client error: INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...) log no ERROR line:
/// those are INFO, with their code. ERROR is for failures on our side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_scenario_with_client_errors_logs_no_error() {
    tracing();
    scenario::managed_refresh_article_scenario(Backend::Sqlite).await;
    gates::refusals(Backend::Sqlite).await;
    let errors = ERRORS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert!(errors.is_empty(), "ERROR lines in a clean run: {errors:#?}");
    assert!(REFUSED.load(Ordering::Relaxed) >= 5, "the refusals were logged as refused calls");
}

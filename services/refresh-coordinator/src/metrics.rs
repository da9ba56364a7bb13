//! The coordinator's domain metrics, on the process registry (`ferry_kit::metrics`).

use std::sync::LazyLock;
use std::time::Duration;

use ferry_kit::metrics::{CounterFamily, HistogramFamily, histogram_family, register};

/// How long each execution of a run's step took, by step and how it came out.
static STEP_SECONDS: LazyLock<HistogramFamily<2>> = LazyLock::new(|| {
    register(
        "ferry_refresh_step_duration_seconds",
        "Duration of one execution of a run's step (refresh, promotion), by step and outcome",
        histogram_family(),
    )
});

/// How long each call a step made to another service took (what the step waited for; the
/// rest of a step's time is the coordinator's own).
static REMOTE_SECONDS: LazyLock<HistogramFamily<1>> = LazyLock::new(|| {
    register(
        "ferry_refresh_remote_call_duration_seconds",
        "Duration of one call a run's step made to another service (with its retries), by step",
        histogram_family(),
    )
});

/// The coordinator's own database writes for runs, by step and table (`runs`: the run
/// row, at transitions; `journal`: one per remote operation).
static WRITES: LazyLock<CounterFamily<2>> = LazyLock::new(|| {
    register("ferry_refresh_run_writes", "Rows a run's driver wrote, by step and table (runs, journal)", CounterFamily::default())
});

/// One call of a step (labelled as [`step_executed`]) to another service took `took`.
pub(crate) fn remote_call(step: &'static str, took: Duration) {
    REMOTE_SECONDS.get_or_create(&[("step", step.to_owned())]).observe(took.as_secs_f64());
}

/// The driver wrote a row of `table` for `step` ("run" when between steps).
pub(crate) fn run_write(step: &'static str, table: &'static str) {
    WRITES.get_or_create(&[("step", step.to_owned()), ("table", table.to_owned())]).inc();
}

/// How one execution of a step came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    /// It stopped to wait for a person (approval, the outside refresh).
    Waiting,
    /// It failed; the run waits in FAILED.
    Failed,
    /// The driver stopped mid-step (database error, run changed under it); it resumes.
    Interrupted,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Waiting => "waiting",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// Registers the metrics, so they are scraped before any run.
pub(crate) fn init() {
    LazyLock::force(&STEP_SECONDS);
    LazyLock::force(&REMOTE_SECONDS);
    LazyLock::force(&WRITES);
}

/// One execution of a step (its kind's label, `Kind::step_label`) ended.
pub(crate) fn step_executed(step: &'static str, outcome: Outcome, took: Duration) {
    STEP_SECONDS.get_or_create(&[("step", step.to_owned()), ("outcome", outcome.label().to_owned())]).observe(took.as_secs_f64());
}

/// Makes `span` continue the trace of the call that started the run (its stored
/// `traceparent`), so every call a step makes joins that one trace.
pub(crate) fn in_run_trace(span: tracing::Span, traceparent: Option<&str>) -> tracing::Span {
    ferry_kit::telemetry::continue_trace(&span, traceparent);
    span
}

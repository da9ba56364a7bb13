//! The coordinator's domain metrics, on the process registry (`ferry_kit::metrics`).

use std::sync::LazyLock;
use std::time::Duration;

use ferry_kit::metrics::{HistogramFamily, histogram_family, register};

/// How long each execution of a run's step took, by step and how it came out.
static STEP_SECONDS: LazyLock<HistogramFamily<2>> = LazyLock::new(|| {
    register(
        "ferry_refresh_step_duration_seconds",
        "Duration of one execution of a run's step (refresh, promotion), by step and outcome",
        histogram_family(),
    )
});

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

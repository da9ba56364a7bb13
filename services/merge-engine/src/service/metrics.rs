//! The engine's domain metrics, on the process registry (`ferry_kit::metrics`).

use std::sync::LazyLock;

use ferry_kit::metrics::{CounterFamily, Family, register};

use crate::domain::JobKind;

/// Items a job has applied (plan items sent to the registry, effects reverted, config
/// items delivered), by job kind; `rate()` of it is the engine's items per second.
static ITEMS_APPLIED: LazyLock<CounterFamily<1>> = LazyLock::new(|| {
    register("ferry_merge_items_applied", "Items merge jobs have applied, by kind of job (rate() gives items/s)", Family::default())
});

fn label(kind: JobKind) -> &'static str {
    match kind {
        JobKind::ApplyMerge => "apply_merge",
        JobKind::CloneGroup => "clone_group",
        JobKind::CloneProject => "clone_project",
        JobKind::MergeProject => "merge_project",
        JobKind::RevertMerge => "revert_merge",
    }
}

/// Registers the metrics with every series at 0, so they are scraped before any job runs.
pub(crate) fn init() {
    for kind in JobKind::ALL {
        let _ = ITEMS_APPLIED.get_or_create(&[("kind_of_job", label(*kind).to_owned())]);
    }
}

/// `n` items of a job of `kind` were applied (their chunk is committed).
pub(crate) fn items_applied(kind: JobKind, n: usize) {
    ITEMS_APPLIED.get_or_create(&[("kind_of_job", label(kind).to_owned())]).inc_by(n as u64);
}

//! The engine's domain metrics, on the process registry (`ferry_kit::metrics`).

use std::sync::LazyLock;

use ferry_kit::metrics::{CounterFamily, Family, Gauge, Labels, register};

use crate::domain::{JobKind, JobState};
use crate::store::work::Pending;

/// Items a job has applied (plan items sent to the registry, effects reverted, config
/// items delivered), by job kind; `rate()` of it is the engine's items per second.
static ITEMS_APPLIED: LazyLock<CounterFamily<1>> = LazyLock::new(|| {
    register("ferry_merge_items_applied", "Items merge jobs have applied, by kind of job (rate() gives items/s)", Family::default())
});

/// Jobs waiting (`state="queued"`) and running, by kind of job: the work an autoscaler
/// follows. Every replica reports the same database-wide count (take `max`, not `sum`).
static JOBS_PENDING: LazyLock<Family<Labels<2>, Gauge>> = LazyLock::new(|| {
    register("ferry_merge_jobs_pending", "Merge jobs queued and running, by kind of job and state (database-wide)", Family::default())
});

/// The items those jobs have left to apply.
static ITEMS_PENDING: LazyLock<Family<Labels<2>, Gauge>> = LazyLock::new(|| {
    register(
        "ferry_merge_items_pending",
        "Items merge jobs queued and running have left, by kind of job and state (database-wide)",
        Family::default(),
    )
});

/// The states counted as pending, with their label.
const PENDING_STATES: [(JobState, &str); 2] = [(JobState::Queued, "queued"), (JobState::Running, "running")];

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
    set_pending(&[]);
}

/// Sets the pending gauges to `pending`, and every (kind, state) not in it to 0.
fn set_pending(pending: &[Pending]) {
    for kind in JobKind::ALL {
        for (state, state_label) in PENDING_STATES {
            let p = pending.iter().find(|p| p.kind == *kind && p.state == state);
            let labels = [("kind_of_job", label(*kind).to_owned()), ("state", state_label.to_owned())];
            JOBS_PENDING.get_or_create(&labels).set(p.map_or(0, |p| p.jobs));
            ITEMS_PENDING.get_or_create(&labels).set(p.map_or(0, |p| p.items));
        }
    }
}

/// Counts the pending work every `interval`, for as long as the server serves.
pub(crate) async fn count_pending(db: sea_orm::DatabaseConnection, interval: std::time::Duration) {
    ferry_kit::prune::every(interval, "ferry_merge_jobs_pending", || async {
        set_pending(&crate::store::work::pending(&db).await?);
        Ok::<_, sea_orm::DbErr>(())
    })
    .await
}

/// `n` items of a job of `kind` were applied (their chunk is committed).
pub(crate) fn items_applied(kind: JobKind, n: usize) {
    ITEMS_APPLIED.get_or_create(&[("kind_of_job", label(kind).to_owned())]).inc_by(n as u64);
}

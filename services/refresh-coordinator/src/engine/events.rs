//! Run and step state changes as events: each write of a run appends, in its own
//! transaction, one event per step whose state changed and one when the run's state
//! changed (`refresh_run.step_changed`, `refresh_run.state_changed`, the same for rollback
//! and promotion runs), to the coordinator's outbox. The outbox's relay hands them to
//! integration-control's PublishEvents, which delivers them to webhook subscriptions.
//! Every event of a run names the run as its resource, so they keep their order.

use ferry_kit::outbox::Event;
use serde_json::json;

use super::{Kind, RunOf, name_of};
use crate::domain::{RunState, StepState};

/// The states a run was last written with (nothing before it exists).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    state: Option<RunState>,
    steps: Vec<StepState>,
}

impl Seen {
    pub fn of<K: Kind>(run: &RunOf<K>) -> Self {
        Self { state: Some(run.state), steps: run.steps.iter().map(|s| s.state).collect() }
    }
}

/// The environment a run changes: the last `environments/{id}` among its subjects (a
/// refresh's and a rollback's destination, a promotion's target environment).
fn environment<K: Kind>(run: &RunOf<K>) -> String {
    K::subjects(&run.spec)
        .iter()
        .rev()
        .find_map(|s| s.strip_prefix("environments/").filter(|id| !id.contains('/')).map(str::to_owned))
        .unwrap_or_default()
}

/// The events of writing `run` when it was last written as `before`: its steps' changes
/// first, in step order, then the run's.
pub fn of<K: Kind>(before: &Seen, run: &RunOf<K>) -> Vec<Event> {
    let (name, env) = (name_of::<K>(&run.id), environment::<K>(run));
    let mut out = Vec::new();
    for (i, step) in run.steps.iter().enumerate() {
        let was = before.steps.get(i).copied();
        if was != Some(step.state) && (was.is_some() || step.state != StepState::Pending) {
            let data = json!({
                "run": name,
                "step": step.number,
                "label": K::step_label(step),
                "before": was,
                "state": step.state,
                "error": step.error.as_ref().map(|e| &e.message),
            });
            out.push(Event::new(format!("{}_run.step_changed", K::KIND), env.clone(), name.clone(), data));
        }
    }
    if before.state != Some(run.state) {
        let data = json!({
            "run": name,
            "before": before.state,
            "state": run.state,
            "current_step": run.current_step,
            "created_by": run.created_by,
            "error": run.error.as_ref().map(|e| &e.message),
        });
        out.push(Event::new(format!("{}_run.state_changed", K::KIND), env, name, data));
    }
    out
}

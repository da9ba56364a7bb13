//! The refresh run's abort: which steps are undone, last first, and how each is undone
//! (the proto's RefreshStepKind says the same, step by step).

use super::Refresh;
use crate::domain::remote::{ChangeSet, Restored};
use crate::domain::{Change, StepKind, StepState};
use crate::engine::Cx;
use crate::error::{Error, Result};
use crate::kinds::changes::record_undo;

/// The steps an abort undoes, last first: what the copy replaced, the jobs paused, the
/// integrations deactivated. The others change nothing an abort must give back (the
/// fences step 2 put up are lifted at the end, see [`lift_fences`]).
const UNDONE: [StepKind; 3] = [StepKind::Copy, StepKind::PauseJobs, StepKind::DeactivateSourceIntegrations];

/// One transition of an abort.
pub(super) async fn undo_next(cx: &mut Cx<Refresh>) -> Result<bool> {
    let run_id = cx.run.id.clone();
    let order = UNDONE.map(StepKind::number);
    let pending = cx.next_to_undo(touched, &order).and_then(|n| StepKind::ALL.get(n as usize - 1).copied());
    let Some(kind) = pending else {
        lift_fences(cx).await?;
        return Ok(false);
    };
    tracing::debug!(run = %run_id, step = kind.number(), "undoing");
    cx.run.current_step = kind.number();
    undo(cx, kind).await?;
    Ok(true)
}

/// Whether step `n` may have changed something: it journaled an operation, or it is the
/// copy and a restore point was taken (a copy the registry made just before a crash is not
/// journaled yet; restoring what was kept is right either way).
fn touched(cx: &Cx<Refresh>, n: i32) -> bool {
    cx.count(n, "") > 0 || (n == StepKind::Copy.number() && !cx.run.spec.restore_point.is_empty() && cx.step(n).attempts > 0)
}

/// The registry says the restore point expired or no longer exists.
fn restore_point_gone(e: &Error) -> bool {
    let info = e.info();
    info.code == tonic::Code::NotFound || info.violations.iter().any(|v| v.kind == "RESTORE_POINT_EXPIRED")
}

/// Undoes step `kind` as the proto says.
async fn undo(cx: &mut Cx<Refresh>, kind: StepKind) -> Result<()> {
    let n = kind.number();
    let (src, dst) = (cx.run.spec.source.clone(), cx.run.spec.destination.clone());
    let c = cx.engine.clients().clone();
    let ic = &c.integration;
    let mut sets = Vec::new();
    let mut undone = true;
    match kind {
        StepKind::Copy => {
            let point = cx.run.spec.restore_point.clone();
            if !point.is_empty() {
                let registry = &c.registry;
                match cx.op(n, "undo-restore-registry", |rid| registry.restore_environment(&point, rid)).await {
                    Ok(r) => {
                        let r: Restored = r;
                        let p = &r.restore_point;
                        cx.step_mut(n).log.push(format!(
                            "registry: restored {dst} from {point}: {} group(s), {} entities, {} link(s), {} project(s), {} config item(s); \
                             replaced {} group(s), {} entities, {} project(s)",
                            p.groups, p.entities, p.links, p.projects, p.config_items, r.replaced_groups, r.replaced_entities, r.replaced_projects
                        ));
                        cx.step_mut(n).undo_changes.push(Change {
                            resource: dst.to_string(),
                            field: "content".into(),
                            before: format!("copied from {src}"),
                            after: format!("restored from {point}"),
                        });
                    }
                    // Expired (an abort long after the copy) or deleted by hand: what was
                    // kept is gone, and the copied content stays, as the log says.
                    Err(e) if restore_point_gone(&e) => {
                        cx.step_mut(n)
                            .log
                            .push(format!("registry: {point} cannot be restored ({}); the copied content stays", e.info().message));
                    }
                    Err(e) => return Err(e),
                }
            }
            let snapshot = cx.run.spec.snapshot.clone();
            if !snapshot.is_empty() {
                let snap = cx.retrying("get snapshot", || ic.snapshot(&snapshot)).await?;
                let resources: Vec<String> = snap.integrations.iter().chain(snap.mappings.iter()).cloned().collect();
                if !resources.is_empty() {
                    sets.push((
                        "restore",
                        cx.op(n, "undo-restore", |rid| ic.restore_snapshot(&snapshot, &dst, resources.clone(), rid)).await?,
                    ));
                }
            }
            sets.push(("disable", cx.op(n, "undo-disable-foreign", |rid| ic.disable_foreign(&dst, rid)).await?));
        }
        StepKind::PauseJobs if cx.step(StepKind::ResumeJobs.number()).state == StepState::Succeeded => {
            undone = false;
            cx.step_mut(n).log.push("undo: step 9 already resumed the jobs".into());
        }
        StepKind::PauseJobs => {
            for (env, paused_op, op) in
                [(&src, "pause-source", "undo-resume-source"), (&dst, "pause-destination", "undo-resume-destination")]
            {
                let paused: ChangeSet = cx.recorded(n, paused_op)?.unwrap_or_default();
                if !paused.changes.is_empty() {
                    sets.push(("resume", cx.op(n, op, |rid| ic.resume(env, &paused, rid)).await?));
                }
            }
        }
        StepKind::DeactivateSourceIntegrations
            if cx.step(StepKind::ReactivateSourceIntegrations.number()).state == StepState::Succeeded =>
        {
            undone = false;
            cx.step_mut(n).log.push("undo: step 8 already re-activated the integrations".into());
        }
        StepKind::DeactivateSourceIntegrations => {
            let deactivated: ChangeSet = cx.recorded(n, "deactivate")?.unwrap_or_default();
            if !deactivated.changes.is_empty() {
                sets.push(("reactivate", cx.op(n, "undo-reactivate", |rid| ic.reactivate(&src, &deactivated, rid)).await?));
            }
        }
        _ => undone = false,
    }
    record_undo(cx, n, &sets);
    let step = cx.step_mut(n);
    step.undo_done = true;
    if undone {
        step.state = StepState::Undone;
    }
    Ok(())
}

/// The last act of an abort: lifts the fences step 2 put up.
async fn lift_fences(cx: &mut Cx<Refresh>) -> Result<()> {
    let kind = StepKind::DeactivateSourceIntegrations;
    let n = kind.number();
    let run = cx.name();
    let c = cx.engine.clients().clone();
    let ic = &c.integration;
    let mut sets = Vec::new();
    for (env, fenced, op) in [
        (cx.run.spec.source.clone(), "fence-source", "undo-unfence-source"),
        (cx.run.spec.destination.clone(), "fence-destination", "undo-unfence-destination"),
    ] {
        if cx.has(n, fenced) {
            sets.push(("unfence", cx.op(n, op, |rid| ic.unfence(&env, run.clone(), rid)).await?));
        }
    }
    if !sets.is_empty() && !cx.has(n, "fences-lifted") {
        record_undo(cx, n, &sets);
        cx.mark(n, "fences-lifted").await?;
    }
    Ok(())
}

//! The rollback run: a SUCCEEDED refresh undone within the rollback window, as one
//! definition. Its six steps (`RollbackStepKind`), its plan (`plan`: the checks, what
//! comes back, what is discarded, start), what each step does and undoes (here), and its
//! report (`report`).
//!
//! What comes back is what the refresh kept in its step 4: the registry restore point (the
//! destination's groups, entities, links, projects, configuration items) and the
//! integration snapshot (its integrations and mappings). Before anything is restored, step
//! 3 keeps what the destination holds now the same way, so an abort of the rollback gives
//! that back. The source is never called.

mod plan;
mod report;

use ferry_kit::db::now_micros;
use futures::future::BoxFuture;

use crate::domain::remote::{ChangeSet, RestorePoint, Restored, Snapshot};
use crate::domain::{Change, PlannedRollbackStep, RollbackSpec, RollbackStepKind, Step, StepState};
use crate::engine::locks::Lock;
use crate::engine::{Cx, Flow, Kind, name_of};
use crate::error::Result;
use crate::kinds::Refresh;
use crate::kinds::changes::{self, record, record_undo};

/// The rollback run kind.
pub struct Rollback;

impl Kind for Rollback {
    const KIND: &'static str = "rollback";
    const COLLECTION: &'static str = "rollbackRuns";
    const NOUN: &'static str = "rollback run";
    type Spec = RollbackSpec;
    type Detail = PlannedRollbackStep;

    fn locks(spec: &RollbackSpec) -> Vec<Lock> {
        vec![Lock::Environment(spec.plan.destination.clone())]
    }

    fn subjects(spec: &RollbackSpec) -> Vec<String> {
        vec![spec.plan.destination.to_string(), name_of::<Refresh>(&spec.plan.refresh_run)]
    }

    fn step_label(step: &Step<PlannedRollbackStep>) -> &'static str {
        step.detail.kind.label()
    }

    fn execute(cx: &mut Cx<Self>, index: usize) -> BoxFuture<'_, Result<Flow>> {
        Box::pin(execute(cx, RollbackStepKind::ALL[index]))
    }

    fn undo_next(cx: &mut Cx<Self>) -> BoxFuture<'_, Result<bool>> {
        Box::pin(undo_next(cx))
    }

    fn derive(step: &mut Step<PlannedRollbackStep>, results: &[&str]) -> Result<()> {
        changes::derive(step, results)
    }
}

use plan::{check, kept_point, kept_snapshot};
pub use plan::{plan, start};
pub use report::markdown;

fn exists(resource: &str) -> Change {
    Change { resource: resource.to_owned(), field: "exists".into(), before: "false".into(), after: "true".into() }
}

async fn execute(cx: &mut Cx<Rollback>, kind: RollbackStepKind) -> Result<Flow> {
    let n = kind.number();
    let run = cx.name();
    let plan = cx.run.spec.plan.clone();
    let dst = plan.destination.clone();
    let c = cx.engine.clients().clone();
    let (ic, registry) = (&c.integration, &c.registry);
    match kind {
        RollbackStepKind::Check => {
            let engine = cx.engine.clone();
            let refresh = cx.retrying("get the refresh", || engine.get::<Refresh>(&plan.refresh_run)).await?;
            let now = now_micros();
            check(&engine, &refresh, now).await?;
            cx.retrying("check the restore point", || kept_point(&engine, &plan.restore_point, now)).await?;
            cx.retrying("check the snapshot", || kept_snapshot(&engine, &plan.snapshot)).await?;
            let step = cx.step_mut(n);
            if !step.log.iter().any(|l| l.starts_with("checked")) {
                step.log.push(format!("checked: refreshRuns/{} can be rolled back; the run holds {dst}", plan.refresh_run));
            }
            if plan.require_approval && !cx.step(n).confirmed {
                return Ok(Flow::Wait(crate::domain::approval::APPROVAL));
            }
        }
        RollbackStepKind::FenceDestination => {
            let reason = format!("rollback of refreshRuns/{}", plan.refresh_run);
            let a = cx.op(n, "fence", |rid| ic.fence(&dst, run.clone(), reason.clone(), false, rid)).await?;
            let b = cx.op(n, "pause", |rid| ic.pause(&dst, run.clone(), reason.clone(), rid)).await?;
            record(cx, n, &[("fence", "fence", a), ("pause", "pause", b)]);
        }
        RollbackStepKind::KeepCurrent => {
            let id = format!("rollback-{}", cx.run.id);
            let description = format!("taken by {run} before rolling refreshRuns/{} back", plan.refresh_run);
            let snap: Snapshot = cx.op(n, "snapshot", |rid| ic.create_snapshot(&dst, id.clone(), description.clone(), rid)).await?;
            cx.run.spec.kept_snapshot = snap.name.clone();
            let point: RestorePoint = cx
                .op(n, "restore-point", |rid| {
                    registry.create_restore_point(&dst, id.clone(), run.clone(), snap.name.clone(), description.clone(), rid)
                })
                .await?;
            cx.run.spec.kept_restore_point = point.name.clone();
            let step = cx.step_mut(n);
            step.changes = vec![exists(&snap.name), exists(&point.name)];
            step.log.push(format!(
                "kept {dst}: snapshot {} ({} integration(s), {} mapping(s), {} job(s)); restore point {} ({} group(s), {} entities, \
                 {} link(s), {} project(s), {} config item(s)), kept until {}",
                snap.name,
                snap.integration_count,
                snap.mapping_count,
                snap.sync_job_count,
                point.name,
                point.groups,
                point.entities,
                point.links,
                point.projects,
                point.config_items,
                ferry_kit::db::rfc3339(point.expire_time)
            ));
        }
        RollbackStepKind::RestoreContent => {
            let r: Restored = cx.op(n, "restore", |rid| registry.restore_environment(&plan.restore_point, rid)).await?;
            let step = cx.step_mut(n);
            step.log.push(restored_line(&dst.to_string(), &plan.restore_point, &r));
            step.changes = vec![Change {
                resource: dst.to_string(),
                field: "content".into(),
                before: format!("as refreshed by refreshRuns/{}", plan.refresh_run),
                after: format!("restored from {}", plan.restore_point),
            }];
        }
        RollbackStepKind::RestoreIntegrations => {
            let snap = cx.retrying("get snapshot", || ic.snapshot(&plan.snapshot)).await?;
            let resources: Vec<String> = snap.integrations.iter().chain(&snap.mappings).cloned().collect();
            let mut sets = Vec::new();
            if !resources.is_empty() {
                sets.push((
                    "restore",
                    "restore",
                    cx.op(n, "restore", |rid| ic.restore_snapshot(&plan.snapshot, &dst, resources.clone(), rid)).await?,
                ));
            }
            sets.push(("disable", "disable-foreign", cx.op(n, "disable-foreign", |rid| ic.disable_foreign(&dst, rid)).await?));
            record(cx, n, &sets);
        }
        RollbackStepKind::Resume => {
            let mut sets = Vec::new();
            let paused: ChangeSet = cx.recorded(RollbackStepKind::FenceDestination.number(), "pause")?.unwrap_or_default();
            if !paused.changes.is_empty() {
                sets.push(("resume", "resume", cx.op(n, "resume", |rid| ic.resume(&dst, &paused, rid)).await?));
            }
            sets.push(("unfence", "unfence", cx.op(n, "unfence", |rid| ic.unfence(&dst, run.clone(), rid)).await?));
            record(cx, n, &sets);
        }
    }
    Ok(Flow::Done)
}

fn restored_line(env: &str, point: &str, r: &Restored) -> String {
    let p = &r.restore_point;
    format!(
        "registry: restored {env} from {point}: {} group(s), {} entities, {} link(s), {} project(s), {} config item(s); \
         replaced {} group(s), {} entities, {} project(s)",
        p.groups, p.entities, p.links, p.projects, p.config_items, r.replaced_groups, r.replaced_entities, r.replaced_projects
    )
}

/// The steps an abort undoes, last first.
const UNDONE: [RollbackStepKind; 3] =
    [RollbackStepKind::RestoreIntegrations, RollbackStepKind::RestoreContent, RollbackStepKind::FenceDestination];

/// Whether step `n` may have changed something: it journaled an operation, or it is the
/// content restore and step 3 kept the destination (a restore the registry made just
/// before a crash is not journaled yet; restoring what was kept is right either way).
fn touched(cx: &Cx<Rollback>, n: i32) -> bool {
    cx.count(n, "") > 0
        || (n == RollbackStepKind::RestoreContent.number() && !cx.run.spec.kept_restore_point.is_empty() && cx.step(n).attempts > 0)
}

/// One transition of an abort.
async fn undo_next(cx: &mut Cx<Rollback>) -> Result<bool> {
    let order = UNDONE.map(RollbackStepKind::number);
    let Some(n) = cx.next_to_undo(touched, &order) else {
        lift_fence(cx).await?;
        return Ok(false);
    };
    cx.run.current_step = n;
    let dst = cx.run.spec.plan.destination.clone();
    let c = cx.engine.clients().clone();
    let ic = &c.integration;
    let mut sets = Vec::new();
    let mut undone = true;
    match RollbackStepKind::ALL[n as usize - 1] {
        RollbackStepKind::RestoreIntegrations => {
            let kept = cx.run.spec.kept_snapshot.clone();
            let snap = cx.retrying("get snapshot", || ic.snapshot(&kept)).await?;
            let resources: Vec<String> = snap.integrations.iter().chain(&snap.mappings).cloned().collect();
            if !resources.is_empty() {
                sets.push(("restore", cx.op(n, "undo-restore", |rid| ic.restore_snapshot(&kept, &dst, resources.clone(), rid)).await?));
            }
            sets.push(("disable", cx.op(n, "undo-disable-foreign", |rid| ic.disable_foreign(&dst, rid)).await?));
        }
        RollbackStepKind::RestoreContent => {
            let kept = cx.run.spec.kept_restore_point.clone();
            let r: Restored = cx.op(n, "undo-restore", |rid| c.registry.restore_environment(&kept, rid)).await?;
            let before = format!("restored from {}", cx.run.spec.plan.restore_point);
            let step = cx.step_mut(n);
            step.log.push(restored_line(&dst.to_string(), &kept, &r));
            step.undo_changes.push(Change {
                resource: dst.to_string(),
                field: "content".into(),
                before,
                after: format!("restored from {kept}"),
            });
        }
        RollbackStepKind::FenceDestination if cx.step(RollbackStepKind::Resume.number()).state == StepState::Succeeded => {
            undone = false;
            cx.step_mut(n).log.push("undo: step 6 already resumed the jobs".into());
        }
        RollbackStepKind::FenceDestination => {
            let paused: ChangeSet = cx.recorded(n, "pause")?.unwrap_or_default();
            if !paused.changes.is_empty() {
                sets.push(("resume", cx.op(n, "undo-resume", |rid| ic.resume(&dst, &paused, rid)).await?));
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
    Ok(true)
}

/// The last act of an abort: lifts the fence step 2 put up.
async fn lift_fence(cx: &mut Cx<Rollback>) -> Result<()> {
    let n = RollbackStepKind::FenceDestination.number();
    if !cx.has(n, "fence") || cx.has(n, "undo-unfence") {
        return Ok(());
    }
    let (run, dst) = (cx.name(), cx.run.spec.plan.destination.clone());
    let c = cx.engine.clients().clone();
    let cs = cx.op(n, "undo-unfence", |rid| c.integration.unfence(&dst, run.clone(), rid)).await?;
    record_undo(cx, n, &[("unfence", cs)]);
    Ok(())
}

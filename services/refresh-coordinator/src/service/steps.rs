//! The nine steps and their undos. Every call to another service goes through
//! [`Exec::op`]: its request id is derived from run, step and operation, and its reply is
//! recorded before the next call, so a step re-run after a crash replays what it did.

use ferry_proto::integration::v1 as ipb;
use ferry_proto::registry::v1 as rpb;

use super::changes;
use super::driver::Exec;
use crate::domain::{Mode, StepKind, StepState};
use crate::error::Result;

/// How a step ended.
pub enum Flow {
    Done,
    /// Waits for ConfirmRefreshStep; the value says for what.
    Wait(&'static str),
}

/// Sets the step's changes and log from the change sets it recorded, in order.
fn record(ex: &mut Exec, kind: StepKind, sets: &[(&str, ipb::ChangeSet)]) {
    let step = ex.run.step_mut(kind);
    step.changes = sets.iter().flat_map(|(_, cs)| changes::entries(cs)).collect();
    step.left_alone = sets.iter().flat_map(|(_, cs)| changes::left_alone(cs)).collect();
    for (what, cs) in sets {
        step.log.extend(changes::lines(what, cs));
    }
}

fn record_undo(ex: &mut Exec, kind: StepKind, sets: &[(&str, ipb::ChangeSet)]) {
    let step = ex.run.step_mut(kind);
    step.undo_changes.extend(sets.iter().flat_map(|(_, cs)| changes::entries(cs)));
    for (what, cs) in sets {
        step.log.extend(changes::lines(&format!("undo {what}"), cs));
    }
}

macro_rules! call {
    ($ex:expr, $kind:expr, $op:expr, $method:ident, $req:expr) => {{
        let remote = $ex.c.remote.clone();
        let req = $req;
        $ex.op($kind, $op, move || {
            let remote = remote.clone();
            let req = req.clone();
            async move { remote.$method(req).await }
        })
        .await?
    }};
}

pub async fn execute(ex: &mut Exec, kind: StepKind) -> Result<Flow> {
    let run = ex.run.name.to_string();
    let src = ex.run.source.clone();
    let dst = ex.run.destination.clone();
    match kind {
        StepKind::Check => {
            let c = ex.c.clone();
            ex.retrying("check", || c.check_environments(&src, &dst)).await?;
            let step = ex.run.step_mut(kind);
            if !step.log.iter().any(|l| l.starts_with("checked")) {
                step.log.push(format!("checked: {dst} is NON_PRODUCTION, differs from {src}; the run holds both"));
            }
            if ex.run.options.require_approval && !ex.run.step(kind).confirmed {
                return Ok(Flow::Wait("approval"));
            }
        }
        StepKind::DeactivateSourceIntegrations => {
            let fence = |env: &crate::domain::EnvName, op: &str| ipb::FenceEnvironmentRequest {
                environment: env.to_string(),
                holder: run.clone(),
                reason: format!("refresh {} -> {}", ex.run.source, ex.run.destination),
                include_resources: false,
                request_id: ex.request_id(kind, op),
            };
            let (fs, fd) = (fence(&src, "fence-source"), fence(&dst, "fence-destination"));
            let a = call!(ex, kind, "fence-source", fence, fs);
            let b = call!(ex, kind, "fence-destination", fence, fd);
            let req = ipb::DeactivateIntegrationsRequest {
                environment: src.to_string(),
                suspend_credentials_instead: ex.run.options.suspend_credentials_instead,
                request_id: ex.request_id(kind, "deactivate"),
            };
            let d = call!(ex, kind, "deactivate", deactivate, req);
            record(ex, kind, &[("fence", a), ("fence", b), ("deactivate", d)]);
        }
        StepKind::PauseJobs => {
            let pause = |env: &crate::domain::EnvName, op: &str| ipb::PauseSyncJobsRequest {
                environment: env.to_string(),
                actor: run.clone(),
                reason: format!("refresh {run}"),
                request_id: ex.request_id(kind, op),
            };
            let (ps, pd) = (pause(&src, "pause-source"), pause(&dst, "pause-destination"));
            let a = call!(ex, kind, "pause-source", pause, ps);
            let b = call!(ex, kind, "pause-destination", pause, pd);
            record(ex, kind, &[("pause", a), ("pause", b)]);
        }
        StepKind::SnapshotDestination => {
            let req = ipb::CreateSnapshotRequest {
                parent: dst.to_string(),
                snapshot_id: format!("refresh-{}", ex.run.name.id()),
                description: format!("taken by {run} before the refresh from {src}"),
                request_id: ex.request_id(kind, "snapshot"),
            };
            let snap = call!(ex, kind, "snapshot", create_snapshot, req);
            ex.run.snapshot = snap.name.clone();
            let step = ex.run.step_mut(kind);
            step.changes = vec![crate::domain::Change {
                resource: snap.name.clone(),
                field: "exists".into(),
                before: "false".into(),
                after: "true".into(),
            }];
            step.log.push(format!(
                "snapshot {}: {} integration(s), {} mapping(s), {} job(s), checksum {}",
                snap.name, snap.integration_count, snap.mapping_count, snap.sync_job_count, snap.checksum
            ));
        }
        StepKind::Copy => match ex.run.options.mode {
            Mode::Managed => {
                let req = rpb::CopyEnvironmentRequest {
                    source: src.to_string(),
                    destination: dst.to_string(),
                    request_id: ex.request_id(kind, "copy-registry"),
                };
                let r = call!(ex, kind, "copy-registry", copy_environment, req);
                let req = ipb::CopyIntegrationsRequest {
                    source: src.to_string(),
                    destination: dst.to_string(),
                    request_id: ex.request_id(kind, "copy-integrations"),
                };
                let cs = call!(ex, kind, "copy-integrations", copy_integrations, req);
                record(ex, kind, &[("copy", cs)]);
                ex.run.step_mut(kind).log.push(format!(
                    "registry: copied {} group(s), {} entities, {} link(s), {} project(s), {} config item(s); replaced {} group(s), {} entities, {} project(s)",
                    r.groups, r.entities, r.links, r.projects, r.config_items, r.replaced_groups, r.replaced_entities, r.replaced_projects
                ));
            }
            Mode::External => {
                if !ex.run.step(kind).confirmed {
                    return Ok(Flow::Wait("external refresh"));
                }
                let req = ipb::FenceEnvironmentRequest {
                    environment: dst.to_string(),
                    holder: run.clone(),
                    reason: format!("external refresh from {src}"),
                    include_resources: true,
                    request_id: ex.request_id(kind, "fence-resources"),
                };
                let cs = call!(ex, kind, "fence-resources", fence, req);
                record(ex, kind, &[("fence", cs)]);
            }
        },
        StepKind::DisableSourceMappings => {
            let req =
                ipb::DisableForeignMappingsRequest { environment: dst.to_string(), request_id: ex.request_id(kind, "disable-foreign") };
            let cs = call!(ex, kind, "disable-foreign", disable_foreign, req);
            record(ex, kind, &[("disable", cs)]);
        }
        StepKind::RestoreDestinationMappings => {
            let snapshot = ex.run.snapshot.clone();
            let c = ex.c.clone();
            let snap = ex.retrying("get snapshot", || c.remote.snapshot(&snapshot)).await?;
            let provisioned = ex.run.step(kind).plan.provisioned_mappings.clone();
            let resources: Vec<String> = snap
                .integrations
                .iter()
                .map(|i| i.name.clone())
                .chain(snap.mappings.iter().map(|m| m.name.clone()).filter(|m| !provisioned.contains(m)))
                .collect();
            let mut sets = Vec::new();
            if !resources.is_empty() {
                let req = ipb::RestoreSnapshotRequest {
                    name: snapshot,
                    environment: dst.to_string(),
                    resources,
                    request_id: ex.request_id(kind, "restore"),
                };
                sets.push(("restore", call!(ex, kind, "restore", restore_snapshot, req)));
            }
            if !provisioned.is_empty() {
                let req = ipb::ActivateProvisionedMappingsRequest {
                    environment: dst.to_string(),
                    mappings: Vec::new(),
                    request_id: ex.request_id(kind, "activate-provisioned"),
                };
                sets.push(("activate provisioned", call!(ex, kind, "activate-provisioned", activate_provisioned, req)));
            }
            record(ex, kind, &sets);
            if sets.is_empty() {
                ex.run.step_mut(kind).log.push("nothing to restore".into());
            }
        }
        StepKind::ReactivateSourceIntegrations => {
            let deactivated: ipb::ChangeSet = ex.output(StepKind::DeactivateSourceIntegrations, "deactivate")?.unwrap_or_default();
            if deactivated.changes.is_empty() {
                ex.run.step_mut(kind).log.push("nothing was deactivated".into());
            } else {
                let req = ipb::ReactivateIntegrationsRequest {
                    environment: src.to_string(),
                    change_set: Some(deactivated),
                    integrations: Vec::new(),
                    request_id: ex.request_id(kind, "reactivate"),
                };
                let cs = call!(ex, kind, "reactivate", reactivate, req);
                record(ex, kind, &[("reactivate", cs)]);
            }
        }
        StepKind::ResumeJobs => {
            let mut sets = Vec::new();
            for (env, paused_op, op) in [(&src, "pause-source", "resume-source"), (&dst, "pause-destination", "resume-destination")] {
                let paused: ipb::ChangeSet = ex.output(StepKind::PauseJobs, paused_op)?.unwrap_or_default();
                if !paused.changes.is_empty() {
                    let req = ipb::ResumeSyncJobsRequest {
                        environment: env.to_string(),
                        change_set: Some(paused),
                        sync_jobs: Vec::new(),
                        request_id: ex.request_id(kind, op),
                    };
                    sets.push(("resume", call!(ex, kind, op, resume, req)));
                }
            }
            for (env, op) in [(&src, "unfence-source"), (&dst, "unfence-destination")] {
                let req = ipb::UnfenceEnvironmentRequest {
                    environment: env.to_string(),
                    holder: run.clone(),
                    force: false,
                    request_id: ex.request_id(kind, op),
                };
                sets.push(("unfence", call!(ex, kind, op, unfence, req)));
            }
            record(ex, kind, &sets);
        }
    }
    Ok(Flow::Done)
}

/// Undoes step `kind` (COPY, PAUSE_JOBS or DEACTIVATE_SOURCE_INTEGRATIONS) as the proto says.
pub async fn undo(ex: &mut Exec, kind: StepKind) -> Result<()> {
    let src = ex.run.source.clone();
    let dst = ex.run.destination.clone();
    let mut sets = Vec::new();
    let mut undone = true;
    match kind {
        StepKind::Copy => {
            if !ex.run.snapshot.is_empty() {
                let snapshot = ex.run.snapshot.clone();
                let c = ex.c.clone();
                let snap = ex.retrying("get snapshot", || c.remote.snapshot(&snapshot)).await?;
                let resources: Vec<String> =
                    snap.integrations.iter().map(|i| i.name.clone()).chain(snap.mappings.iter().map(|m| m.name.clone())).collect();
                if !resources.is_empty() {
                    let req = ipb::RestoreSnapshotRequest {
                        name: snapshot,
                        environment: dst.to_string(),
                        resources,
                        request_id: ex.request_id(kind, "undo-restore"),
                    };
                    sets.push(("restore", call!(ex, kind, "undo-restore", restore_snapshot, req)));
                }
            }
            let req = ipb::DisableForeignMappingsRequest {
                environment: dst.to_string(),
                request_id: ex.request_id(kind, "undo-disable-foreign"),
            };
            sets.push(("disable", call!(ex, kind, "undo-disable-foreign", disable_foreign, req)));
            ex.run.step_mut(kind).log.push("copied groups, entities and projects cannot be restored and stay".into());
        }
        StepKind::PauseJobs if ex.run.step(StepKind::ResumeJobs).state == StepState::Succeeded => {
            undone = false;
            ex.run.step_mut(kind).log.push("undo: step 9 already resumed the jobs".into());
        }
        StepKind::PauseJobs => {
            for (env, paused_op, op) in
                [(&src, "pause-source", "undo-resume-source"), (&dst, "pause-destination", "undo-resume-destination")]
            {
                let paused: ipb::ChangeSet = ex.output(kind, paused_op)?.unwrap_or_default();
                if !paused.changes.is_empty() {
                    let req = ipb::ResumeSyncJobsRequest {
                        environment: env.to_string(),
                        change_set: Some(paused),
                        sync_jobs: Vec::new(),
                        request_id: ex.request_id(kind, op),
                    };
                    sets.push(("resume", call!(ex, kind, op, resume, req)));
                }
            }
        }
        StepKind::DeactivateSourceIntegrations if ex.run.step(StepKind::ReactivateSourceIntegrations).state == StepState::Succeeded => {
            undone = false;
            ex.run.step_mut(kind).log.push("undo: step 8 already re-activated the integrations".into());
        }
        StepKind::DeactivateSourceIntegrations => {
            let deactivated: ipb::ChangeSet = ex.output(kind, "deactivate")?.unwrap_or_default();
            if !deactivated.changes.is_empty() {
                let req = ipb::ReactivateIntegrationsRequest {
                    environment: src.to_string(),
                    change_set: Some(deactivated),
                    integrations: Vec::new(),
                    request_id: ex.request_id(kind, "undo-reactivate"),
                };
                sets.push(("reactivate", call!(ex, kind, "undo-reactivate", reactivate, req)));
            }
        }
        _ => undone = false,
    }
    record_undo(ex, kind, &sets);
    let step = ex.run.step_mut(kind);
    step.outputs.insert("undone".into(), String::new());
    if undone {
        step.state = StepState::Undone;
    }
    Ok(())
}

/// The last act of an abort: lifts the fences step 2 put up.
pub async fn lift_fences(ex: &mut Exec) -> Result<()> {
    let kind = StepKind::DeactivateSourceIntegrations;
    let run = ex.run.name.to_string();
    let mut sets = Vec::new();
    for (env, fenced, op) in [
        (ex.run.source.clone(), "fence-source", "undo-unfence-source"),
        (ex.run.destination.clone(), "fence-destination", "undo-unfence-destination"),
    ] {
        if ex.has(kind, fenced) {
            let req = ipb::UnfenceEnvironmentRequest {
                environment: env.to_string(),
                holder: run.clone(),
                force: false,
                request_id: ex.request_id(kind, op),
            };
            sets.push(("unfence", call!(ex, kind, op, unfence, req)));
        }
    }
    if !sets.is_empty() && !ex.has(kind, "fences-lifted") {
        record_undo(ex, kind, &sets);
        ex.run.step_mut(kind).outputs.insert("fences-lifted".into(), String::new());
    }
    Ok(())
}

//! The refresh run: the refresh article's checklist as one definition. Its nine steps
//! (`StepKind`, with their titles), what each will change (`plan`), what each does and
//! undoes (here), and its report (`report`).
//!
//! Every call to another service is a journaled operation (`Cx::op`) named by step and
//! operation; a later step or an undo reads what an earlier one recorded (the ChangeSets
//! that say exactly what to re-activate or resume).

pub mod plan;
pub mod report;
mod undo;

use ferry_kit::db::now_micros;
use ferry_kit::idempotency::RequestKey;
use futures::future::BoxFuture;

use crate::domain::remote::{ChangeSet, CopyResult, RestorePoint, Snapshot};
use crate::domain::{
    Change, EnvName, LeaseDrain, Mode, Options, PlannedStep, RefreshRequest, RefreshRun, RefreshSpec, Run, Step, StepKind,
};
use crate::engine::locks::Lock;
use crate::engine::schedules::Scheduled;
use crate::engine::{Cx, Engine, Flow, Kind};
use crate::error::{Error, Result};
use crate::kinds::changes::{self, record};

/// The refresh run kind.
pub struct Refresh;

impl Kind for Refresh {
    const KIND: &'static str = "refresh";
    const COLLECTION: &'static str = "refreshRuns";
    const NOUN: &'static str = "refresh run";
    type Spec = RefreshSpec;
    type Detail = PlannedStep;

    fn locks(spec: &RefreshSpec) -> Vec<Lock> {
        vec![Lock::Environment(spec.source.clone()), Lock::Environment(spec.destination.clone())]
    }

    fn subjects(spec: &RefreshSpec) -> Vec<String> {
        vec![spec.source.to_string(), spec.destination.to_string()]
    }

    fn step_label(step: &Step<PlannedStep>) -> &'static str {
        step.detail.kind.label()
    }

    fn execute(cx: &mut Cx<Self>, index: usize) -> BoxFuture<'_, Result<Flow>> {
        Box::pin(execute(cx, StepKind::ALL[index]))
    }

    fn undo_next(cx: &mut Cx<Self>) -> BoxFuture<'_, Result<bool>> {
        Box::pin(undo::undo_next(cx))
    }

    fn derive(step: &mut Step<PlannedStep>, results: &[&str]) -> Result<()> {
        changes::derive(step, results)
    }
}

impl Scheduled for Refresh {
    type Request = RefreshRequest;
    const SCHEDULES: &'static str = "refreshSchedules";
    const ENVIRONMENT_FIELDS: &'static [&'static str] = &["source", "destination"];

    fn start_scheduled(engine: &Engine, r: RefreshRequest, actor: String, key: RequestKey) -> BoxFuture<'_, Result<String>> {
        Box::pin(async move {
            let run = start(engine, r.source, r.destination, r.options, None, actor, Some(key)).await?;
            Ok(crate::engine::name_of::<Refresh>(&run.id))
        })
    }
}

/// StartRefresh: plans again (the run's steps are that plan's) and creates the run; with
/// `plan_etag`, refuses when the plan is no longer the one reviewed.
pub async fn start(
    engine: &Engine,
    source: EnvName,
    destination: EnvName,
    options: Options,
    plan_etag: Option<String>,
    actor: String,
    key: Option<RequestKey>,
) -> Result<RefreshRun> {
    const METHOD: &str = "StartRefresh";
    if let Some(id) = engine.replayed::<String>(key.as_ref(), METHOD).await? {
        return engine.get::<Refresh>(&id).await;
    }
    let plan = plan::plan(engine, &source, &destination, options.clone()).await?;
    if let Some(etag) = plan_etag
        && etag != plan.etag
    {
        return Err(Error::Aborted(format!("the plan changed since it was reviewed (etag {etag}, now {}); plan again", plan.etag)));
    }
    let spec = RefreshSpec {
        source,
        destination,
        options,
        plan_etag: plan.etag,
        snapshot: String::new(),
        restore_point: String::new(),
        copied_groups: Vec::new(),
    };
    let run = Run::new(crate::domain::new_run_id(), spec, plan.steps, actor, now_micros());
    engine.start::<Refresh>(run, key, METHOD).await
}

/// Step 3's end: revokes the sync leases left in both environments and, with
/// [`LeaseDrain::Wait`], waits until no sync is in flight in either (each revoked lease's
/// holder told, or its ttl passed: at most the longest ttl, 10 minutes).
async fn drain_leases(cx: &mut Cx<Refresh>, n: i32, src: &EnvName, dst: &EnvName, drain: LeaseDrain) -> Result<()> {
    let ic = cx.engine.clients().integration.clone();
    let reason = format!("refresh {}", cx.name());
    for (env, op) in [(src, "revoke-leases-source"), (dst, "revoke-leases-destination")] {
        let revoked: Vec<String> = cx.op(n, op, |rid| ic.revoke_leases(env, reason.clone(), rid)).await?;
        if !revoked.is_empty() {
            cx.step_mut(n).log.push(format!("revoked {} sync lease(s) in {env}: {}", revoked.len(), revoked.join(", ")));
        }
    }
    if drain == LeaseDrain::Revoke {
        cx.step_mut(n).log.push("syncs in flight stop at their next lease renewal (lease_drain REVOKE: not waited for)".into());
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        let mut flying = cx.retrying("leases in flight", || ic.leases_in_flight(src)).await?;
        flying.extend(cx.retrying("leases in flight", || ic.leases_in_flight(dst)).await?);
        if flying.is_empty() {
            let waited = if said { format!(" after {:.1} s", started.elapsed().as_secs_f64()) } else { String::new() };
            cx.step_mut(n).log.push(format!("no sync in flight in {src} or {dst}{waited}"));
            return Ok(());
        }
        if !said {
            cx.step_mut(n).log.push(format!("waiting for {} sync(s) in flight to stop: {}", flying.len(), flying.join(", ")));
            cx.save().await?;
            said = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn execute(cx: &mut Cx<Refresh>, kind: StepKind) -> Result<Flow> {
    let n = kind.number();
    let run = cx.name();
    let RefreshSpec { source: src, destination: dst, options, .. } = cx.run.spec.clone();
    let c = cx.engine.clients().clone();
    let (ic, registry) = (&c.integration, &c.registry);
    match kind {
        StepKind::Check => {
            cx.retrying("check", || plan::check_environments(&c, &src, &dst)).await?;
            let step = cx.step_mut(n);
            if !step.log.iter().any(|l| l.starts_with("checked")) {
                step.log.push(format!("checked: {dst} is NON_PRODUCTION, differs from {src}; the run holds both"));
            }
            if options.require_approval && !cx.step(n).confirmed {
                return Ok(Flow::Wait(crate::domain::approval::APPROVAL));
            }
        }
        StepKind::DeactivateSourceIntegrations => {
            let reason = format!("refresh {src} -> {dst}");
            let a = cx.op(n, "fence-source", |rid| ic.fence(&src, run.clone(), reason.clone(), false, rid)).await?;
            let b = cx.op(n, "fence-destination", |rid| ic.fence(&dst, run.clone(), reason.clone(), false, rid)).await?;
            let d = cx.op(n, "deactivate", |rid| ic.deactivate(&src, options.suspend_credentials_instead, rid)).await?;
            record(cx, n, &[("fence", "fence-source", a), ("fence", "fence-destination", b), ("deactivate", "deactivate", d)]);
        }
        StepKind::PauseJobs => {
            let reason = format!("refresh {run}");
            let a = cx.op(n, "pause-source", |rid| ic.pause(&src, run.clone(), reason.clone(), rid)).await?;
            let b = cx.op(n, "pause-destination", |rid| ic.pause(&dst, run.clone(), reason.clone(), rid)).await?;
            record(cx, n, &[("pause", "pause-source", a), ("pause", "pause-destination", b)]);
            drain_leases(cx, n, &src, &dst, options.lease_drain).await?;
        }
        StepKind::SnapshotDestination => {
            let (id, description) = (format!("refresh-{}", cx.run.id), format!("taken by {run} before the refresh from {src}"));
            let snap: Snapshot = cx.op(n, "snapshot", |rid| ic.create_snapshot(&dst, id.clone(), description.clone(), rid)).await?;
            cx.run.spec.snapshot = snap.name.clone();
            let exists = |resource: &str| Change {
                resource: resource.to_owned(),
                field: "exists".into(),
                before: "false".into(),
                after: "true".into(),
            };
            let mut changes = vec![exists(&snap.name)];
            let mut log = vec![format!(
                "snapshot {}: {} integration(s), {} mapping(s), {} job(s), checksum {}",
                snap.name, snap.integration_count, snap.mapping_count, snap.sync_job_count, snap.checksum
            )];
            if options.mode == Mode::Managed {
                let point: RestorePoint = cx
                    .op(n, "restore-point", |rid| {
                        registry.create_restore_point(&dst, id.clone(), run.clone(), snap.name.clone(), description.clone(), rid)
                    })
                    .await?;
                cx.run.spec.restore_point = point.name.clone();
                changes.push(exists(&point.name));
                log.push(format!(
                    "restore point {}: {} group(s), {} entities, {} link(s), {} project(s), {} config item(s), kept until {}",
                    point.name,
                    point.groups,
                    point.entities,
                    point.links,
                    point.projects,
                    point.config_items,
                    ferry_kit::db::rfc3339(point.expire_time)
                ));
            }
            let step = cx.step_mut(n);
            step.changes = changes;
            step.log.extend(log);
        }
        StepKind::Copy => match options.mode {
            Mode::Managed => {
                let profile = options.profile.clone();
                let r: CopyResult = cx.op(n, "copy-registry", |rid| registry.copy_environment(&src, &dst, &profile, false, rid)).await?;
                let groups = cx.retrying("read the copied groups", || registry.groups(&dst)).await?;
                cx.run.spec.copied_groups = groups.into_iter().map(|g| (g.name, g.revision)).collect();
                let cs = cx.op(n, "copy-integrations", |rid| ic.copy_integrations(&src, &dst, rid)).await?;
                record(cx, n, &[("copy", "copy-integrations", cs)]);
                cx.step_mut(n).log.push(format!(
                    "registry: copied {} group(s), {} entities, {} link(s), {} project(s), {} config item(s); replaced {} group(s), {} entities, {} project(s)",
                    r.groups, r.entities, r.links, r.projects, r.config_items, r.replaced_groups, r.replaced_entities, r.replaced_projects
                ));
                for k in &r.by_kind {
                    cx.step_mut(n).log.push(format!(
                        "profile: {}: copied {} ({} masked), excluded {}, kept {}",
                        crate::domain::remote::kind_label(k.kind),
                        k.copied,
                        k.masked,
                        k.excluded,
                        k.preserved
                    ));
                }
            }
            Mode::External => {
                if !cx.step(n).confirmed {
                    return Ok(Flow::Wait("external refresh"));
                }
                let reason = format!("external refresh from {src}");
                let cs = cx.op(n, "fence-resources", |rid| ic.fence(&dst, run.clone(), reason.clone(), true, rid)).await?;
                record(cx, n, &[("fence", "fence-resources", cs)]);
            }
        },
        StepKind::DisableSourceMappings => {
            let cs = cx.op(n, "disable-foreign", |rid| ic.disable_foreign(&dst, rid)).await?;
            record(cx, n, &[("disable", "disable-foreign", cs)]);
        }
        StepKind::RestoreDestinationMappings => {
            let snapshot = cx.run.spec.snapshot.clone();
            let snap = cx.retrying("get snapshot", || ic.snapshot(&snapshot)).await?;
            let provisioned = cx.step(n).detail.provisioned_mappings.clone();
            let resources: Vec<String> =
                snap.integrations.iter().cloned().chain(snap.mappings.iter().filter(|m| !provisioned.contains(m)).cloned()).collect();
            let mut sets = Vec::new();
            if !resources.is_empty() {
                sets.push((
                    "restore",
                    "restore",
                    cx.op(n, "restore", |rid| ic.restore_snapshot(&snapshot, &dst, resources.clone(), rid)).await?,
                ));
            }
            if !provisioned.is_empty() {
                sets.push((
                    "activate provisioned",
                    "activate-provisioned",
                    cx.op(n, "activate-provisioned", |rid| ic.activate_provisioned(&dst, rid)).await?,
                ));
            }
            record(cx, n, &sets);
            if sets.is_empty() {
                cx.step_mut(n).log.push("nothing to restore".into());
            }
        }
        StepKind::ReactivateSourceIntegrations => {
            let deactivated: ChangeSet = cx.recorded(StepKind::DeactivateSourceIntegrations.number(), "deactivate")?.unwrap_or_default();
            if deactivated.changes.is_empty() {
                cx.step_mut(n).log.push("nothing was deactivated".into());
            } else {
                let cs = cx.op(n, "reactivate", |rid| ic.reactivate(&src, &deactivated, rid)).await?;
                record(cx, n, &[("reactivate", "reactivate", cs)]);
            }
        }
        StepKind::ResumeJobs => {
            let mut sets = Vec::new();
            for (env, paused_op, op) in [(&src, "pause-source", "resume-source"), (&dst, "pause-destination", "resume-destination")] {
                let paused: ChangeSet = cx.recorded(StepKind::PauseJobs.number(), paused_op)?.unwrap_or_default();
                if !paused.changes.is_empty() {
                    sets.push(("resume", op, cx.op(n, op, |rid| ic.resume(env, &paused, rid)).await?));
                }
            }
            for (env, op) in [(&src, "unfence-source"), (&dst, "unfence-destination")] {
                sets.push(("unfence", op, cx.op(n, op, |rid| ic.unfence(env, run.clone(), rid)).await?));
            }
            record(cx, n, &sets);
        }
    }
    Ok(Flow::Done)
}

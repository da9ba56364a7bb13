//! Planning a rollback: the checks that refuse one (also made again by step 1), what
//! comes back and what is discarded, the six steps' summaries, and start.

use std::collections::{BTreeMap, BTreeSet};

use ferry_kit::db::now_micros;
use ferry_kit::idempotency::RequestKey;

use super::Rollback;
use crate::domain::remote::{RestorePoint, Snapshot};
use crate::domain::{
    ContentCounts, PlannedRollbackStep, RefreshRun, RollbackPlan, RollbackRun, RollbackSpec, RollbackStepKind, Run, RunState,
};
use crate::engine::locks::Lock;
use crate::engine::{Engine, ListFilter, name_of};
use crate::error::{Error, Result};
use crate::kinds::Refresh;

/// Refuses rolling `run` back now: not SUCCEEDED, window closed, nothing kept to restore,
/// a later refresh of its destination, already rolled back.
pub(super) async fn check(engine: &Engine, run: &RefreshRun, now: i64) -> Result<i64> {
    let name = name_of::<Refresh>(&run.id);
    if run.state != RunState::Succeeded {
        return Err(Error::unmet(
            "REFRESH_NOT_SUCCEEDED",
            &name,
            format!("{name} did not succeed: only a SUCCEEDED refresh is rolled back (abort a run that has not ended)"),
        ));
    }
    let ended = run.end_time.unwrap_or(run.create_time);
    let window = i64::try_from(engine.settings().rollback_window.as_micros()).unwrap_or(i64::MAX);
    let window_end = ended.saturating_add(window);
    if now >= window_end {
        return Err(Error::unmet(
            "ROLLBACK_WINDOW_PASSED",
            &name,
            format!("the rollback window of {name} closed at {}", ferry_kit::db::rfc3339(window_end)),
        ));
    }
    if run.spec.restore_point.is_empty() {
        return Err(Error::unmet(
            "RESTORE_POINT_MISSING",
            &name,
            format!("{name} kept no restore point (an EXTERNAL refresh): there is nothing to roll back to"),
        ));
    }
    let dst = run.spec.destination.to_string();
    let filter = ListFilter { states: vec![RunState::Succeeded], subject: Some(dst.clone()), scope: None };
    if let Some(later) =
        engine.list::<Refresh>(&filter, None, 1).await?.into_iter().find(|r| r.id != run.id && r.create_time > run.create_time)
    {
        let later = name_of::<Refresh>(&later.id);
        return Err(Error::unmet("REFRESHED_SINCE", &name, format!("{later} refreshed {dst} after {name}; roll that one back first")));
    }
    let filter = ListFilter { states: vec![RunState::Succeeded], subject: Some(name.clone()), scope: None };
    if let Some(done) = engine.list::<Rollback>(&filter, None, 1).await?.first() {
        let done = name_of::<Rollback>(&done.id);
        return Err(Error::unmet("ALREADY_ROLLED_BACK", &name, format!("{done} already rolled {name} back")));
    }
    Ok(window_end)
}

/// The restore point `name`, or FAILED_PRECONDITION RESTORE_POINT_MISSING when it is gone
/// or expired.
pub(super) async fn kept_point(engine: &Engine, name: &str, now: i64) -> Result<RestorePoint> {
    let gone = |why: String| Error::unmet("RESTORE_POINT_MISSING", name, format!("{name} {why}: there is nothing to roll back to"));
    match engine.clients().registry.restore_point(name).await {
        Ok(p) if p.expire_time <= now => Err(gone(format!("expired at {}", ferry_kit::db::rfc3339(p.expire_time)))),
        Ok(p) => Ok(p),
        Err(e) if e.info().code == tonic::Code::NotFound => Err(gone("no longer exists (deleted, or pruned after it expired)".into())),
        Err(e) => Err(e),
    }
}

/// The snapshot `name`, or FAILED_PRECONDITION SNAPSHOT_MISSING when it is gone.
pub(super) async fn kept_snapshot(engine: &Engine, name: &str) -> Result<Snapshot> {
    match engine.clients().integration.snapshot(name).await {
        Err(e) if e.info().code == tonic::Code::NotFound => Err(Error::unmet(
            "SNAPSHOT_MISSING",
            name,
            format!("{name} no longer exists (deleted, or pruned after it expired): the integrations cannot be restored"),
        )),
        other => other,
    }
}

/// PlanRollback: what rolling refresh run `id` back will do, as things are now.
pub async fn plan(engine: &Engine, id: &str, require_approval: bool) -> Result<RollbackPlan> {
    let run = engine.get::<Refresh>(id).await?;
    let now = now_micros();
    let window_end = check(engine, &run, now).await?;
    let dst = run.spec.destination.clone();
    engine.check_free(&[Lock::Environment(dst.clone())]).await?;
    let point = kept_point(engine, &run.spec.restore_point, now).await?;
    let snap = kept_snapshot(engine, &run.spec.snapshot).await?;
    let c = engine.clients();
    let groups = c.registry.groups(&dst).await?;
    let integrations = c.integration.integrations(&dst).await?;
    let mappings = c.integration.mappings(&dst).await?;
    let jobs = c.integration.jobs(&dst).await?;
    let put_back = ContentCounts {
        groups: point.groups,
        entities: point.entities,
        links: point.links,
        projects: point.projects,
        config_items: point.config_items,
        integrations: snap.integration_count,
        mappings: snap.mapping_count,
        sync_jobs: snap.sync_job_count,
    };
    let discarded = ContentCounts {
        groups: groups.len() as i64,
        entities: groups.iter().map(|g| g.entity_count).sum(),
        projects: c.registry.project_count(&dst).await?,
        integrations: integrations.len() as i64,
        mappings: mappings.len() as i64,
        sync_jobs: jobs.len() as i64,
        ..Default::default()
    };
    // Groups changed since the refresh, by revision against what the copy left.
    let copied: BTreeMap<&str, i64> = run.spec.copied_groups.iter().map(|(g, r)| (g.as_str(), *r)).collect();
    let (mut changed, mut created) = (Vec::new(), Vec::new());
    if !copied.is_empty() {
        for g in &groups {
            match copied.get(g.name.as_str()) {
                Some(r) if *r != g.revision => changed.push(g.name.clone()),
                Some(_) => {}
                None => created.push(g.name.clone()),
            }
        }
    }
    let now_groups: BTreeSet<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let deleted: Vec<String> = copied.keys().filter(|g| !now_groups.contains(*g)).map(|g| (*g).to_owned()).collect();
    let in_snapshot: BTreeSet<&str> = snap.integrations.iter().chain(&snap.mappings).map(String::as_str).collect();
    let not_in_snapshot: Vec<String> = integrations
        .iter()
        .map(|i| &i.name)
        .chain(mappings.iter().map(|m| &m.name))
        .filter(|n| !in_snapshot.contains(n.as_str()))
        .cloned()
        .collect();
    let mut plan = RollbackPlan {
        refresh_run: run.id.clone(),
        source: run.spec.source.clone(),
        destination: dst,
        require_approval,
        restore_point: point.name.clone(),
        snapshot: snap.name.clone(),
        put_back,
        discarded,
        changed_groups: changed,
        created_groups: created,
        deleted_groups: deleted,
        not_in_snapshot,
        window_end,
        steps: Vec::new(),
        etag: String::new(),
        plan_time: now,
    };
    plan.steps = steps(&plan, !run.spec.copied_groups.is_empty());
    plan.etag = plan.compute_etag();
    Ok(plan)
}

fn steps(p: &RollbackPlan, revisions_known: bool) -> Vec<PlannedRollbackStep> {
    let dst = p.destination.to_string();
    let (b, d) = (&p.put_back, &p.discarded);
    let mut steps: Vec<PlannedRollbackStep> =
        RollbackStepKind::ALL.iter().map(|k| PlannedRollbackStep { kind: *k, summary: Vec::new(), requires_confirmation: false }).collect();
    let s = &mut steps[0];
    s.summary.push(format!(
        "refreshRuns/{} SUCCEEDED and can be rolled back until {}; {dst} is free and will be locked by the run; {} is not touched",
        p.refresh_run,
        ferry_kit::db::rfc3339(p.window_end),
        p.source
    ));
    if p.require_approval {
        s.summary.push("waits for an approval (ConfirmRollbackStep) before anything changes".into());
        s.requires_confirmation = true;
    }
    steps[1].summary.push(format!("fence {dst} (no sync is authorised in it until step 6) and pause its running external jobs"));
    steps[2].summary.push(format!(
        "keep {dst} as it is now: {} group(s) ({} entity memberships), {} project(s), {} integration(s), {} mapping(s), {} job(s), \
         so an abort of the rollback gives it back",
        d.groups, d.entities, d.projects, d.integrations, d.mappings, d.sync_jobs
    ));
    let s = &mut steps[3];
    s.summary.push(format!(
        "restore {} group(s), {} entities, {} link(s), {} project(s), {} config item(s) from {}",
        b.groups, b.entities, b.links, b.projects, b.config_items, p.restore_point
    ));
    if !revisions_known {
        s.summary.push("the refresh recorded no group revisions: changes made since it are not named".into());
    }
    for (what, groups) in
        [("changed since the refresh", &p.changed_groups), ("created since", &p.created_groups), ("deleted since", &p.deleted_groups)]
    {
        if !groups.is_empty() {
            s.summary.push(format!("{} group(s) {what} are discarded: {}", groups.len(), groups.join(", ")));
        }
    }
    let s = &mut steps[4];
    s.summary.push(format!("restore {} integration(s) and {} mapping(s) from {}", b.integrations, b.mappings, p.snapshot));
    s.summary.push("disable the copied production mappings again (they stay denied)".into());
    if !p.not_in_snapshot.is_empty() {
        s.summary.push(format!("{} integration(s) and mapping(s) not in the snapshot stay as they are", p.not_in_snapshot.len()));
    }
    steps[5].summary.push("resume exactly the jobs step 2 pauses, then lift the fence".into());
    steps
}

/// StartRollback: plans again and creates the run (the destination's lock is taken in the
/// same transaction); with `plan_etag`, refuses when the plan is no longer the one reviewed.
pub async fn start(
    engine: &Engine,
    refresh: &str,
    require_approval: bool,
    plan_etag: Option<String>,
    actor: String,
    key: Option<RequestKey>,
) -> Result<RollbackRun> {
    const METHOD: &str = "StartRollback";
    if let Some(id) = engine.replayed::<String>(key.as_ref(), METHOD).await? {
        return engine.get::<Rollback>(&id).await;
    }
    let plan = plan(engine, refresh, require_approval).await?;
    if let Some(etag) = plan_etag
        && etag != plan.etag
    {
        return Err(Error::Aborted(format!("the plan changed since it was reviewed (etag {etag}, now {}); plan again", plan.etag)));
    }
    let steps = plan.steps.clone();
    let spec = RollbackSpec { plan, kept_snapshot: String::new(), kept_restore_point: String::new() };
    let run = Run::new(crate::domain::new_run_id(), spec, steps, actor, now_micros());
    engine.start::<Rollback>(run, key, METHOD).await
}

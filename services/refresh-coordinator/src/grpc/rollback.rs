//! Rollback runs at the proto edge: parsing, scope checks and conversion (the
//! `RefreshService` impl in `handlers` delegates here).

use ferry_kit::auth::Principal;
use ferry_kit::db::timestamp;
use ferry_kit::status::Violations;
use ferry_proto::refresh::v1 as pb;
use tonic::codegen::BoxStream;
use tonic::{Request, Status};

use super::convert::{change_pb, common, error_pb, request_key, step_message};
use super::handlers::{RefreshApi, Scoped, caller, confirmer, done, id_of, scope};
use crate::domain::{AbortRequest, ContentCounts, EnvName, PlannedRollbackStep, RollbackPlan, RollbackRun, Step, run_id};
use crate::engine::{Kind, name_of};
use crate::kinds::{Refresh, Rollback, rollback};

impl Scoped for RollbackRun {
    fn environments(&self) -> Vec<&EnvName> {
        vec![&self.spec.plan.destination]
    }
}

fn counts_pb(c: &ContentCounts) -> pb::ContentCounts {
    pb::ContentCounts {
        groups: c.groups,
        entities: c.entities,
        links: c.links,
        projects: c.projects,
        config_items: c.config_items,
        integrations: c.integrations,
        mappings: c.mappings,
        sync_jobs: c.sync_jobs,
    }
}

fn planned_pb(s: &PlannedRollbackStep) -> pb::PlannedRollbackStep {
    pb::PlannedRollbackStep {
        number: s.kind.number(),
        kind: s.kind.number(),
        title: s.kind.title().into(),
        summary: s.summary.clone(),
        requires_confirmation: s.requires_confirmation,
    }
}

fn options_pb(require_approval: bool) -> pb::RollbackOptions {
    pb::RollbackOptions { require_approval }
}

pub fn plan_pb(p: &RollbackPlan) -> pb::RollbackPlan {
    pb::RollbackPlan {
        refresh_run: name_of::<Refresh>(&p.refresh_run),
        destination: p.destination.to_string(),
        source: p.source.to_string(),
        options: Some(options_pb(p.require_approval)),
        restore_point: p.restore_point.clone(),
        snapshot: p.snapshot.clone(),
        put_back: Some(counts_pb(&p.put_back)),
        discarded: Some(counts_pb(&p.discarded)),
        changed_groups: p.changed_groups.clone(),
        created_groups: p.created_groups.clone(),
        deleted_groups: p.deleted_groups.clone(),
        not_in_snapshot: p.not_in_snapshot.clone(),
        window_end_time: Some(timestamp(p.window_end)),
        steps: p.steps.iter().map(planned_pb).collect(),
        etag: p.etag.clone(),
        plan_time: Some(timestamp(p.plan_time)),
    }
}

fn step_pb(s: &Step<PlannedRollbackStep>) -> pb::RollbackStep {
    step_message!(pb::RollbackStep, s, kind: s.detail.kind.number(), title: s.detail.kind.title().into(),
        plan: Some(planned_pb(&s.detail)),
        changes: s.changes.iter().map(change_pb).collect(),
        undo_changes: s.undo_changes.iter().map(change_pb).collect(),
    )
}

pub fn run_pb(r: &RollbackRun) -> pb::RollbackRun {
    let c = common::<Rollback>(r, |s| s.detail.kind.title().to_owned());
    let p = &r.spec.plan;
    pb::RollbackRun {
        name: c.name,
        refresh_run: name_of::<Refresh>(&p.refresh_run),
        destination: p.destination.to_string(),
        source: p.source.to_string(),
        options: Some(options_pb(p.require_approval)),
        state: c.state,
        steps: r.steps.iter().map(step_pb).collect(),
        current_step: c.current_step,
        progress: Some(c.progress),
        restore_point: p.restore_point.clone(),
        snapshot: p.snapshot.clone(),
        kept_restore_point: r.spec.kept_restore_point.clone(),
        kept_snapshot: r.spec.kept_snapshot.clone(),
        plan: Some(plan_pb(p)),
        error: c.error,
        created_by: r.created_by.clone(),
        abort_reason: c.abort_reason,
        aborted_by: c.aborted_by,
        create_time: c.create_time,
        start_time: c.start_time,
        end_time: c.end_time,
        interruptions: c.interruptions,
    }
}

/// The refresh run named in `refresh_run`, after checking the caller may see it.
async fn refresh_of(api: &RefreshApi, p: &Principal, name: &str) -> Result<String, Status> {
    let mut v = Violations::new();
    let id = id_of::<Refresh>(&mut v, "refresh_run", name);
    let id = done(v, id)?;
    api.visible::<Refresh>(p, &id).await?;
    Ok(id)
}

pub(super) async fn plan(api: &RefreshApi, request: Request<pb::PlanRollbackRequest>) -> Result<pb::RollbackPlan, Status> {
    let p = Principal::of(&request);
    let r = request.into_inner();
    let id = refresh_of(api, &p, &r.refresh_run).await?;
    let require_approval = r.options.is_some_and(|o| o.require_approval);
    Ok(plan_pb(&rollback::plan(api.engine(), &id, require_approval).await?))
}

pub(super) async fn start(api: &RefreshApi, request: Request<pb::StartRollbackRequest>) -> Result<pb::RollbackRun, Status> {
    let p = Principal::of(&request);
    let r = request.into_inner();
    let mut v = Violations::new();
    let key = request_key(&mut v, "StartRollback", &r, &r.request_id);
    let id = id_of::<Refresh>(&mut v, "refresh_run", &r.refresh_run);
    let (id, key) = done(v, id.zip(key))?;
    api.visible::<Refresh>(&p, &id).await?;
    let require_approval = r.options.is_some_and(|o| o.require_approval);
    let etag = (!r.plan_etag.is_empty()).then(|| r.plan_etag.clone());
    Ok(run_pb(&rollback::start(api.engine(), &id, require_approval, etag, caller(&p), key).await?))
}

/// The id of the rollback run named in `name`.
fn rollback_id(name: &str) -> Result<String, Status> {
    let mut v = Violations::new();
    let id = id_of::<Rollback>(&mut v, "name", name);
    done(v, id)
}

pub(super) async fn get(api: &RefreshApi, request: Request<pb::GetRollbackRunRequest>) -> Result<pb::RollbackRun, Status> {
    let p = Principal::of(&request);
    let id = rollback_id(&request.get_ref().name)?;
    Ok(run_pb(&api.visible::<Rollback>(&p, &id).await?))
}

pub(super) async fn list(api: &RefreshApi, request: Request<pb::ListRollbackRunsRequest>) -> Result<pb::ListRollbackRunsResponse, Status> {
    let p = Principal::of(&request);
    let r = request.into_inner();
    let mut v = Violations::new();
    let environment = if r.environment.is_empty() { None } else { v.check("environment", EnvName::parse(&r.environment)) };
    let refresh = if r.refresh_run.is_empty() { None } else { v.check("refresh_run", run_id(Refresh::COLLECTION, &r.refresh_run, "")) };
    if environment.is_some() && refresh.is_some() {
        v.add("refresh_run", "give environment or refresh_run, not both");
    }
    if let Some(env) = &environment {
        scope(&p, &[env])?;
    }
    let scope_key = format!("rollbackRuns:{:?}:{}:{}", r.states, r.environment, r.refresh_run);
    let subject = environment.map(|e| e.to_string()).or_else(|| refresh.map(|id| name_of::<Refresh>(&id)));
    let (runs, next) = api.page::<Rollback>(&p, v, r.page_size, &r.states, subject, scope_key, &r.page_token).await?;
    Ok(pb::ListRollbackRunsResponse { rollback_runs: runs.iter().map(run_pb).collect(), next_page_token: next })
}

pub(super) async fn watch(api: &RefreshApi, request: Request<pb::WatchRollbackRunRequest>) -> Result<BoxStream<pb::RollbackRun>, Status> {
    let p = Principal::of(&request);
    let id = rollback_id(&request.get_ref().name)?;
    api.watch::<Rollback, _>(&p, &id, run_pb).await
}

pub(super) async fn confirm(api: &RefreshApi, request: Request<pb::ConfirmRollbackStepRequest>) -> Result<pb::RollbackRun, Status> {
    let p = Principal::of(&request);
    let r = request.into_inner();
    let mut v = Violations::new();
    let key = request_key(&mut v, "ConfirmRollbackStep", &r, &r.request_id);
    let id = id_of::<Rollback>(&mut v, "name", &r.name);
    if !(1..=6).contains(&r.step) {
        v.add("step", "must be a step number, 1-6");
    }
    let who = confirmer(&mut v, &p, &r.actor, api.engine().settings().four_eyes);
    let ((id, key), who) = done(v, id.zip(key).zip(who))?;
    api.visible::<Rollback>(&p, &id).await?;
    Ok(run_pb(&api.engine().confirm::<Rollback>(&id, r.step, who, r.comment.clone(), key, "ConfirmRollbackStep").await?))
}

pub(super) async fn retry(api: &RefreshApi, request: Request<pb::RetryRollbackRunRequest>) -> Result<pb::RollbackRun, Status> {
    let p = Principal::of(&request);
    let r = request.into_inner();
    let mut v = Violations::new();
    let key = request_key(&mut v, "RetryRollbackRun", &r, &r.request_id);
    let id = id_of::<Rollback>(&mut v, "name", &r.name);
    let (id, key) = done(v, id.zip(key))?;
    api.visible::<Rollback>(&p, &id).await?;
    Ok(run_pb(&api.engine().retry::<Rollback>(&id, key, "RetryRollbackRun").await?))
}

pub(super) async fn abort(api: &RefreshApi, request: Request<pb::AbortRollbackRunRequest>) -> Result<pb::RollbackRun, Status> {
    let p = Principal::of(&request);
    let r = request.into_inner();
    let mut v = Violations::new();
    let key = request_key(&mut v, "AbortRollbackRun", &r, &r.request_id);
    let id = id_of::<Rollback>(&mut v, "name", &r.name);
    let (id, key) = done(v, id.zip(key))?;
    api.visible::<Rollback>(&p, &id).await?;
    let abort = AbortRequest { reason: r.reason.clone(), by: caller(&p), proceed_with_changed: false };
    Ok(run_pb(&api.engine().abort::<Rollback>(&id, abort, key, "AbortRollbackRun").await?))
}

pub(super) async fn report(api: &RefreshApi, request: Request<pb::GetRollbackReportRequest>) -> Result<pb::RollbackReport, Status> {
    let p = Principal::of(&request);
    let mut v = Violations::new();
    let id = v.check("name", run_id(Rollback::COLLECTION, &request.get_ref().name, "/report"));
    let id = done(v, id)?;
    let run = api.visible::<Rollback>(&p, &id).await?;
    let audit = api.engine().audit_of::<Rollback>(&id).await?;
    Ok(pb::RollbackReport {
        name: format!("{}/report", name_of::<Rollback>(&id)),
        markdown: rollback::markdown(&run, &audit),
        generate_time: Some(timestamp(ferry_kit::db::now_micros())),
    })
}

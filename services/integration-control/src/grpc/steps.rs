//! Snapshots, the refresh coordinator's bulk steps and environment fences at the edge:
//! parse, check the caller's environment scope, call the service layer, convert back.

use ferry_kit::auth::Principal;
use ferry_kit::status::Violations;
use ferry_proto::integration::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::{self as c, done};
use super::handlers::{scope, text, undo};
use crate::domain::{self as d, AnyName, EnvName, IntegrationName, JobName, MappingName, ResourceId, ResourceType, SnapshotName};
use crate::service::Control;

pub async fn create_snapshot(control: &Control, req: Request<pb::CreateSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "CreateSnapshot", &r, &r.request_id);
    let env = v.check("parent", EnvName::parse(&r.parent));
    let id = if r.snapshot_id.is_empty() { Some(None) } else { v.check("snapshot_id", ResourceId::parse(&r.snapshot_id)).map(Some) };
    let description = text(&mut v, "description", &r.description);
    let (key, env, id, description) = done(v, || Some((key?, env?, id?, description?)))?;
    scope(&p, &env)?;
    Ok(Response::new(c::snapshot(control.create_snapshot(key, env, id, description, c::actor(&p)).await?)))
}

pub async fn get_snapshot(control: &Control, req: Request<pb::GetSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let name = v.check("name", SnapshotName::parse(&r.name));
    let full = match pb::SnapshotView::try_from(r.view) {
        Ok(view) => Some(view == pb::SnapshotView::Full),
        Err(_) => {
            v.add("view", format!("unknown view {}", r.view));
            None
        }
    };
    let (name, full) = done(v, || Some((name?, full?)))?;
    scope(&p, &name.env)?;
    Ok(Response::new(c::snapshot(control.get_snapshot(&name, full).await?)))
}

pub async fn list_snapshots(
    control: &Control,
    req: Request<pb::ListSnapshotsRequest>,
) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let env = v.check("parent", EnvName::parse(&r.parent));
    let list = format!("snapshots:{}", r.parent);
    let size = c::page_size(&mut v, r.page_size);
    let before = c::page_token::<(i64, String)>(&mut v, &list, &r.page_token);
    let (env, size, before) = done(v, || Some((env?, size?, before?)))?;
    scope(&p, &env)?;
    let page = control.list_snapshots(&env, before, size).await?;
    Ok(Response::new(pb::ListSnapshotsResponse {
        next_page_token: c::next_token(&list, &page.next),
        snapshots: page.items.into_iter().map(c::snapshot).collect(),
    }))
}

pub async fn restore_snapshot(control: &Control, req: Request<pb::RestoreSnapshotRequest>) -> Result<Response<pb::ChangeSet>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "RestoreSnapshot", &r, &r.request_id);
    let name = v.check("name", SnapshotName::parse(&r.name));
    let env = v.check("environment", EnvName::parse(&r.environment));
    let mut resources = Some(Vec::new());
    for (i, s) in r.resources.iter().enumerate() {
        match (AnyName::parse(s), resources.as_mut()) {
            (Ok(n), Some(out)) => out.push(n),
            (Ok(_), None) => {}
            (Err(e), _) => {
                v.add(format!("resources[{i}]"), e);
                resources = None;
            }
        }
    }
    let (key, name, env, resources) = done(v, || Some((key?, name?, env?, resources?)))?;
    scope(&p, &name.env)?;
    scope(&p, &env)?;
    Ok(Response::new(c::change_set(control.restore_snapshot(key, name, env, resources).await?)))
}

pub async fn deactivate_integrations(
    control: &Control,
    req: Request<pb::DeactivateIntegrationsRequest>,
) -> Result<Response<pb::ChangeSet>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "DeactivateIntegrations", &r, &r.request_id);
    let env = v.check("environment", EnvName::parse(&r.environment));
    let (key, env) = done(v, || Some((key?, env?)))?;
    scope(&p, &env)?;
    Ok(Response::new(c::change_set(control.deactivate_integrations(key, env, r.suspend_credentials_instead).await?)))
}

pub async fn reactivate_integrations(
    control: &Control,
    req: Request<pb::ReactivateIntegrationsRequest>,
) -> Result<Response<pb::ChangeSet>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "ReactivateIntegrations", &r, &r.request_id);
    let env = v.check("environment", EnvName::parse(&r.environment));
    let what = undo::<IntegrationName>(&mut v, env.as_ref(), &r.change_set, &r.integrations, "integrations", ResourceType::Integration);
    let (key, env, what) = done(v, || Some((key?, env?, what?)))?;
    scope(&p, &env)?;
    Ok(Response::new(c::change_set(control.reactivate_integrations(key, env, what).await?)))
}

pub async fn pause_sync_jobs(control: &Control, req: Request<pb::PauseSyncJobsRequest>) -> Result<Response<pb::ChangeSet>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "PauseSyncJobs", &r, &r.request_id);
    let env = v.check("environment", EnvName::parse(&r.environment));
    let actor = text(&mut v, "actor", &r.actor);
    let reason = text(&mut v, "reason", &r.reason);
    let (key, env, actor, reason) = done(v, || Some((key?, env?, actor?, reason?)))?;
    scope(&p, &env)?;
    let actor = if actor.is_empty() { c::actor(&p) } else { actor };
    Ok(Response::new(c::change_set(control.pause_jobs(key, env, actor, reason).await?)))
}

pub async fn resume_sync_jobs(control: &Control, req: Request<pb::ResumeSyncJobsRequest>) -> Result<Response<pb::ChangeSet>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "ResumeSyncJobs", &r, &r.request_id);
    let env = v.check("environment", EnvName::parse(&r.environment));
    let what = undo::<JobName>(&mut v, env.as_ref(), &r.change_set, &r.sync_jobs, "sync_jobs", ResourceType::SyncJob);
    let (key, env, what) = done(v, || Some((key?, env?, what?)))?;
    scope(&p, &env)?;
    Ok(Response::new(c::change_set(control.resume_jobs(key, env, what).await?)))
}

pub async fn copy_integrations(control: &Control, req: Request<pb::CopyIntegrationsRequest>) -> Result<Response<pb::ChangeSet>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "CopyIntegrations", &r, &r.request_id);
    let source = v.check("source", EnvName::parse(&r.source));
    let dest = v.check("destination", EnvName::parse(&r.destination));
    if source.is_some() && source == dest {
        v.add("destination", "must differ from source");
    }
    let (key, source, dest) = done(v, || Some((key?, source?, dest?)))?;
    scope(&p, &source)?;
    scope(&p, &dest)?;
    Ok(Response::new(c::change_set(control.copy_integrations(key, source, dest).await?)))
}

pub async fn disable_foreign_mappings(
    control: &Control,
    req: Request<pb::DisableForeignMappingsRequest>,
) -> Result<Response<pb::ChangeSet>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "DisableForeignMappings", &r, &r.request_id);
    let env = v.check("environment", EnvName::parse(&r.environment));
    let (key, env) = done(v, || Some((key?, env?)))?;
    scope(&p, &env)?;
    Ok(Response::new(c::change_set(control.disable_foreign_mappings(key, env).await?)))
}

pub async fn activate_provisioned_mappings(
    control: &Control,
    req: Request<pb::ActivateProvisionedMappingsRequest>,
) -> Result<Response<pb::ChangeSet>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "ActivateProvisionedMappings", &r, &r.request_id);
    let env = v.check("environment", EnvName::parse(&r.environment));
    let mut names = Vec::new();
    for (i, s) in r.mappings.iter().enumerate() {
        match MappingName::parse(s) {
            Ok(n) if env.as_ref().is_some_and(|e| e != n.env()) => v.add(format!("mappings[{i}]"), "is a mapping of another environment"),
            Ok(n) => names.push(n),
            Err(e) => v.add(format!("mappings[{i}]"), e),
        }
    }
    let (key, env) = done(v, || Some((key?, env?)))?;
    scope(&p, &env)?;
    Ok(Response::new(c::change_set(control.activate_provisioned_mappings(key, env, names).await?)))
}

pub async fn fence_environment(control: &Control, req: Request<pb::FenceEnvironmentRequest>) -> Result<Response<pb::ChangeSet>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "FenceEnvironment", &r, &r.request_id);
    let env = v.check("environment", EnvName::parse(&r.environment));
    let holder = v.check(
        "holder",
        d::text(&r.holder).and_then(|h| if h.is_empty() { Err("is required (a refresh run's name)".into()) } else { Ok(h) }),
    );
    let reason = text(&mut v, "reason", &r.reason);
    let (key, env, holder, reason) = done(v, || Some((key?, env?, holder?, reason?)))?;
    scope(&p, &env)?;
    Ok(Response::new(c::change_set(control.fence_environment(key, env, holder, reason, r.include_resources).await?)))
}

pub async fn unfence_environment(
    control: &Control,
    req: Request<pb::UnfenceEnvironmentRequest>,
) -> Result<Response<pb::ChangeSet>, Status> {
    let p = Principal::of(&req);
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "UnfenceEnvironment", &r, &r.request_id);
    let env = v.check("environment", EnvName::parse(&r.environment));
    let holder = text(&mut v, "holder", &r.holder);
    let (key, env, holder) = done(v, || Some((key?, env?, holder?)))?;
    scope(&p, &env)?;
    Ok(Response::new(c::change_set(control.unfence_environment(key, env, holder, r.force).await?)))
}

pub async fn get_environment_fence(
    control: &Control,
    req: Request<pb::GetEnvironmentFenceRequest>,
) -> Result<Response<pb::EnvironmentFence>, Status> {
    let p = Principal::of(&req);
    let mut v = Violations::new();
    let env = v.check("name", d::parse_fence_name(&req.get_ref().name));
    let env = done(v, || env)?;
    scope(&p, &env)?;
    let f = control.get_fence(&env).await?;
    Ok(Response::new(c::fence(&env, f)))
}

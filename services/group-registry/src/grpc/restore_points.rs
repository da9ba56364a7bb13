//! Restore points at the proto edge (the `RegistryService` impl in `handlers` delegates
//! here).

use ferry_kit::auth::Principal;
use ferry_kit::status::Violations;
use ferry_proto::registry::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::{self as c, done, ts};
use super::handlers::{RegistryApi, scope};
use crate::domain::{self as d, EnvName, NewRestorePoint, ResourceId, RestorePointName};

fn text(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    v.check(field, d::note(s))
}

pub fn restore_point(p: d::RestorePoint) -> pb::RestorePoint {
    pb::RestorePoint {
        name: p.name.to_string(),
        run: p.run,
        integration_snapshot: p.integration_snapshot,
        description: p.description,
        counts: Some(pb::RestorePointCounts {
            groups: p.counts.groups,
            entities: p.counts.entities,
            links: p.counts.links,
            projects: p.counts.projects,
            config_items: p.counts.config_items,
        }),
        size_bytes: p.size_bytes,
        create_time: ts(p.created_at),
        expire_time: ts(p.expire_at),
        restore_time: p.restored_at.and_then(ts),
    }
}

impl RegistryApi {
    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, restore_point = %req.get_ref().restore_point_id))]
    pub(super) async fn do_create_restore_point(
        &self,
        req: Request<pb::CreateRestorePointRequest>,
    ) -> Result<Response<pb::RestorePoint>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateRestorePoint", &r, &r.request_id);
        let env = v.check("parent", EnvName::parse(&r.parent));
        let id = v.check("restore_point_id", ResourceId::parse(&r.restore_point_id));
        let body = r.restore_point.clone().unwrap_or_default();
        let run = text(&mut v, "restore_point.run", &body.run);
        let snapshot = text(&mut v, "restore_point.integration_snapshot", &body.integration_snapshot);
        let description = text(&mut v, "restore_point.description", &body.description);
        let (key, env, id, run, snapshot, description) = done(v, || Some((key?, env?, id?, run?, snapshot?, description?)))?;
        scope(&p, &env)?;
        let new = NewRestorePoint { name: RestorePointName { env, id }, run, integration_snapshot: snapshot, description };
        Ok(Response::new(restore_point(self.registry.create_restore_point(key, new).await?)))
    }

    pub(super) async fn do_get_restore_point(
        &self,
        req: Request<pb::GetRestorePointRequest>,
    ) -> Result<Response<pb::RestorePoint>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let name = v.check("name", RestorePointName::parse(&req.get_ref().name));
        let name = done(v, || name)?;
        scope(&p, &name.env)?;
        Ok(Response::new(restore_point(self.registry.get_restore_point(&name).await?)))
    }

    pub(super) async fn do_list_restore_points(
        &self,
        req: Request<pb::ListRestorePointsRequest>,
    ) -> Result<Response<pb::ListRestorePointsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let env = v.check("parent", EnvName::parse(&r.parent));
        let list = format!("restorePoints:{}", r.parent);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<String>(&mut v, &list, &r.page_token);
        let (env, size, after) = done(v, || Some((env?, size?, after?)))?;
        scope(&p, &env)?;
        let page = self.registry.list_restore_points(&env, after, size).await?;
        Ok(Response::new(pb::ListRestorePointsResponse {
            next_page_token: c::next_token(&list, &page.next),
            restore_points: page.items.into_iter().map(restore_point).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(name = %req.get_ref().name))]
    pub(super) async fn do_delete_restore_point(
        &self,
        req: Request<pb::DeleteRestorePointRequest>,
    ) -> Result<Response<pb::DeleteRestorePointResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeleteRestorePoint", &r, &r.request_id);
        let name = v.check("name", RestorePointName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        self.registry.delete_restore_point(key, name).await?;
        Ok(Response::new(pb::DeleteRestorePointResponse {}))
    }

    #[tracing::instrument(skip_all, fields(restore_point = %req.get_ref().restore_point))]
    pub(super) async fn do_restore_environment(
        &self,
        req: Request<pb::RestoreEnvironmentRequest>,
    ) -> Result<Response<pb::RestoreEnvironmentResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "RestoreEnvironment", &r, &r.request_id);
        let name = v.check("restore_point", RestorePointName::parse(&r.restore_point));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        let done = self.registry.restore_environment(key, name).await?;
        Ok(Response::new(pb::RestoreEnvironmentResponse {
            restore_point: Some(restore_point(done.restore_point)),
            replaced_groups: done.replaced.replaced_groups,
            replaced_entities: done.replaced.replaced_entities,
            replaced_projects: done.replaced.replaced_projects,
        }))
    }
}

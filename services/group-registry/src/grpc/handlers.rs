//! `RegistryService`: parse, check the caller's environment scope, call the service
//! layer, convert back.

use ferry_kit::auth::Principal;
use ferry_kit::status::Violations;
use ferry_proto::registry::v1 as pb;
use ferry_proto::registry::v1::registry_service_server::RegistryService;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{self as c, done};
use crate::domain::{EntityKey, EntityName, EnvName, Environment, GroupName, MAX_REFERENCES, ResourceId, Tier, display_name};
use crate::service::Registry;

/// The gRPC face of the registry.
#[derive(Clone)]
pub struct RegistryApi {
    pub(super) registry: Registry,
}

impl RegistryApi {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

pub(super) type Stream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

pub(super) fn scope(p: &Principal, env: &EnvName) -> Result<(), Status> {
    p.check_environment(env.id())
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    #[tracing::instrument(skip_all, fields(environment = %req.get_ref().environment_id))]
    async fn create_environment(&self, req: Request<pb::CreateEnvironmentRequest>) -> Result<Response<pb::Environment>, Status> {
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateEnvironment", &r, &r.request_id);
        let id = v.check("environment_id", ResourceId::parse(&r.environment_id));
        let body = r.environment.clone().unwrap_or_default();
        let tier = v.check("environment.tier", Tier::from_number(body.tier));
        let display = v.check("environment.display_name", display_name(&body.display_name));
        let (key, id, tier, display) = done(v, || Some((key?, id?, tier?, display?)))?;
        let env = Environment { name: EnvName(id), tier, display_name: display, created_at: ferry_kit::db::now_micros() };
        Ok(Response::new(c::environment(self.registry.create_environment(key, env).await?)))
    }

    async fn get_environment(&self, req: Request<pb::GetEnvironmentRequest>) -> Result<Response<pb::Environment>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let name = v.check("name", EnvName::parse(&req.get_ref().name));
        let name = done(v, || name)?;
        scope(&p, &name)?;
        Ok(Response::new(c::environment(self.registry.get_environment(&name).await?)))
    }

    async fn list_environments(&self, req: Request<pb::ListEnvironmentsRequest>) -> Result<Response<pb::ListEnvironmentsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<String>(&mut v, "environments", &r.page_token);
        let (size, after) = done(v, || Some((size?, after?)))?;
        let page = self.registry.list_environments(after, size, p.environments.as_ref()).await?;
        Ok(Response::new(pb::ListEnvironmentsResponse {
            next_page_token: c::next_token("environments", &page.next),
            environments: page.items.into_iter().map(c::environment).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, group = %req.get_ref().group_id))]
    async fn create_group(&self, req: Request<pb::CreateGroupRequest>) -> Result<Response<pb::Group>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateGroup", &r, &r.request_id);
        let env = v.check("parent", EnvName::parse(&r.parent));
        let id = v.check("group_id", ResourceId::parse(&r.group_id));
        let display = v.check("group.display_name", display_name(&r.group.as_ref().map(|g| g.display_name.clone()).unwrap_or_default()));
        let (key, env, id, display) = done(v, || Some((key?, env?, id?, display?)))?;
        scope(&p, &env)?;
        let g = self.registry.create_group(key, GroupName { env, group: id }, display).await?;
        Ok(Response::new(c::group(g)))
    }

    async fn get_group(&self, req: Request<pb::GetGroupRequest>) -> Result<Response<pb::Group>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let name = v.check("name", GroupName::parse(&req.get_ref().name));
        let mask = c::group_read_mask(&mut v, &req.get_ref().read_mask);
        let (name, mask) = done(v, || Some((name?, mask?)))?;
        scope(&p, &name.env)?;
        let group = self.registry.get_group(&name, mask.wants("entity_count")).await?;
        Ok(Response::new(mask.apply(c::group(group))))
    }

    async fn list_groups(&self, req: Request<pb::ListGroupsRequest>) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let env = v.check("parent", EnvName::parse(&r.parent));
        let list = format!("groups:{}", r.parent);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<String>(&mut v, &list, &r.page_token);
        let (env, size, after) = done(v, || Some((env?, size?, after?)))?;
        scope(&p, &env)?;
        let page = self.registry.list_groups(&env, after, size).await?;
        Ok(Response::new(pb::ListGroupsResponse {
            next_page_token: c::next_token(&list, &page.next),
            groups: page.items.into_iter().map(c::group).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(group = %req.get_ref().name, force = req.get_ref().force))]
    async fn delete_group(&self, req: Request<pb::DeleteGroupRequest>) -> Result<Response<pb::DeleteGroupResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeleteGroup", &r, &r.request_id);
        let name = v.check("name", GroupName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        let (deleted, unlinked) = self.registry.delete_group(key, name, r.force).await?;
        Ok(Response::new(pb::DeleteGroupResponse { deleted_entities: deleted, unlinked_entities: unlinked }))
    }

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent))]
    async fn create_entity(&self, req: Request<pb::CreateEntityRequest>) -> Result<Response<pb::Entity>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateEntity", &r, &r.request_id);
        let group = v.check("parent", GroupName::parse(&r.parent));
        let new = match &r.entity {
            Some(e) => c::new_entity(&mut v, "entity", e),
            None => {
                v.add("entity", "is required");
                None
            }
        };
        let (key, group, new) = done(v, || Some((key?, group?, new?)))?;
        scope(&p, &group.env)?;
        Ok(Response::new(c::entity(self.registry.create_entity(key, group, new).await?)))
    }

    async fn get_entity(&self, req: Request<pb::GetEntityRequest>) -> Result<Response<pb::Entity>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let name = v.check("name", EntityName::parse(&req.get_ref().name));
        let name = done(v, || name)?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::entity(self.registry.get_entity(&name).await?)))
    }

    async fn lookup_entity(&self, req: Request<pb::LookupEntityRequest>) -> Result<Response<pb::Entity>, Status> {
        let p = Principal::of(&req);
        let r = req.get_ref();
        let mut v = Violations::new();
        let group = v.check("group", GroupName::parse(&r.group));
        let kind = v.check("kind", c::kind(r.kind));
        let key = v.check("key", EntityKey::parse(&r.key));
        let (group, kind, key) = done(v, || Some((group?, kind?, key?)))?;
        scope(&p, &group.env)?;
        Ok(Response::new(c::entity(self.registry.lookup_entity(&group, kind, &key).await?)))
    }

    async fn list_entities(&self, req: Request<pb::ListEntitiesRequest>) -> Result<Response<pb::ListEntitiesResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let group = v.check("parent", GroupName::parse(&r.parent));
        let kinds = c::kinds(&mut v, "kinds", &r.kinds);
        let list = format!("entities:{}:{:?}", r.parent, r.kinds);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<(i32, String)>(&mut v, &list, &r.page_token);
        let (group, kinds, size, after) = done(v, || Some((group?, kinds?, size?, after?)))?;
        scope(&p, &group.env)?;
        let page = self.registry.list_entities(&group, &kinds, after, size).await?;
        Ok(Response::new(pb::ListEntitiesResponse {
            next_page_token: c::next_token(&list, &page.next),
            entities: page.items.into_iter().map(c::entity).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(entity = %req.get_ref().entity.as_ref().map(|e| e.name.as_str()).unwrap_or("")))]
    async fn update_entity(&self, req: Request<pb::UpdateEntityRequest>) -> Result<Response<pb::Entity>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "UpdateEntity", &r, &r.request_id);
        let body = r.entity.clone().unwrap_or_default();
        let name = v.check("entity.name", EntityName::parse(&body.name));
        let mut paths = c::mask_paths(&r.update_mask);
        if paths.is_empty() {
            paths = vec!["payload_json".into(), "references".into()];
        }
        let mut payload = Some(None);
        let mut refs = Some(None);
        for path in &paths {
            match path.as_str() {
                "payload_json" => payload = v.check("entity.payload_json", crate::domain::Json::parse(&body.payload_json)).map(Some),
                "references" => refs = c::refs(&mut v, "entity.references", &body.references, MAX_REFERENCES).map(Some),
                other => v.add(
                    "update_mask",
                    format!("{other:?} cannot be updated (payload_json, references; kind, key and sharing are immutable)"),
                ),
            }
        }
        let (key, name, payload, refs) = done(v, || Some((key?, name?, payload?, refs?)))?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::entity(self.registry.update_entity(key, name, payload, refs).await?)))
    }

    #[tracing::instrument(skip_all, fields(entity = %req.get_ref().name, confirm = req.get_ref().confirm_all_groups))]
    async fn delete_entity(&self, req: Request<pb::DeleteEntityRequest>) -> Result<Response<pb::DeleteEntityResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeleteEntity", &r, &r.request_id);
        let name = v.check("name", EntityName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        let affected = self.registry.delete_entity(key, name, r.confirm_all_groups).await?;
        Ok(Response::new(pb::DeleteEntityResponse { affected_groups: affected.iter().map(ToString::to_string).collect() }))
    }

    #[tracing::instrument(skip_all, fields(entity = %req.get_ref().name, group = %req.get_ref().group))]
    async fn link_entity(&self, req: Request<pb::LinkEntityRequest>) -> Result<Response<pb::Entity>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "LinkEntity", &r, &r.request_id);
        let name = v.check("name", EntityName::parse(&r.name));
        let group = v.check("group", GroupName::parse(&r.group));
        let (key, name, group) = done(v, || Some((key?, name?, group?)))?;
        scope(&p, &name.env)?;
        scope(&p, &group.env)?;
        Ok(Response::new(c::entity(self.registry.link_entity(key, name, group).await?)))
    }

    #[tracing::instrument(skip_all, fields(entity = %req.get_ref().name, group = %req.get_ref().group))]
    async fn unlink_entity(&self, req: Request<pb::UnlinkEntityRequest>) -> Result<Response<pb::Entity>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "UnlinkEntity", &r, &r.request_id);
        let name = v.check("name", EntityName::parse(&r.name));
        let group = v.check("group", GroupName::parse(&r.group));
        let (key, name, group) = done(v, || Some((key?, name?, group?)))?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::entity(self.registry.unlink_entity(key, name, group).await?)))
    }

    async fn import_entities(
        &self,
        req: Request<Streaming<pb::ImportEntitiesRequest>>,
    ) -> Result<Response<pb::ImportEntitiesResponse>, Status> {
        self.import(req).await
    }

    async fn export_entities(
        &self,
        req: Request<pb::ExportEntitiesRequest>,
    ) -> Result<Response<Stream<pb::ExportEntitiesResponse>>, Status> {
        self.export(req).await
    }

    async fn stream_key_manifest(
        &self,
        req: Request<pb::StreamKeyManifestRequest>,
    ) -> Result<Response<Stream<pb::StreamKeyManifestResponse>>, Status> {
        self.key_manifest(req).await
    }

    async fn lookup_keys(&self, req: Request<pb::LookupKeysRequest>) -> Result<Response<pb::LookupKeysResponse>, Status> {
        self.lookup(req).await
    }

    async fn apply_merge_operations(
        &self,
        req: Request<pb::ApplyMergeOperationsRequest>,
    ) -> Result<Response<pb::ApplyMergeOperationsResponse>, Status> {
        self.apply_operations(req).await
    }

    #[tracing::instrument(skip_all, fields(source = %req.get_ref().source, destination = %req.get_ref().destination))]
    async fn copy_environment(&self, req: Request<pb::CopyEnvironmentRequest>) -> Result<Response<pb::CopyEnvironmentResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CopyEnvironment", &r, &r.request_id);
        let src = v.check("source", EnvName::parse(&r.source));
        let dst = v.check("destination", EnvName::parse(&r.destination));
        let profile = c::copy_profile(&mut v, "profile", r.profile.as_ref());
        let (key, src, dst, profile) = done(v, || Some((key?, src?, dst?, profile?)))?;
        scope(&p, &src)?;
        scope(&p, &dst)?;
        let copied = self.registry.copy_environment(key, src, dst, profile, r.validate_only).await?;
        Ok(Response::new(c::copied_pb(copied)))
    }

    async fn create_restore_point(&self, req: Request<pb::CreateRestorePointRequest>) -> Result<Response<pb::RestorePoint>, Status> {
        self.do_create_restore_point(req).await
    }

    async fn get_restore_point(&self, req: Request<pb::GetRestorePointRequest>) -> Result<Response<pb::RestorePoint>, Status> {
        self.do_get_restore_point(req).await
    }

    async fn list_restore_points(
        &self,
        req: Request<pb::ListRestorePointsRequest>,
    ) -> Result<Response<pb::ListRestorePointsResponse>, Status> {
        self.do_list_restore_points(req).await
    }

    async fn delete_restore_point(
        &self,
        req: Request<pb::DeleteRestorePointRequest>,
    ) -> Result<Response<pb::DeleteRestorePointResponse>, Status> {
        self.do_delete_restore_point(req).await
    }

    async fn restore_environment(
        &self,
        req: Request<pb::RestoreEnvironmentRequest>,
    ) -> Result<Response<pb::RestoreEnvironmentResponse>, Status> {
        self.do_restore_environment(req).await
    }

    async fn create_project(&self, req: Request<pb::CreateProjectRequest>) -> Result<Response<pb::Project>, Status> {
        self.do_create_project(req).await
    }

    async fn get_project(&self, req: Request<pb::GetProjectRequest>) -> Result<Response<pb::Project>, Status> {
        self.do_get_project(req).await
    }

    async fn list_projects(&self, req: Request<pb::ListProjectsRequest>) -> Result<Response<pb::ListProjectsResponse>, Status> {
        self.do_list_projects(req).await
    }

    async fn update_project(&self, req: Request<pb::UpdateProjectRequest>) -> Result<Response<pb::Project>, Status> {
        self.do_update_project(req).await
    }

    async fn delete_project(&self, req: Request<pb::DeleteProjectRequest>) -> Result<Response<pb::DeleteProjectResponse>, Status> {
        self.do_delete_project(req).await
    }

    async fn create_config_item(&self, req: Request<pb::CreateConfigItemRequest>) -> Result<Response<pb::ConfigItem>, Status> {
        self.do_create_config_item(req).await
    }

    async fn list_config_items(&self, req: Request<pb::ListConfigItemsRequest>) -> Result<Response<pb::ListConfigItemsResponse>, Status> {
        self.do_list_config_items(req).await
    }

    async fn delete_config_item(
        &self,
        req: Request<pb::DeleteConfigItemRequest>,
    ) -> Result<Response<pb::DeleteConfigItemResponse>, Status> {
        self.do_delete_config_item(req).await
    }

    async fn upsert_config_items(
        &self,
        req: Request<pb::UpsertConfigItemsRequest>,
    ) -> Result<Response<pb::UpsertConfigItemsResponse>, Status> {
        self.do_upsert_config_items(req).await
    }

    async fn resolve_project(&self, req: Request<pb::ResolveProjectRequest>) -> Result<Response<pb::ResolveProjectResponse>, Status> {
        self.do_resolve_project(req).await
    }
}

/// The method name under which imports are recorded.
pub(crate) const IMPORT: &str = crate::service::IMPORT_METHOD;

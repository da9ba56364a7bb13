//! `RegistryService`: parse, check the caller's environment scope, call the service
//! layer, convert back.

use ferry_kit::auth::Principal;
use ferry_kit::status::Violations;
use ferry_proto::registry::v1 as pb;
use ferry_proto::registry::v1::registry_service_server::RegistryService;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{self as c, done};
use crate::domain::{
    ConfigItemName, EntityKey, EntityName, EnvName, Environment, GroupName, MAX_REFERENCES, ProjectName, RequestKey, ResourceId, Tier,
    display_name,
};
use crate::service::{ImportStart, Registry};
use crate::store::bulk::KeyFilter;

/// Most entities in one import message, operations in one batch, refs in one lookup.
const MAX_BATCH: usize = 5000;
const MAX_OPS: usize = 10_000;
const EXPORT_PAGE: u64 = 500;

/// The gRPC face of the registry.
#[derive(Clone)]
pub struct RegistryApi {
    registry: Registry,
}

impl RegistryApi {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

type Stream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

fn scope(p: &Principal, env: &EnvName) -> Result<(), Status> {
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
        let page = self.registry.list_environments(after, size).await?;
        Ok(Response::new(pb::ListEnvironmentsResponse {
            next_page_token: c::next_token("environments", &page.next),
            environments: page.items.into_iter().filter(|e| p.check_environment(e.name.id()).is_ok()).map(c::environment).collect(),
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

    #[tracing::instrument(skip_all)]
    async fn import_entities(
        &self,
        req: Request<Streaming<pb::ImportEntitiesRequest>>,
    ) -> Result<Response<pb::ImportEntitiesResponse>, Status> {
        let p = Principal::of(&req);
        let mut stream = req.into_inner();
        let first = stream.message().await?.ok_or_else(|| {
            let mut v = Violations::new();
            v.add("parent", "the stream was empty: the first message names the group");
            ferry_kit::status::invalid_argument(&v)
        })?;
        let mut v = Violations::new();
        let group = v.check("parent", GroupName::parse(&first.parent));
        let request_id = first.request_id.clone();
        if !request_id.is_empty() {
            v.check("request_id", RequestKey::parse(&request_id, String::new()));
        }
        let group = done(v, || group)?;
        scope(&p, &group.env)?;
        let mut hash = Sha256::new();
        hash.update(IMPORT.as_bytes());
        let start = self.registry.import_begin(&group, (!request_id.is_empty()).then_some(request_id.as_str())).await?;
        // A replayed import is read to the end (to fingerprint it) but writes nothing.
        let (mut tx, replay) = match start {
            ImportStart::Fresh(tx) => (Some(tx), None),
            ImportStart::Replayed { fingerprint, reply } => (None, Some((fingerprint, reply))),
        };
        let parent = group.to_string();
        let mut next = Some(first);
        // Violations name the message of the stream and the entity in it:
        // `messages[1].entities[2].payload_json`.
        let mut m = 0usize;
        while let Some(msg) = next.take() {
            hash.update(prost::Message::encode_to_vec(&msg));
            let mut v = Violations::new();
            if !msg.parent.is_empty() && msg.parent != parent {
                v.add(format!("messages[{m}].parent"), "must not change within one import");
            }
            if m > 0 && !msg.request_id.is_empty() && msg.request_id != request_id {
                v.add(format!("messages[{m}].request_id"), "must not change within one import");
            }
            if msg.entities.len() > MAX_BATCH {
                v.add(format!("messages[{m}].entities"), format!("at most {MAX_BATCH} entities per message"));
            }
            let batch: Vec<_> = msg
                .entities
                .iter()
                .enumerate()
                .filter_map(|(i, e)| c::new_entity(&mut v, &format!("messages[{m}].entities[{i}]"), e))
                .collect();
            m += 1;
            done(v, || Some(()))?;
            if let Some(tx) = tx.as_mut() {
                tx.add(&batch).await?;
            }
            next = stream.message().await?;
        }
        let fingerprint = hex::encode(&hash.finalize()[..16]);
        let key = RequestKey::parse(&request_id, fingerprint.clone()).ok().flatten();
        let (created, revision) = match (tx, replay) {
            (Some(tx), _) => tx.finish(key).await?,
            (None, Some((fp, reply))) if fp == fingerprint => reply,
            (None, _) => return Err(crate::error::Error::RequestIdReused.into()),
        };
        Ok(Response::new(pb::ImportEntitiesResponse { created, revision }))
    }

    async fn export_entities(
        &self,
        req: Request<pb::ExportEntitiesRequest>,
    ) -> Result<Response<Stream<pb::ExportEntitiesResponse>>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let group = v.check("parent", GroupName::parse(&r.parent));
        let kinds = c::kinds(&mut v, "kinds", &r.kinds);
        let (group, kinds) = done(v, || Some((group?, kinds?)))?;
        scope(&p, &group.env)?;
        let (group_id, _) = self.registry.stream_start(&group).await?;
        let registry = self.registry.clone();
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            let mut after: Option<(i32, String)> = None;
            loop {
                let page = match registry.export_page(group_id, &kinds, after.clone(), EXPORT_PAGE).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                after = page.last().map(|e| (e.kind.number(), e.key.as_str().to_owned()));
                let last = (page.len() as u64) < EXPORT_PAGE;
                if !page.is_empty()
                    && tx.send(Ok(pb::ExportEntitiesResponse { entities: page.into_iter().map(c::entity).collect() })).await.is_err()
                {
                    return;
                }
                if last {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn stream_key_manifest(
        &self,
        req: Request<pb::StreamKeyManifestRequest>,
    ) -> Result<Response<Stream<pb::StreamKeyManifestResponse>>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let group = v.check("group", GroupName::parse(&r.group));
        let kinds = c::kinds(&mut v, "kinds", &r.kinds);
        if r.keys.len() > MAX_OPS {
            v.add("keys", format!("at most {MAX_OPS} keys"));
        }
        let keys: Option<Vec<EntityKey>> =
            r.keys.iter().enumerate().map(|(i, k)| v.check(&format!("keys[{i}]"), EntityKey::parse(k))).collect();
        let chunk = match r.chunk_size {
            0 => Some(2000u64),
            n if (1..=10_000).contains(&n) => Some(n as u64),
            _ => {
                v.add("chunk_size", "must be between 1 and 10000");
                None
            }
        };
        let (group, kinds, keys, chunk) = done(v, || Some((group?, kinds?, keys?, chunk?)))?;
        scope(&p, &group.env)?;
        let (group_id, revision) = self.registry.stream_start(&group).await?;
        let filter = KeyFilter { kinds, keys };
        let registry = self.registry.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut after: Option<(i32, String)> = None;
            loop {
                let page = match registry.manifest_page(group_id, &filter, after.as_ref(), chunk).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                after = page.last().map(|e| (e.kind.number(), e.key.as_str().to_owned()));
                let last = (page.len() as u64) < chunk;
                let msg = pb::StreamKeyManifestResponse { entries: page.into_iter().map(c::manifest_entry).collect(), revision };
                if (!msg.entries.is_empty() || last) && tx.send(Ok(msg)).await.is_err() {
                    return;
                }
                if last {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lookup_keys(&self, req: Request<pb::LookupKeysRequest>) -> Result<Response<pb::LookupKeysResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let group = v.check("group", GroupName::parse(&r.group));
        if r.refs.len() > MAX_OPS {
            v.add("refs", format!("at most {MAX_OPS} refs"));
        }
        let refs = c::refs(&mut v, "refs", &r.refs, MAX_OPS);
        let (group, refs) = done(v, || Some((group?, refs?)))?;
        scope(&p, &group.env)?;
        Ok(Response::new(pb::LookupKeysResponse { present: self.registry.lookup_keys(&group, &refs).await? }))
    }

    #[tracing::instrument(skip_all, fields(recipient = %req.get_ref().recipient, operations = req.get_ref().operations.len()))]
    async fn apply_merge_operations(
        &self,
        req: Request<pb::ApplyMergeOperationsRequest>,
    ) -> Result<Response<pb::ApplyMergeOperationsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "ApplyMergeOperations", &r, &r.request_id);
        let group = v.check("recipient", GroupName::parse(&r.recipient));
        if r.operations.len() > MAX_OPS {
            v.add("operations", format!("at most {MAX_OPS} operations per batch"));
        }
        let ops: Option<Vec<_>> = r.operations.iter().enumerate().map(|(i, o)| c::merge_op(&mut v, i, o)).collect();
        let (key, group, ops) = done(v, || Some((key?, group?, ops?)))?;
        scope(&p, &group.env)?;
        let batch = self.registry.apply_merge_operations(key, group, ops).await?;
        use crate::domain::Outcome;
        Ok(Response::new(pb::ApplyMergeOperationsResponse {
            applied: batch.count(Outcome::Applied),
            already_present: batch.count(Outcome::AlreadyPresent),
            conflicts: batch.count(Outcome::Conflict),
            revision: batch.revision,
            results: batch.results.iter().map(|r| pb::OperationResult { outcome: c::outcome(r.outcome), entity_id: r.entity_id }).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(source = %req.get_ref().source, destination = %req.get_ref().destination))]
    async fn copy_environment(&self, req: Request<pb::CopyEnvironmentRequest>) -> Result<Response<pb::CopyEnvironmentResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CopyEnvironment", &r, &r.request_id);
        let src = v.check("source", EnvName::parse(&r.source));
        let dst = v.check("destination", EnvName::parse(&r.destination));
        let (key, src, dst) = done(v, || Some((key?, src?, dst?)))?;
        scope(&p, &src)?;
        scope(&p, &dst)?;
        let n = self.registry.copy_environment(key, src, dst).await?;
        Ok(Response::new(pb::CopyEnvironmentResponse {
            groups: n.groups,
            entities: n.entities,
            links: n.links,
            projects: n.projects,
            config_items: n.config_items,
            replaced_groups: n.replaced_groups,
            replaced_entities: n.replaced_entities,
            replaced_projects: n.replaced_projects,
        }))
    }

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, project = %req.get_ref().project_id))]
    async fn create_project(&self, req: Request<pb::CreateProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateProject", &r, &r.request_id);
        let env = v.check("parent", EnvName::parse(&r.parent));
        let id = v.check("project_id", ResourceId::parse(&r.project_id));
        let body = r.project.clone().unwrap_or_default();
        let display = v.check("project.display_name", display_name(&body.display_name));
        let groups = group_names(&mut v, "project.groups", &body.groups);
        let (key, env, id, display, groups) = done(v, || Some((key?, env?, id?, display?, groups?)))?;
        scope(&p, &env)?;
        let name = ProjectName { env, project: id };
        Ok(Response::new(c::project(self.registry.create_project(key, name, display, groups).await?)))
    }

    async fn get_project(&self, req: Request<pb::GetProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let name = v.check("name", ProjectName::parse(&req.get_ref().name));
        let name = done(v, || name)?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::project(self.registry.get_project(&name).await?)))
    }

    async fn list_projects(&self, req: Request<pb::ListProjectsRequest>) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let env = v.check("parent", EnvName::parse(&r.parent));
        let list = format!("projects:{}", r.parent);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<String>(&mut v, &list, &r.page_token);
        let (env, size, after) = done(v, || Some((env?, size?, after?)))?;
        scope(&p, &env)?;
        let page = self.registry.list_projects(&env, after, size).await?;
        Ok(Response::new(pb::ListProjectsResponse {
            next_page_token: c::next_token(&list, &page.next),
            projects: page.items.into_iter().map(c::project).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_project(&self, req: Request<pb::UpdateProjectRequest>) -> Result<Response<pb::Project>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "UpdateProject", &r, &r.request_id);
        let body = r.project.clone().unwrap_or_default();
        let name = v.check("project.name", ProjectName::parse(&body.name));
        let mut display = Some(None);
        let mut groups = Some(None);
        let paths = c::mask_paths(&r.update_mask);
        if paths.is_empty() {
            v.add("update_mask", "name the fields to update: groups, display_name");
        }
        for path in &paths {
            match path.as_str() {
                "display_name" => display = v.check("project.display_name", display_name(&body.display_name)).map(Some),
                "groups" => groups = group_names(&mut v, "project.groups", &body.groups).map(Some),
                other => v.add("update_mask", format!("{other:?} cannot be updated (groups, display_name)")),
            }
        }
        let (key, name, display, groups) = done(v, || Some((key?, name?, display?, groups?)))?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::project(self.registry.update_project(key, name, display, groups).await?)))
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().name))]
    async fn delete_project(&self, req: Request<pb::DeleteProjectRequest>) -> Result<Response<pb::DeleteProjectResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeleteProject", &r, &r.request_id);
        let name = v.check("name", ProjectName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        let n = self.registry.delete_project(key, name).await?;
        Ok(Response::new(pb::DeleteProjectResponse { deleted_config_items: n }))
    }

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, item = %req.get_ref().config_item_id))]
    async fn create_config_item(&self, req: Request<pb::CreateConfigItemRequest>) -> Result<Response<pb::ConfigItem>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateConfigItem", &r, &r.request_id);
        let project = v.check("parent", ProjectName::parse(&r.parent));
        let id = v.check("config_item_id", ResourceId::parse(&r.config_item_id));
        let name = project.clone().zip(id).map(|(project, item)| ConfigItemName { project, item });
        let item = c::parse_config_item(&mut v, "config_item", name, &r.config_item.clone().unwrap_or_default());
        let (key, project, item) = done(v, || Some((key?, project?, item?)))?;
        scope(&p, &project.env)?;
        Ok(Response::new(c::config_item(self.registry.create_config_item(key, item).await?)))
    }

    async fn list_config_items(&self, req: Request<pb::ListConfigItemsRequest>) -> Result<Response<pb::ListConfigItemsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let project = v.check("parent", ProjectName::parse(&r.parent));
        let list = format!("configItems:{}", r.parent);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<String>(&mut v, &list, &r.page_token);
        let (project, size, after) = done(v, || Some((project?, size?, after?)))?;
        scope(&p, &project.env)?;
        let page = self.registry.list_config_items(&project, after, size).await?;
        Ok(Response::new(pb::ListConfigItemsResponse {
            next_page_token: c::next_token(&list, &page.next),
            config_items: page.items.into_iter().map(c::config_item).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(item = %req.get_ref().name))]
    async fn delete_config_item(
        &self,
        req: Request<pb::DeleteConfigItemRequest>,
    ) -> Result<Response<pb::DeleteConfigItemResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeleteConfigItem", &r, &r.request_id);
        let name = v.check("name", ConfigItemName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.project.env)?;
        self.registry.delete_config_item(key, name).await?;
        Ok(Response::new(pb::DeleteConfigItemResponse {}))
    }

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, items = req.get_ref().config_items.len()))]
    async fn upsert_config_items(
        &self,
        req: Request<pb::UpsertConfigItemsRequest>,
    ) -> Result<Response<pb::UpsertConfigItemsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "UpsertConfigItems", &r, &r.request_id);
        let project = v.check("parent", ProjectName::parse(&r.parent));
        if r.config_items.len() > MAX_BATCH {
            v.add("config_items", format!("at most {MAX_BATCH} items per call"));
        }
        let items: Option<Vec<_>> = r
            .config_items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let field = format!("config_items[{i}]");
                let name = v.check(&format!("{field}.name"), ConfigItemName::parse(&item.name));
                c::parse_config_item(&mut v, &field, name, item)
            })
            .collect();
        let (key, project, items) = done(v, || Some((key?, project?, items?)))?;
        scope(&p, &project.env)?;
        let n = self.registry.upsert_config_items(key, project, items).await?;
        Ok(Response::new(pb::UpsertConfigItemsResponse {
            created: n.created,
            updated: n.updated,
            unchanged: n.unchanged,
            revision: n.revision,
        }))
    }

    async fn resolve_project(&self, req: Request<pb::ResolveProjectRequest>) -> Result<Response<pb::ResolveProjectResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let name = v.check("name", ProjectName::parse(&r.name));
        let list = format!("resolve:{}:{}", r.name, r.missing_only);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<(String, i32)>(&mut v, &list, &r.page_token);
        let (name, size, after) = done(v, || Some((name?, size?, after?)))?;
        scope(&p, &name.env)?;
        let (page, missing) = self.registry.resolve_project(&name, r.missing_only, after, size).await?;
        Ok(Response::new(pb::ResolveProjectResponse {
            next_page_token: c::next_token(&list, &page.next),
            missing_count: missing,
            resolutions: page
                .items
                .into_iter()
                .map(|res| pb::Resolution {
                    config_item: res.config_item.to_string(),
                    reference: Some(c::entity_ref(&res.reference)),
                    entity: res.entity.map(|e| e.to_string()).unwrap_or_default(),
                    group: res.group.map(|g| g.to_string()).unwrap_or_default(),
                })
                .collect(),
        }))
    }
}

/// The method name under which imports are recorded.
pub(crate) const IMPORT: &str = crate::service::IMPORT_METHOD;

fn group_names(v: &mut Violations, field: &str, names: &[String]) -> Option<Vec<GroupName>> {
    if names.is_empty() {
        v.add(field, "at least one group is required");
        return None;
    }
    names.iter().enumerate().map(|(i, n)| v.check(&format!("{field}[{i}]"), GroupName::parse(n))).collect::<Vec<_>>().into_iter().collect()
}

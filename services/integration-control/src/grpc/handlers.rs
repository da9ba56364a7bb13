//! `IntegrationService`: parse, check the caller's environment scope, call the service
//! layer, convert back.

use ferry_kit::auth::Principal;
use ferry_kit::status::Violations;
use ferry_proto::integration::v1 as pb;
use ferry_proto::integration::v1::integration_service_server::IntegrationService;
use tonic::{Request, Response, Status};

use super::convert::{self as c, done};
use crate::domain::{
    self as d, ApiKey, CredentialState, EnvName, EnvScoped, IntegrationName, JobName, MappingName, MappingParent, ResourceId, ResourceType,
};
use crate::service::{Control, IntegrationPatch, MappingPatch, NewIntegration, NewJob, NewMapping, bulk::Undo};

/// The gRPC face of integration-control.
#[derive(Clone)]
pub struct IntegrationApi {
    control: Control,
}

impl IntegrationApi {
    pub fn new(control: Control) -> Self {
        Self { control }
    }
}

pub(super) fn scope(p: &Principal, env: &EnvName) -> Result<(), Status> {
    p.check_environment(env.id())
}

pub(super) fn text(v: &mut Violations, field: &str, s: &str) -> Option<String> {
    v.check(field, d::text(s))
}

/// What an undo step reverses: exactly one of a ChangeSet and a list of names, all of `env`.
pub(super) fn undo<N: EnvScoped>(
    v: &mut Violations,
    env: Option<&EnvName>,
    cs: &Option<pb::ChangeSet>,
    names: &[String],
    list_field: &str,
    want: ResourceType,
) -> Option<Undo<N>> {
    match (cs, names.is_empty()) {
        (Some(cs), true) => Some(Undo::Changes(c::undo_changes(v, cs, env, want, |s| N::parse_name(s).map(|n| n.environment().clone())))),
        (None, false) => {
            let mut out = Vec::new();
            for (i, s) in names.iter().enumerate() {
                match N::parse_name(s) {
                    Ok(n) if env.is_some_and(|e| e != n.environment()) => {
                        v.add(format!("{list_field}[{i}]"), "is a resource of another environment")
                    }
                    Ok(n) => out.push(n),
                    Err(e) => v.add(format!("{list_field}[{i}]"), e),
                }
            }
            Some(Undo::Names(out))
        }
        _ => {
            v.add("change_set", format!("give exactly one of change_set and {list_field}"));
            None
        }
    }
}

#[tonic::async_trait]
impl IntegrationService for IntegrationApi {
    // Integrations.

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, integration = %req.get_ref().integration_id))]
    async fn create_integration(&self, req: Request<pb::CreateIntegrationRequest>) -> Result<Response<pb::Integration>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        // The request log keeps a keyed digest of the key, never the key.
        let masked = pb::CreateIntegrationRequest { api_key: self.control.sealer().request_digest(&r.api_key), ..r.clone() };
        let key = c::request_key(&mut v, "CreateIntegration", &masked, &r.request_id);
        let env = v.check("parent", EnvName::parse(&r.parent));
        let id = v.check("integration_id", ResourceId::parse(&r.integration_id));
        let body = r.integration.clone().unwrap_or_default();
        let display = text(&mut v, "integration.display_name", &body.display_name);
        let system = v.check("integration.external_system", d::external_system(&body.external_system));
        let url = v.check("integration.base_url", d::base_url(&body.base_url));
        let api_key = v.check("api_key", ApiKey::parse(&r.api_key));
        let (key, env, id, display, system, url, api_key) = done(v, || Some((key?, env?, id?, display?, system?, url?, api_key?)))?;
        scope(&p, &env)?;
        let new = NewIntegration {
            name: IntegrationName { env, id },
            display_name: display,
            external_system: system,
            base_url: url,
            active: body.active,
            api_key,
        };
        Ok(Response::new(c::integration(self.control.create_integration(key, new).await?)))
    }

    async fn get_integration(&self, req: Request<pb::GetIntegrationRequest>) -> Result<Response<pb::Integration>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let name = v.check("name", IntegrationName::parse(&req.get_ref().name));
        let name = done(v, || name)?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::integration(self.control.get_integration(&name).await?)))
    }

    async fn list_integrations(&self, req: Request<pb::ListIntegrationsRequest>) -> Result<Response<pb::ListIntegrationsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let env = v.check("parent", EnvName::parse(&r.parent));
        let list = format!("integrations:{}", r.parent);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<String>(&mut v, &list, &r.page_token);
        let (env, size, after) = done(v, || Some((env?, size?, after?)))?;
        scope(&p, &env)?;
        let page = self.control.list_integrations(&env, after, size).await?;
        Ok(Response::new(pb::ListIntegrationsResponse {
            next_page_token: c::next_token(&list, &page.next),
            integrations: page.items.into_iter().map(c::integration).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(integration = %req.get_ref().integration.as_ref().map(|i| i.name.as_str()).unwrap_or("")))]
    async fn update_integration(&self, req: Request<pb::UpdateIntegrationRequest>) -> Result<Response<pb::Integration>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "UpdateIntegration", &r, &r.request_id);
        let body = r.integration.clone().unwrap_or_default();
        let name = v.check("integration.name", IntegrationName::parse(&body.name));
        let mut paths = c::mask_paths(&r.update_mask);
        if paths.is_empty() {
            paths = vec!["display_name".into(), "base_url".into(), "active".into()];
        }
        let mut patch = IntegrationPatch::default();
        for path in &paths {
            match path.as_str() {
                "display_name" => patch.display_name = text(&mut v, "integration.display_name", &body.display_name),
                "base_url" => patch.base_url = v.check("integration.base_url", d::base_url(&body.base_url)),
                "active" => patch.active = Some(body.active),
                other => v.add("update_mask", format!("{other:?} cannot be updated (display_name, base_url, active)")),
            }
        }
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::integration(self.control.update_integration(key, name, patch).await?)))
    }

    #[tracing::instrument(skip_all, fields(integration = %req.get_ref().name, force = req.get_ref().force))]
    async fn delete_integration(
        &self,
        req: Request<pb::DeleteIntegrationRequest>,
    ) -> Result<Response<pb::DeleteIntegrationResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeleteIntegration", &r, &r.request_id);
        let name = v.check("name", IntegrationName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        let deleted_mappings = self.control.delete_integration(key, name, r.force).await?;
        Ok(Response::new(pb::DeleteIntegrationResponse { deleted_mappings }))
    }

    #[tracing::instrument(skip_all, fields(integration = %req.get_ref().name))]
    async fn rotate_credentials(&self, req: Request<pb::RotateCredentialsRequest>) -> Result<Response<pb::Integration>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let masked = pb::RotateCredentialsRequest { api_key: self.control.sealer().request_digest(&r.api_key), ..r.clone() };
        let key = c::request_key(&mut v, "RotateCredentials", &masked, &r.request_id);
        let name = v.check("name", IntegrationName::parse(&r.name));
        let api_key = v.check("api_key", ApiKey::required(&r.api_key));
        let (key, name, api_key) = done(v, || Some((key?, name?, api_key?)))?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::integration(self.control.rotate_credentials(key, name, api_key).await?)))
    }

    #[tracing::instrument(skip_all, fields(integration = %req.get_ref().name))]
    async fn suspend_credentials(&self, req: Request<pb::SuspendCredentialsRequest>) -> Result<Response<pb::Integration>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "SuspendCredentials", &r, &r.request_id);
        let name = v.check("name", IntegrationName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::integration(self.control.set_credential_state(key, name, CredentialState::Suspended).await?)))
    }

    #[tracing::instrument(skip_all, fields(integration = %req.get_ref().name))]
    async fn restore_credentials(&self, req: Request<pb::RestoreCredentialsRequest>) -> Result<Response<pb::Integration>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "RestoreCredentials", &r, &r.request_id);
        let name = v.check("name", IntegrationName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::integration(self.control.set_credential_state(key, name, CredentialState::Active).await?)))
    }

    #[tracing::instrument(skip_all, fields(validate_only = req.get_ref().validate_only))]
    async fn reseal_credentials(
        &self,
        req: Request<pb::ResealCredentialsRequest>,
    ) -> Result<Response<pb::ResealCredentialsResponse>, Status> {
        if Principal::of(&req).environments.is_some() {
            return Err(ferry_kit::status::permission_denied("a reseal covers every environment; use a token that is not scoped"));
        }
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "ResealCredentials", &r, &r.request_id);
        let key = done(v, || key)?;
        Ok(Response::new(c::reseal_report(self.control.reseal(key, r.validate_only).await?)))
    }

    // Mappings.

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, mapping = %req.get_ref().mapping_id))]
    async fn create_mapping(&self, req: Request<pb::CreateMappingRequest>) -> Result<Response<pb::Mapping>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateMapping", &r, &r.request_id);
        let parent = v.check("parent", IntegrationName::parse(&r.parent));
        let id = v.check("mapping_id", ResourceId::parse(&r.mapping_id));
        let body = r.mapping.clone().unwrap_or_default();
        let display = text(&mut v, "mapping.display_name", &body.display_name);
        let target = if body.target_environment.is_empty() {
            Some(None)
        } else {
            v.check("mapping.target_environment", EnvName::parse(&body.target_environment)).map(Some)
        };
        let json = v.check("mapping.field_mapping_json", d::field_mapping(&body.field_mapping_json));
        let (key, parent, id, display, target, json) = done(v, || Some((key?, parent?, id?, display?, target?, json?)))?;
        scope(&p, &parent.env)?;
        let new = NewMapping {
            name: MappingName { integration: parent, id },
            display_name: display,
            target,
            active: body.active,
            field_mapping_json: json,
        };
        Ok(Response::new(c::mapping(self.control.create_mapping(key, new).await?)))
    }

    async fn get_mapping(&self, req: Request<pb::GetMappingRequest>) -> Result<Response<pb::Mapping>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let name = v.check("name", MappingName::parse(&req.get_ref().name));
        let name = done(v, || name)?;
        scope(&p, name.env())?;
        Ok(Response::new(c::mapping(self.control.get_mapping(&name).await?)))
    }

    async fn list_mappings(&self, req: Request<pb::ListMappingsRequest>) -> Result<Response<pb::ListMappingsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let parent = v.check("parent", MappingParent::parse(&r.parent));
        let list = format!("mappings:{}", r.parent);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<(String, String)>(&mut v, &list, &r.page_token);
        let (parent, size, after) = done(v, || Some((parent?, size?, after?)))?;
        scope(&p, parent.env())?;
        let page = self.control.list_mappings(&parent, after, size).await?;
        Ok(Response::new(pb::ListMappingsResponse {
            next_page_token: c::next_token(&list, &page.next),
            mappings: page.items.into_iter().map(c::mapping).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(mapping = %req.get_ref().mapping.as_ref().map(|m| m.name.as_str()).unwrap_or("")))]
    async fn update_mapping(&self, req: Request<pb::UpdateMappingRequest>) -> Result<Response<pb::Mapping>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "UpdateMapping", &r, &r.request_id);
        let body = r.mapping.clone().unwrap_or_default();
        let name = v.check("mapping.name", MappingName::parse(&body.name));
        let mut paths = c::mask_paths(&r.update_mask);
        if paths.is_empty() {
            paths = vec!["display_name".into(), "field_mapping_json".into(), "target_environment".into()];
        }
        let mut patch = MappingPatch::default();
        for path in &paths {
            match path.as_str() {
                "display_name" => patch.display_name = text(&mut v, "mapping.display_name", &body.display_name),
                "field_mapping_json" => {
                    patch.field_mapping_json = v.check("mapping.field_mapping_json", d::field_mapping(&body.field_mapping_json))
                }
                "target_environment" if body.target_environment.is_empty() => {
                    // Empty means the environment the mapping lives in.
                    patch.target = name.as_ref().map(|n| n.env().clone());
                }
                "target_environment" => patch.target = v.check("mapping.target_environment", EnvName::parse(&body.target_environment)),
                other => v.add(
                    "update_mask",
                    format!(
                        "{other:?} cannot be updated (display_name, field_mapping_json, target_environment; activation has its own calls)"
                    ),
                ),
            }
        }
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, name.env())?;
        Ok(Response::new(c::mapping(self.control.update_mapping(key, name, patch).await?)))
    }

    #[tracing::instrument(skip_all, fields(mapping = %req.get_ref().name))]
    async fn delete_mapping(&self, req: Request<pb::DeleteMappingRequest>) -> Result<Response<pb::DeleteMappingResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeleteMapping", &r, &r.request_id);
        let name = v.check("name", MappingName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, name.env())?;
        self.control.delete_mapping(key, name).await?;
        Ok(Response::new(pb::DeleteMappingResponse {}))
    }

    #[tracing::instrument(skip_all, fields(mapping = %req.get_ref().name, rebind = req.get_ref().rebind))]
    async fn activate_mapping(&self, req: Request<pb::ActivateMappingRequest>) -> Result<Response<pb::Mapping>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "ActivateMapping", &r, &r.request_id);
        let name = v.check("name", MappingName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, name.env())?;
        Ok(Response::new(c::mapping(self.control.activate_mapping(key, name, r.rebind).await?)))
    }

    #[tracing::instrument(skip_all, fields(mapping = %req.get_ref().name))]
    async fn deactivate_mapping(&self, req: Request<pb::DeactivateMappingRequest>) -> Result<Response<pb::Mapping>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeactivateMapping", &r, &r.request_id);
        let name = v.check("name", MappingName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, name.env())?;
        Ok(Response::new(c::mapping(self.control.deactivate_mapping(key, name).await?)))
    }

    // Sync jobs.

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent, job = %req.get_ref().sync_job_id))]
    async fn create_sync_job(&self, req: Request<pb::CreateSyncJobRequest>) -> Result<Response<pb::SyncJob>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "CreateSyncJob", &r, &r.request_id);
        let env = v.check("parent", EnvName::parse(&r.parent));
        let id = v.check("sync_job_id", ResourceId::parse(&r.sync_job_id));
        let body = r.sync_job.clone().unwrap_or_default();
        let display = text(&mut v, "sync_job.display_name", &body.display_name);
        let schedule = v.check("sync_job.schedule", d::schedule(&body.schedule));
        let integration = if body.integration.is_empty() {
            Some(None)
        } else {
            match IntegrationName::parse(&body.integration) {
                Ok(i) if env.as_ref().is_some_and(|e| e != &i.env) => {
                    v.add("sync_job.integration", "is an integration of another environment");
                    None
                }
                Ok(i) => Some(Some(i)),
                Err(e) => {
                    v.add("sync_job.integration", e);
                    None
                }
            }
        };
        let paused = v.check("sync_job.state", c::job_state_filter(body.state)).map(|s| s == Some(d::JobState::Paused));
        let external = v.check("sync_job.external", d::job_is_external(body.external, !body.integration.is_empty()));
        let (key, env, id, display, schedule, integration, paused, external) =
            done(v, || Some((key?, env?, id?, display?, schedule?, integration?, paused?, external?)))?;
        scope(&p, &env)?;
        let new = NewJob { name: JobName { env, id }, display_name: display, integration, schedule, paused, external };
        Ok(Response::new(c::sync_job(self.control.create_job(key, new, c::actor(&p)).await?)))
    }

    async fn get_sync_job(&self, req: Request<pb::GetSyncJobRequest>) -> Result<Response<pb::SyncJob>, Status> {
        let p = Principal::of(&req);
        let mut v = Violations::new();
        let name = v.check("name", JobName::parse(&req.get_ref().name));
        let name = done(v, || name)?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::sync_job(self.control.get_job(&name).await?)))
    }

    async fn list_sync_jobs(&self, req: Request<pb::ListSyncJobsRequest>) -> Result<Response<pb::ListSyncJobsResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let env = v.check("parent", EnvName::parse(&r.parent));
        let state = v.check("state", c::job_state_filter(r.state));
        let list = format!("jobs:{}:{}", r.parent, r.state);
        let size = c::page_size(&mut v, r.page_size);
        let after = c::page_token::<String>(&mut v, &list, &r.page_token);
        let (env, state, size, after) = done(v, || Some((env?, state?, size?, after?)))?;
        scope(&p, &env)?;
        let page = self.control.list_jobs(&env, state, after, size).await?;
        Ok(Response::new(pb::ListSyncJobsResponse {
            next_page_token: c::next_token(&list, &page.next),
            sync_jobs: page.items.into_iter().map(c::sync_job).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(job = %req.get_ref().name))]
    async fn delete_sync_job(&self, req: Request<pb::DeleteSyncJobRequest>) -> Result<Response<pb::DeleteSyncJobResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "DeleteSyncJob", &r, &r.request_id);
        let name = v.check("name", JobName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        self.control.delete_job(key, name).await?;
        Ok(Response::new(pb::DeleteSyncJobResponse {}))
    }

    #[tracing::instrument(skip_all, fields(job = %req.get_ref().name))]
    async fn pause_sync_job(&self, req: Request<pb::PauseSyncJobRequest>) -> Result<Response<pb::SyncJob>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "PauseSyncJob", &r, &r.request_id);
        let name = v.check("name", JobName::parse(&r.name));
        let reason = text(&mut v, "reason", &r.reason);
        let (key, name, reason) = done(v, || Some((key?, name?, reason?)))?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::sync_job(self.control.pause_job(key, name, reason, c::actor(&p)).await?)))
    }

    #[tracing::instrument(skip_all, fields(job = %req.get_ref().name))]
    async fn resume_sync_job(&self, req: Request<pb::ResumeSyncJobRequest>) -> Result<Response<pb::SyncJob>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let key = c::request_key(&mut v, "ResumeSyncJob", &r, &r.request_id);
        let name = v.check("name", JobName::parse(&r.name));
        let (key, name) = done(v, || Some((key?, name?)))?;
        scope(&p, &name.env)?;
        Ok(Response::new(c::sync_job(self.control.resume_job(key, name).await?)))
    }

    // Snapshots and the coordinator's bulk steps (`steps.rs`).

    #[tracing::instrument(skip_all, fields(parent = %req.get_ref().parent))]
    async fn create_snapshot(&self, req: Request<pb::CreateSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
        super::steps::create_snapshot(&self.control, req).await
    }

    async fn get_snapshot(&self, req: Request<pb::GetSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
        super::steps::get_snapshot(&self.control, req).await
    }

    async fn list_snapshots(&self, req: Request<pb::ListSnapshotsRequest>) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        super::steps::list_snapshots(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(snapshot = %req.get_ref().name, environment = %req.get_ref().environment))]
    async fn restore_snapshot(&self, req: Request<pb::RestoreSnapshotRequest>) -> Result<Response<pb::ChangeSet>, Status> {
        super::steps::restore_snapshot(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(environment = %req.get_ref().environment, suspend = req.get_ref().suspend_credentials_instead))]
    async fn deactivate_integrations(&self, req: Request<pb::DeactivateIntegrationsRequest>) -> Result<Response<pb::ChangeSet>, Status> {
        super::steps::deactivate_integrations(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(environment = %req.get_ref().environment))]
    async fn reactivate_integrations(&self, req: Request<pb::ReactivateIntegrationsRequest>) -> Result<Response<pb::ChangeSet>, Status> {
        super::steps::reactivate_integrations(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(environment = %req.get_ref().environment, actor = %req.get_ref().actor))]
    async fn pause_sync_jobs(&self, req: Request<pb::PauseSyncJobsRequest>) -> Result<Response<pb::ChangeSet>, Status> {
        super::steps::pause_sync_jobs(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(environment = %req.get_ref().environment))]
    async fn resume_sync_jobs(&self, req: Request<pb::ResumeSyncJobsRequest>) -> Result<Response<pb::ChangeSet>, Status> {
        super::steps::resume_sync_jobs(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(source = %req.get_ref().source, destination = %req.get_ref().destination))]
    async fn copy_integrations(&self, req: Request<pb::CopyIntegrationsRequest>) -> Result<Response<pb::ChangeSet>, Status> {
        super::steps::copy_integrations(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(environment = %req.get_ref().environment))]
    async fn disable_foreign_mappings(&self, req: Request<pb::DisableForeignMappingsRequest>) -> Result<Response<pb::ChangeSet>, Status> {
        super::steps::disable_foreign_mappings(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(environment = %req.get_ref().environment))]
    async fn activate_provisioned_mappings(
        &self,
        req: Request<pb::ActivateProvisionedMappingsRequest>,
    ) -> Result<Response<pb::ChangeSet>, Status> {
        super::steps::activate_provisioned_mappings(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(environment = %req.get_ref().environment, holder = %req.get_ref().holder))]
    async fn fence_environment(&self, req: Request<pb::FenceEnvironmentRequest>) -> Result<Response<pb::ChangeSet>, Status> {
        super::steps::fence_environment(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(environment = %req.get_ref().environment, holder = %req.get_ref().holder, force = req.get_ref().force))]
    async fn unfence_environment(&self, req: Request<pb::UnfenceEnvironmentRequest>) -> Result<Response<pb::ChangeSet>, Status> {
        super::steps::unfence_environment(&self.control, req).await
    }

    async fn get_environment_fence(&self, req: Request<pb::GetEnvironmentFenceRequest>) -> Result<Response<pb::EnvironmentFence>, Status> {
        super::steps::get_environment_fence(&self.control, req).await
    }

    // Sync authorisation.

    async fn authorize_sync(&self, req: Request<pb::AuthorizeSyncRequest>) -> Result<Response<pb::AuthorizeSyncResponse>, Status> {
        let p = Principal::of(&req);
        let r = req.into_inner();
        let mut v = Violations::new();
        let (mapping, job) = c::mapping_and_job(&mut v, &r.mapping, &r.job);
        let (mapping, job) = done(v, || Some((mapping?, job?)))?;
        scope(&p, mapping.env())?;
        let decision = self.control.authorize_sync(&mapping, job.as_ref()).await?;
        if let Some((reason, message)) = decision.reasons.first() {
            tracing::info!(mapping = %mapping, reason = ?reason, %message, "sync denied");
        }
        Ok(Response::new(c::decision(decision)))
    }

    // Sync leases (`leases.rs`).

    #[tracing::instrument(skip_all, fields(mapping = %req.get_ref().mapping))]
    async fn acquire_sync_lease(&self, req: Request<pb::AcquireSyncLeaseRequest>) -> Result<Response<pb::SyncLease>, Status> {
        super::leases::acquire(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(lease = %req.get_ref().name))]
    async fn renew_sync_lease(&self, req: Request<pb::RenewSyncLeaseRequest>) -> Result<Response<pb::SyncLease>, Status> {
        super::leases::renew(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(lease = %req.get_ref().name))]
    async fn release_sync_lease(&self, req: Request<pb::ReleaseSyncLeaseRequest>) -> Result<Response<pb::SyncLease>, Status> {
        super::leases::release(&self.control, req).await
    }

    async fn list_sync_leases(&self, req: Request<pb::ListSyncLeasesRequest>) -> Result<Response<pb::ListSyncLeasesResponse>, Status> {
        super::leases::list(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(environment = %req.get_ref().parent))]
    async fn revoke_sync_leases(
        &self,
        req: Request<pb::RevokeSyncLeasesRequest>,
    ) -> Result<Response<pb::RevokeSyncLeasesResponse>, Status> {
        super::leases::revoke(&self.control, req).await
    }

    // Webhooks.

    #[tracing::instrument(skip_all, fields(subscription = %req.get_ref().webhook_subscription_id))]
    async fn create_webhook_subscription(
        &self,
        req: Request<pb::CreateWebhookSubscriptionRequest>,
    ) -> Result<Response<pb::WebhookSubscription>, Status> {
        super::webhooks::create(&self.control, req).await
    }

    async fn get_webhook_subscription(
        &self,
        req: Request<pb::GetWebhookSubscriptionRequest>,
    ) -> Result<Response<pb::WebhookSubscription>, Status> {
        super::webhooks::get(&self.control, req).await
    }

    async fn list_webhook_subscriptions(
        &self,
        req: Request<pb::ListWebhookSubscriptionsRequest>,
    ) -> Result<Response<pb::ListWebhookSubscriptionsResponse>, Status> {
        super::webhooks::list(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(subscription = %req.get_ref().webhook_subscription.as_ref().map(|s| s.name.as_str()).unwrap_or("")))]
    async fn update_webhook_subscription(
        &self,
        req: Request<pb::UpdateWebhookSubscriptionRequest>,
    ) -> Result<Response<pb::WebhookSubscription>, Status> {
        super::webhooks::update(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(subscription = %req.get_ref().name))]
    async fn delete_webhook_subscription(
        &self,
        req: Request<pb::DeleteWebhookSubscriptionRequest>,
    ) -> Result<Response<pb::DeleteWebhookSubscriptionResponse>, Status> {
        super::webhooks::delete(&self.control, req).await
    }

    async fn list_webhook_deliveries(
        &self,
        req: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        super::webhooks::deliveries(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(delivery = %req.get_ref().name))]
    async fn redeliver_webhook(&self, req: Request<pb::RedeliverWebhookRequest>) -> Result<Response<pb::WebhookDelivery>, Status> {
        super::webhooks::redeliver(&self.control, req).await
    }

    #[tracing::instrument(skip_all, fields(events = req.get_ref().events.len()))]
    async fn publish_events(&self, req: Request<pb::PublishEventsRequest>) -> Result<Response<pb::PublishEventsResponse>, Status> {
        super::webhooks::publish(&self.control, req).await
    }
}

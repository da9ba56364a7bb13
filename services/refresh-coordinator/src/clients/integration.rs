//! integration-control: the inventory a plan reads, snapshots, and the bulk steps of the
//! refresh checklist. Each bulk call answers a ChangeSet; the undo calls take one back.

use ferry_kit::client::all_pages;
use ferry_proto::integration::v1 as ipb;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;

use super::{Svc, micros};
use crate::domain::remote::{
    ChangeSet, CredentialState, IntegrationInfo, JobState, MappingInfo, ResourceChange, ResourceState, Snapshot, SyncJobInfo,
};
use crate::domain::{EnvName, LeftAlone};
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct IntegrationClient(IntegrationServiceClient<Svc>);

fn remote(status: tonic::Status) -> Error {
    Error::Remote { service: "integration-control", status }
}

fn job_state(n: i32) -> JobState {
    match ipb::SyncJobState::try_from(n) {
        Ok(ipb::SyncJobState::Running) => JobState::Running,
        Ok(ipb::SyncJobState::Paused) => JobState::Paused,
        _ => JobState::Unspecified,
    }
}

fn job_state_pb(s: JobState) -> i32 {
    (match s {
        JobState::Unspecified => ipb::SyncJobState::Unspecified,
        JobState::Running => ipb::SyncJobState::Running,
        JobState::Paused => ipb::SyncJobState::Paused,
    }) as i32
}

fn credential(n: i32) -> CredentialState {
    match ipb::CredentialState::try_from(n) {
        Ok(ipb::CredentialState::Active) => CredentialState::Active,
        Ok(ipb::CredentialState::Suspended) => CredentialState::Suspended,
        Ok(ipb::CredentialState::None) => CredentialState::None,
        _ => CredentialState::Unspecified,
    }
}

fn credential_pb(c: CredentialState) -> i32 {
    (match c {
        CredentialState::Unspecified => ipb::CredentialState::Unspecified,
        CredentialState::Active => ipb::CredentialState::Active,
        CredentialState::Suspended => ipb::CredentialState::Suspended,
        CredentialState::None => ipb::CredentialState::None,
    }) as i32
}

fn state(s: ipb::ResourceState) -> ResourceState {
    ResourceState {
        exists: s.exists,
        active: s.active,
        credential_state: credential(s.credential_state),
        sync_job_state: job_state(s.sync_job_state),
        paused_by: s.paused_by,
        fenced: s.fenced,
        bound_environment: s.bound_environment,
        fence_holder: s.fence_holder,
    }
}

fn state_pb(s: &ResourceState) -> ipb::ResourceState {
    ipb::ResourceState {
        exists: s.exists,
        active: s.active,
        credential_state: credential_pb(s.credential_state),
        sync_job_state: job_state_pb(s.sync_job_state),
        paused_by: s.paused_by.clone(),
        fenced: s.fenced,
        bound_environment: s.bound_environment.clone(),
        fence_holder: s.fence_holder.clone(),
    }
}

/// A ChangeSet as the coordinator records it.
pub(crate) fn change_set(cs: ipb::ChangeSet) -> ChangeSet {
    ChangeSet {
        environment: cs.environment,
        changes: cs
            .changes
            .into_iter()
            .map(|c| ResourceChange {
                resource: c.resource,
                resource_type: c.resource_type,
                before: c.before.map(state),
                after: c.after.map(state),
            })
            .collect(),
        skipped: cs.skipped.into_iter().map(|s| LeftAlone { resource: s.resource, reason: s.reason }).collect(),
        change_time: micros(cs.change_time),
    }
}

/// A recorded ChangeSet as it came (for the undo calls, which take it back).
fn change_set_pb(cs: &ChangeSet) -> ipb::ChangeSet {
    ipb::ChangeSet {
        environment: cs.environment.clone(),
        changes: cs
            .changes
            .iter()
            .map(|c| ipb::Change {
                resource: c.resource.clone(),
                resource_type: c.resource_type,
                before: c.before.as_ref().map(state_pb),
                after: c.after.as_ref().map(state_pb),
            })
            .collect(),
        skipped: cs.skipped.iter().map(|s| ipb::SkippedResource { resource: s.resource.clone(), reason: s.reason.clone() }).collect(),
        change_time: (cs.change_time != 0).then(|| ferry_kit::db::timestamp(cs.change_time)),
    }
}

pub(crate) fn snapshot(s: ipb::Snapshot) -> Snapshot {
    Snapshot {
        name: s.name,
        integration_count: s.integration_count,
        mapping_count: s.mapping_count,
        sync_job_count: s.sync_job_count,
        checksum: s.checksum,
        integrations: s.integrations.into_iter().map(|i| i.name).collect(),
        mappings: s.mappings.into_iter().map(|m| m.name).collect(),
    }
}

impl IntegrationClient {
    pub(super) fn new(svc: Svc) -> Self {
        Self(IntegrationServiceClient::new(svc))
    }

    /// Hands this outbox's events to integration-control, which delivers them to the
    /// webhook subscriptions (idempotent by event id, so a relay retry never duplicates).
    pub async fn publish_events(&self, events: Vec<ferry_kit::outbox::Event>) -> Result<()> {
        let events = events
            .into_iter()
            .map(|e| ipb::Event {
                id: e.id,
                r#type: e.kind,
                time: Some(ferry_kit::db::timestamp(e.time)),
                environment: e.environment,
                resource: e.resource,
                data_json: e.data.to_string(),
            })
            .collect();
        self.0.clone().publish_events(ipb::PublishEventsRequest { events }).await.map_err(remote)?;
        Ok(())
    }

    fn c(&self) -> IntegrationServiceClient<Svc> {
        self.0.clone()
    }

    pub async fn integrations(&self, env: &EnvName) -> Result<Vec<IntegrationInfo>> {
        let parent = env.to_string();
        let all: Vec<ipb::Integration> = all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.c(), parent.clone());
            async move {
                let r =
                    c.list_integrations(ipb::ListIntegrationsRequest { parent, page_size, page_token }).await.map_err(remote)?.into_inner();
                Ok::<_, Error>((r.integrations, r.next_page_token))
            }
        })
        .await?;
        Ok(all.into_iter().map(|i| IntegrationInfo { name: i.name, active: i.active }).collect())
    }

    pub async fn mappings(&self, env: &EnvName) -> Result<Vec<MappingInfo>> {
        let parent = format!("{env}/integrations/-");
        let all: Vec<ipb::Mapping> = all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.c(), parent.clone());
            async move {
                let r = c.list_mappings(ipb::ListMappingsRequest { parent, page_size, page_token }).await.map_err(remote)?.into_inner();
                Ok::<_, Error>((r.mappings, r.next_page_token))
            }
        })
        .await?;
        Ok(all.into_iter().map(|m| MappingInfo { name: m.name, active: m.active, target_environment: m.target_environment }).collect())
    }

    pub async fn jobs(&self, env: &EnvName) -> Result<Vec<SyncJobInfo>> {
        let parent = env.to_string();
        let all: Vec<ipb::SyncJob> = all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.c(), parent.clone());
            async move {
                let r = c
                    .list_sync_jobs(ipb::ListSyncJobsRequest { parent, page_size, page_token, state: 0 })
                    .await
                    .map_err(remote)?
                    .into_inner();
                Ok::<_, Error>((r.sync_jobs, r.next_page_token))
            }
        })
        .await?;
        Ok(all.into_iter().map(|j| SyncJobInfo { name: j.name, external: j.external != Some(false), state: job_state(j.state) }).collect())
    }

    /// The snapshot with the names of everything it holds.
    pub async fn snapshot(&self, name: &str) -> Result<Snapshot> {
        let req = ipb::GetSnapshotRequest { name: name.to_owned(), view: ipb::SnapshotView::Full as i32 };
        Ok(snapshot(self.c().get_snapshot(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn create_snapshot(&self, env: &EnvName, snapshot_id: String, description: String, request_id: String) -> Result<Snapshot> {
        let req = ipb::CreateSnapshotRequest { parent: env.to_string(), snapshot_id, description, request_id };
        Ok(snapshot(self.c().create_snapshot(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn restore_snapshot(&self, name: &str, env: &EnvName, resources: Vec<String>, request_id: String) -> Result<ChangeSet> {
        let req = ipb::RestoreSnapshotRequest { name: name.to_owned(), environment: env.to_string(), resources, request_id };
        Ok(change_set(self.c().restore_snapshot(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn deactivate(&self, env: &EnvName, suspend_credentials_instead: bool, request_id: String) -> Result<ChangeSet> {
        let req = ipb::DeactivateIntegrationsRequest { environment: env.to_string(), suspend_credentials_instead, request_id };
        Ok(change_set(self.c().deactivate_integrations(req).await.map_err(remote)?.into_inner()))
    }

    /// Re-activates exactly what `deactivated` changed.
    pub async fn reactivate(&self, env: &EnvName, deactivated: &ChangeSet, request_id: String) -> Result<ChangeSet> {
        let req = ipb::ReactivateIntegrationsRequest {
            environment: env.to_string(),
            change_set: Some(change_set_pb(deactivated)),
            integrations: Vec::new(),
            request_id,
        };
        Ok(change_set(self.c().reactivate_integrations(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn pause(&self, env: &EnvName, actor: String, reason: String, request_id: String) -> Result<ChangeSet> {
        let req = ipb::PauseSyncJobsRequest { environment: env.to_string(), actor, reason, request_id };
        Ok(change_set(self.c().pause_sync_jobs(req).await.map_err(remote)?.into_inner()))
    }

    /// Resumes exactly what `paused` changed.
    pub async fn resume(&self, env: &EnvName, paused: &ChangeSet, request_id: String) -> Result<ChangeSet> {
        let req = ipb::ResumeSyncJobsRequest {
            environment: env.to_string(),
            change_set: Some(change_set_pb(paused)),
            sync_jobs: Vec::new(),
            request_id,
        };
        Ok(change_set(self.c().resume_sync_jobs(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn copy_integrations(&self, source: &EnvName, destination: &EnvName, request_id: String) -> Result<ChangeSet> {
        let req = ipb::CopyIntegrationsRequest { source: source.to_string(), destination: destination.to_string(), request_id };
        Ok(change_set(self.c().copy_integrations(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn disable_foreign(&self, env: &EnvName, request_id: String) -> Result<ChangeSet> {
        let req = ipb::DisableForeignMappingsRequest { environment: env.to_string(), request_id };
        Ok(change_set(self.c().disable_foreign_mappings(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn activate_provisioned(&self, env: &EnvName, request_id: String) -> Result<ChangeSet> {
        let req = ipb::ActivateProvisionedMappingsRequest { environment: env.to_string(), mappings: Vec::new(), request_id };
        Ok(change_set(self.c().activate_provisioned_mappings(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn fence(
        &self,
        env: &EnvName,
        holder: String,
        reason: String,
        include_resources: bool,
        request_id: String,
    ) -> Result<ChangeSet> {
        let req = ipb::FenceEnvironmentRequest { environment: env.to_string(), holder, reason, include_resources, request_id };
        Ok(change_set(self.c().fence_environment(req).await.map_err(remote)?.into_inner()))
    }

    pub async fn unfence(&self, env: &EnvName, holder: String, request_id: String) -> Result<ChangeSet> {
        let req = ipb::UnfenceEnvironmentRequest { environment: env.to_string(), holder, force: false, request_id };
        Ok(change_set(self.c().unfence_environment(req).await.map_err(remote)?.into_inner()))
    }

    /// Revokes every outstanding sync lease of `env`; the names revoked.
    pub async fn revoke_leases(&self, env: &EnvName, reason: String, request_id: String) -> Result<Vec<String>> {
        let req = ipb::RevokeSyncLeasesRequest { parent: env.to_string(), reason, request_id };
        Ok(self.c().revoke_sync_leases(req).await.map_err(remote)?.into_inner().revoked)
    }

    /// The sync leases of `env` whose syncs may still run, as "NAME (HOLDER, until TIME)".
    pub async fn leases_in_flight(&self, env: &EnvName) -> Result<Vec<String>> {
        let parent = env.to_string();
        let all: Vec<ipb::SyncLease> = all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.c(), parent.clone());
            async move {
                let req = ipb::ListSyncLeasesRequest { parent, page_size, page_token, show_ended: false, in_flight: true };
                let r = c.list_sync_leases(req).await.map_err(remote)?.into_inner();
                Ok::<_, Error>((r.sync_leases, r.next_page_token))
            }
        })
        .await?;
        Ok(all.into_iter().map(|l| format!("{} ({}, until {})", l.name, l.holder, ferry_kit::db::rfc3339(micros(l.expire_time)))).collect())
    }
}

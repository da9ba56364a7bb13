//! Clients of the services the coordinator drives: the registry (tiers, counts,
//! environment copy) and integration-control (the bulk steps). Every call presents the
//! service token and the current trace context (`ClientInterceptor`). Proto types of
//! those services appear here and in the step code that passes them through unchanged
//! (a ChangeSet is recorded and later handed back as it came).

use ferry_kit::client::{ClientInterceptor, ClientTls, all_pages, channel_with};
use ferry_proto::common::v1::EnvironmentTier;
use ferry_proto::integration::v1 as ipb;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;
use ferry_proto::merge::v1 as mpb;
use ferry_proto::merge::v1::merge_service_client::MergeServiceClient;
use ferry_proto::registry::v1 as rpb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::domain::EnvName;
use crate::error::{Error, Result};

type Svc = InterceptedService<Channel, ClientInterceptor>;

#[derive(Clone)]
pub struct Remote {
    pub registry: RegistryServiceClient<Svc>,
    pub integration: IntegrationServiceClient<Svc>,
    pub merge: MergeServiceClient<Svc>,
}

fn reg(status: tonic::Status) -> Error {
    Error::Remote { service: "group-registry", status }
}

fn merge(status: tonic::Status) -> Error {
    Error::Remote { service: "merge-engine", status }
}

fn ic(status: tonic::Status) -> Error {
    Error::Remote { service: "integration-control", status }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Production,
    NonProduction,
}

impl Remote {
    pub fn connect(
        registry_url: &str,
        integration_url: &str,
        merge_url: &str,
        token: Option<&str>,
        tls: &ClientTls,
    ) -> Result<Self, ferry_kit::Error> {
        let interceptor = ClientInterceptor::new(token)?;
        Ok(Self {
            registry: RegistryServiceClient::with_interceptor(channel_with(registry_url, tls)?, interceptor.clone()),
            integration: IntegrationServiceClient::with_interceptor(channel_with(integration_url, tls)?, interceptor.clone()),
            merge: MergeServiceClient::with_interceptor(channel_with(merge_url, tls)?, interceptor),
        })
    }

    pub async fn get_merge_plan(&self, name: &str) -> Result<mpb::MergePlan> {
        self.merge.clone().get_merge_plan(mpb::GetMergePlanRequest { name: name.to_owned() }).await.map(|r| r.into_inner()).map_err(merge)
    }

    pub async fn create_merge_plan(&self, req: mpb::CreateMergePlanRequest) -> Result<mpb::MergePlan> {
        self.merge.clone().create_merge_plan(req).await.map(|r| r.into_inner()).map_err(merge)
    }

    pub async fn apply_merge_plan(&self, req: mpb::ApplyMergePlanRequest) -> Result<mpb::Job> {
        self.merge.clone().apply_merge_plan(req).await.map(|r| r.into_inner()).map_err(merge)
    }

    pub async fn merge_project(&self, req: mpb::MergeProjectRequest) -> Result<mpb::Job> {
        self.merge.clone().merge_project(req).await.map(|r| r.into_inner()).map_err(merge)
    }

    pub async fn revert_merge(&self, req: mpb::RevertMergeRequest) -> Result<mpb::Job> {
        self.merge.clone().revert_merge(req).await.map(|r| r.into_inner()).map_err(merge)
    }

    pub async fn cancel_job(&self, req: mpb::CancelJobRequest) -> Result<mpb::Job> {
        self.merge.clone().cancel_job(req).await.map(|r| r.into_inner()).map_err(merge)
    }

    pub async fn get_job(&self, name: &str) -> Result<mpb::Job> {
        self.merge.clone().get_job(mpb::GetJobRequest { name: name.to_owned() }).await.map(|r| r.into_inner()).map_err(merge)
    }

    pub async fn plan_project_merge(&self, req: mpb::PlanProjectMergeRequest) -> Result<mpb::ProjectMergePlan> {
        self.merge
            .clone()
            .plan_project_merge(req)
            .await
            .map(|r| r.into_inner())
            .map_err(|status| Error::Remote { service: "merge-engine", status })
    }

    /// The tier of `env`; NOT_FOUND when the registry does not know it.
    pub async fn tier(&self, env: &EnvName) -> Result<Tier> {
        match self.registry.clone().get_environment(rpb::GetEnvironmentRequest { name: env.to_string() }).await {
            Ok(e) => match EnvironmentTier::try_from(e.into_inner().tier) {
                Ok(EnvironmentTier::Production) => Ok(Tier::Production),
                _ => Ok(Tier::NonProduction),
            },
            Err(s) if s.code() == tonic::Code::NotFound => Err(Error::not_found("environment", env)),
            Err(s) => Err(reg(s)),
        }
    }

    pub async fn groups(&self, env: &EnvName) -> Result<Vec<rpb::Group>> {
        let parent = env.to_string();
        all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.registry.clone(), parent.clone());
            async move {
                let r = c.list_groups(rpb::ListGroupsRequest { parent, page_size, page_token }).await.map_err(reg)?.into_inner();
                Ok((r.groups, r.next_page_token))
            }
        })
        .await
    }

    pub async fn project_count(&self, env: &EnvName) -> Result<i64> {
        let parent = env.to_string();
        let projects: Vec<rpb::Project> = all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.registry.clone(), parent.clone());
            async move {
                let r = c.list_projects(rpb::ListProjectsRequest { parent, page_size, page_token }).await.map_err(reg)?.into_inner();
                Ok::<_, Error>((r.projects, r.next_page_token))
            }
        })
        .await?;
        Ok(projects.len() as i64)
    }

    pub async fn copy_environment(&self, req: rpb::CopyEnvironmentRequest) -> Result<rpb::CopyEnvironmentResponse> {
        self.registry.clone().copy_environment(req).await.map(|r| r.into_inner()).map_err(reg)
    }

    pub async fn integrations(&self, env: &EnvName) -> Result<Vec<ipb::Integration>> {
        let parent = env.to_string();
        all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.integration.clone(), parent.clone());
            async move {
                let r = c.list_integrations(ipb::ListIntegrationsRequest { parent, page_size, page_token }).await.map_err(ic)?.into_inner();
                Ok((r.integrations, r.next_page_token))
            }
        })
        .await
    }

    pub async fn mappings(&self, env: &EnvName) -> Result<Vec<ipb::Mapping>> {
        let parent = format!("{env}/integrations/-");
        all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.integration.clone(), parent.clone());
            async move {
                let r = c.list_mappings(ipb::ListMappingsRequest { parent, page_size, page_token }).await.map_err(ic)?.into_inner();
                Ok((r.mappings, r.next_page_token))
            }
        })
        .await
    }

    pub async fn jobs(&self, env: &EnvName) -> Result<Vec<ipb::SyncJob>> {
        let parent = env.to_string();
        all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.integration.clone(), parent.clone());
            async move {
                let r =
                    c.list_sync_jobs(ipb::ListSyncJobsRequest { parent, page_size, page_token, state: 0 }).await.map_err(ic)?.into_inner();
                Ok((r.sync_jobs, r.next_page_token))
            }
        })
        .await
    }

    pub async fn snapshot(&self, name: &str) -> Result<ipb::Snapshot> {
        self.integration
            .clone()
            .get_snapshot(ipb::GetSnapshotRequest { name: name.to_owned(), view: ipb::SnapshotView::Full as i32 })
            .await
            .map(|r| r.into_inner())
            .map_err(ic)
    }

    pub async fn create_snapshot(&self, req: ipb::CreateSnapshotRequest) -> Result<ipb::Snapshot> {
        self.integration.clone().create_snapshot(req).await.map(|r| r.into_inner()).map_err(ic)
    }

    pub async fn restore_snapshot(&self, req: ipb::RestoreSnapshotRequest) -> Result<ipb::ChangeSet> {
        self.integration.clone().restore_snapshot(req).await.map(|r| r.into_inner()).map_err(ic)
    }

    pub async fn deactivate(&self, req: ipb::DeactivateIntegrationsRequest) -> Result<ipb::ChangeSet> {
        self.integration.clone().deactivate_integrations(req).await.map(|r| r.into_inner()).map_err(ic)
    }

    pub async fn reactivate(&self, req: ipb::ReactivateIntegrationsRequest) -> Result<ipb::ChangeSet> {
        self.integration.clone().reactivate_integrations(req).await.map(|r| r.into_inner()).map_err(ic)
    }

    pub async fn pause(&self, req: ipb::PauseSyncJobsRequest) -> Result<ipb::ChangeSet> {
        self.integration.clone().pause_sync_jobs(req).await.map(|r| r.into_inner()).map_err(ic)
    }

    pub async fn resume(&self, req: ipb::ResumeSyncJobsRequest) -> Result<ipb::ChangeSet> {
        self.integration.clone().resume_sync_jobs(req).await.map(|r| r.into_inner()).map_err(ic)
    }

    pub async fn copy_integrations(&self, req: ipb::CopyIntegrationsRequest) -> Result<ipb::ChangeSet> {
        self.integration.clone().copy_integrations(req).await.map(|r| r.into_inner()).map_err(ic)
    }

    pub async fn disable_foreign(&self, req: ipb::DisableForeignMappingsRequest) -> Result<ipb::ChangeSet> {
        self.integration.clone().disable_foreign_mappings(req).await.map(|r| r.into_inner()).map_err(ic)
    }

    pub async fn activate_provisioned(&self, req: ipb::ActivateProvisionedMappingsRequest) -> Result<ipb::ChangeSet> {
        self.integration.clone().activate_provisioned_mappings(req).await.map(|r| r.into_inner()).map_err(ic)
    }

    pub async fn fence(&self, req: ipb::FenceEnvironmentRequest) -> Result<ipb::ChangeSet> {
        self.integration.clone().fence_environment(req).await.map(|r| r.into_inner()).map_err(ic)
    }

    pub async fn unfence(&self, req: ipb::UnfenceEnvironmentRequest) -> Result<ipb::ChangeSet> {
        self.integration.clone().unfence_environment(req).await.map(|r| r.into_inner()).map_err(ic)
    }
}

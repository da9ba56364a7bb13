//! group-registry: environment tiers, group and project counts, the environment copy,
//! restore points.

use ferry_kit::client::all_pages;
use ferry_proto::common::v1::{self as pc, EnvironmentTier};
use ferry_proto::registry::v1 as rpb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;

use super::Svc;
use crate::domain::remote::{CopyResult, GroupInfo, RestorePoint, Restored, Tier};
use crate::domain::{EnvName, KindCounts, Profile, Selector};
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct RegistryClient(RegistryServiceClient<Svc>);

fn remote(status: tonic::Status) -> Error {
    Error::remote("group-registry", status)
}

impl RegistryClient {
    pub(super) fn new(svc: Svc) -> Self {
        Self(RegistryServiceClient::new(svc))
    }

    /// The tier of `env`; NOT_FOUND when the registry does not know it.
    pub async fn tier(&self, env: &EnvName) -> Result<Tier> {
        match self.0.clone().get_environment(rpb::GetEnvironmentRequest { name: env.to_string() }).await {
            Ok(e) => Ok(match EnvironmentTier::try_from(e.into_inner().tier) {
                Ok(EnvironmentTier::Production) => Tier::Production,
                _ => Tier::NonProduction,
            }),
            Err(s) if s.code() == tonic::Code::NotFound => Err(Error::not_found("environment", env)),
            Err(s) => Err(remote(s)),
        }
    }

    pub async fn groups(&self, env: &EnvName) -> Result<Vec<GroupInfo>> {
        let parent = env.to_string();
        let groups: Vec<rpb::Group> = all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.0.clone(), parent.clone());
            async move {
                let r = c.list_groups(rpb::ListGroupsRequest { parent, page_size, page_token }).await.map_err(remote)?.into_inner();
                Ok::<_, Error>((r.groups, r.next_page_token))
            }
        })
        .await?;
        Ok(groups.into_iter().map(|g| GroupInfo { name: g.name, entity_count: g.entity_count, revision: g.revision }).collect())
    }

    pub async fn project_count(&self, env: &EnvName) -> Result<i64> {
        let parent = env.to_string();
        let projects: Vec<rpb::Project> = all_pages(None, |page_size, page_token| {
            let (mut c, parent) = (self.0.clone(), parent.clone());
            async move {
                let r = c.list_projects(rpb::ListProjectsRequest { parent, page_size, page_token }).await.map_err(remote)?.into_inner();
                Ok::<_, Error>((r.projects, r.next_page_token))
            }
        })
        .await?;
        Ok(projects.len() as i64)
    }

    /// Copies `source` over `destination` as `profile` says; with `validate_only`, counts
    /// what it would do and writes nothing.
    pub async fn copy_environment(
        &self,
        source: &EnvName,
        destination: &EnvName,
        profile: &Profile,
        validate_only: bool,
        request_id: String,
    ) -> Result<CopyResult> {
        let req = rpb::CopyEnvironmentRequest {
            source: source.to_string(),
            destination: destination.to_string(),
            request_id,
            profile: (!profile.is_empty()).then(|| profile_pb(profile)),
            validate_only,
        };
        Ok(copy_result(self.0.clone().copy_environment(req).await.map_err(remote)?.into_inner()))
    }

    /// Takes restore point `id` of `env`, naming the run and the integration snapshot.
    pub async fn create_restore_point(
        &self,
        env: &EnvName,
        id: String,
        run: String,
        snapshot: String,
        description: String,
        request_id: String,
    ) -> Result<RestorePoint> {
        let req = rpb::CreateRestorePointRequest {
            parent: env.to_string(),
            restore_point_id: id,
            restore_point: Some(rpb::RestorePoint { run, integration_snapshot: snapshot, description, ..Default::default() }),
            request_id,
        };
        Ok(restore_point(self.0.clone().create_restore_point(req).await.map_err(remote)?.into_inner()))
    }

    /// Restore point `name`; NOT_FOUND when it does not exist (deleted, or pruned after it
    /// expired).
    pub async fn restore_point(&self, name: &str) -> Result<RestorePoint> {
        match self.0.clone().get_restore_point(rpb::GetRestorePointRequest { name: name.to_owned() }).await {
            Ok(p) => Ok(restore_point(p.into_inner())),
            Err(s) if s.code() == tonic::Code::NotFound => Err(Error::not_found("restore point", name)),
            Err(s) => Err(remote(s)),
        }
    }

    /// Puts restore point `name`'s content back into its environment.
    pub async fn restore_environment(&self, name: &str, request_id: String) -> Result<Restored> {
        let req = rpb::RestoreEnvironmentRequest { restore_point: name.to_owned(), request_id };
        let r = self.0.clone().restore_environment(req).await.map_err(remote)?.into_inner();
        Ok(Restored {
            restore_point: r.restore_point.map(restore_point).unwrap_or_default(),
            replaced_groups: r.replaced_groups,
            replaced_entities: r.replaced_entities,
            replaced_projects: r.replaced_projects,
        })
    }
}

fn restore_point(p: rpb::RestorePoint) -> RestorePoint {
    let c = p.counts.unwrap_or_default();
    RestorePoint {
        name: p.name,
        groups: c.groups,
        entities: c.entities,
        links: c.links,
        projects: c.projects,
        config_items: c.config_items,
        expire_time: super::micros(p.expire_time),
    }
}

pub(crate) fn copy_result(r: rpb::CopyEnvironmentResponse) -> CopyResult {
    CopyResult {
        groups: r.groups,
        entities: r.entities,
        links: r.links,
        projects: r.projects,
        config_items: r.config_items,
        replaced_groups: r.replaced_groups,
        replaced_entities: r.replaced_entities,
        replaced_projects: r.replaced_projects,
        by_kind: r
            .by_kind
            .iter()
            .map(|k| KindCounts { kind: k.kind, copied: k.copied, masked: k.masked, excluded: k.excluded, preserved: k.preserved })
            .collect(),
        preserved_groups: r.preserved_groups,
        preserved_projects: r.preserved_projects,
        excluded_projects: r.excluded_projects,
    }
}

/// A profile as the registry takes it (and as the coordinator's own API shows it).
pub(crate) fn profile_pb(p: &Profile) -> pc::CopyProfile {
    let selectors = |s: &[Selector]| -> Vec<pc::EntitySelector> {
        s.iter().map(|s| pc::EntitySelector { kind: s.kind, key_pattern: s.key_pattern.clone() }).collect()
    };
    pc::CopyProfile {
        preserve_groups: p.preserve_groups.clone(),
        preserve_projects: p.preserve_projects.clone(),
        preserve_entities: selectors(&p.preserve_entities),
        exclude_groups: p.exclude_groups.clone(),
        exclude_kinds: p.exclude_kinds.clone(),
        exclude_entities: selectors(&p.exclude_entities),
        masking: p
            .masking
            .iter()
            .map(|m| pc::MaskingRule { kind: m.kind, pointer: m.pointer.clone(), action: m.action, value_json: m.value_json.clone() })
            .collect(),
    }
}

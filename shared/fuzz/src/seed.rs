//! A small world created through the real API before fuzzing, so random calls find real
//! resources: two environments, three groups, entities of several kinds (shared and
//! duplicated, one referencing another), projects with a config item, an integration with
//! an API key, a mapping and a sync job, a snapshot, a merge plan and a refresh plan.
//! Every name in every reply goes into the pool.

use std::future::Future;

use ferry_kit::client::{ClientInterceptor, channel};
use ferry_proto::common::v1::EntityRef;
use ferry_proto::integration::v1 as ipb;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;
use ferry_proto::merge::v1 as mpb;
use ferry_proto::merge::v1::merge_service_client::MergeServiceClient;
use ferry_proto::refresh::v1 as fpb;
use ferry_proto::refresh::v1::refresh_service_client::RefreshServiceClient;
use ferry_proto::registry::v1 as rpb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use prost_reflect::{DescriptorPool, DynamicMessage};

use crate::pool::NamePool;

const LOOKUP: i32 = 2;
const SERVICE: i32 = 7;
const TABLE: i32 = 8;
const PRODUCTION: i32 = 1;
const NON_PRODUCTION: i32 = 2;

/// Puts replies' names into the pool and gives each call a request id it remembers.
struct Keeper<'a> {
    pool: &'a NamePool,
    descriptors: &'a DescriptorPool,
    n: u32,
}

impl Keeper<'_> {
    /// Awaits one seeding call, names it in the error, harvests its reply.
    async fn call<T: prost::Message>(
        &self,
        what: &str,
        output: &str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, crate::Error> {
        let reply = call.await.map_err(|s| crate::Error::Seed {
            what: what.to_owned(),
            code: crate::report::code_name(s.code()).to_owned(),
            message: s.message().to_owned(),
        })?;
        let reply = reply.into_inner();
        if let Some(desc) = self.descriptors.get_message_by_name(output)
            && let Ok(m) = DynamicMessage::decode(desc, reply.encode_to_vec().as_slice())
        {
            self.pool.harvest(&m);
        }
        Ok(reply)
    }

    fn request_id(&mut self) -> String {
        self.n += 1;
        let id = format!("seed-{:04}-{:08x}", self.n, rand::random::<u32>());
        self.pool.add_request_id(&id);
        id
    }
}

fn entity(kind: i32, key: &str, payload: &str, references: Vec<EntityRef>) -> Option<rpb::Entity> {
    Some(rpb::Entity { kind, key: key.into(), payload_json: payload.into(), references, ..Default::default() })
}

/// Creates the world through the services at `url(service)` as `admin`.
pub async fn seed(
    url: impl Fn(&str) -> Option<String>,
    admin: &str,
    pool: &NamePool,
    descriptors: &DescriptorPool,
) -> Result<(), crate::Error> {
    let endpoint = |service: &str| url(service).ok_or_else(|| crate::Error::Config(format!("no endpoint for {service}")));
    let auth = ClientInterceptor::new(Some(admin))?;
    let mut registry = RegistryServiceClient::with_interceptor(channel(&endpoint("ferry.registry.v1.RegistryService")?)?, auth.clone());
    let mut merge = MergeServiceClient::with_interceptor(channel(&endpoint("ferry.merge.v1.MergeService")?)?, auth.clone());
    let mut integration =
        IntegrationServiceClient::with_interceptor(channel(&endpoint("ferry.integration.v1.IntegrationService")?)?, auth.clone());
    let mut refresh = RefreshServiceClient::with_interceptor(channel(&endpoint("ferry.refresh.v1.RefreshService")?)?, auth);
    let mut k = Keeper { pool, descriptors, n: 0 };
    let r = "ferry.registry.v1.";

    for (id, tier) in [("prod", PRODUCTION), ("sandbox", NON_PRODUCTION)] {
        let req = rpb::CreateEnvironmentRequest {
            environment_id: id.into(),
            environment: Some(rpb::Environment { tier, display_name: id.to_uppercase(), ..Default::default() }),
            request_id: k.request_id(),
        };
        k.call("environment", &format!("{r}Environment"), registry.create_environment(req)).await?;
    }
    for (env, id) in [("prod", "test"), ("prod", "live"), ("sandbox", "test")] {
        let req =
            rpb::CreateGroupRequest { parent: format!("environments/{env}"), group_id: id.into(), group: None, request_id: k.request_id() };
        k.call("group", &format!("{r}Group"), registry.create_group(req)).await?;
    }
    let countries = || vec![EntityRef { kind: LOOKUP, key: "countries".into() }];
    let entities = [
        ("environments/prod/groups/test", entity(LOOKUP, "countries", r#"{"values":["fr","de"]}"#, vec![])),
        ("environments/prod/groups/test", entity(TABLE, "orders", r#"{"columns":["id","country"]}"#, countries())),
        ("environments/prod/groups/test", entity(SERVICE, "billing", r#"{"url":"https://billing.example.com"}"#, vec![])),
        // The same key with other content in the recipient: a conflict for the merge plan.
        ("environments/prod/groups/live", entity(SERVICE, "billing", r#"{"url":"https://billing.example.net"}"#, vec![])),
        ("environments/sandbox/groups/test", entity(TABLE, "scratch", r#"{"columns":[]}"#, vec![])),
    ];
    for (group, e) in entities {
        let req = rpb::CreateEntityRequest { parent: group.into(), entity: e, request_id: k.request_id() };
        k.call("entity", &format!("{r}Entity"), registry.create_entity(req)).await?;
    }
    for (id, group) in [("main", "environments/prod/groups/test"), ("main-live", "environments/prod/groups/live")] {
        let req = rpb::CreateProjectRequest {
            parent: "environments/prod".into(),
            project_id: id.into(),
            project: Some(rpb::Project { groups: vec![group.into()], ..Default::default() }),
            request_id: k.request_id(),
        };
        k.call("project", &format!("{r}Project"), registry.create_project(req)).await?;
    }
    let req = rpb::CreateConfigItemRequest {
        parent: "environments/prod/projects/main".into(),
        config_item_id: "checkout".into(),
        config_item: Some(rpb::ConfigItem {
            value_json: r#"{"flow":"checkout","currency":"EUR"}"#.into(),
            references: vec![EntityRef { kind: TABLE, key: "orders".into() }, EntityRef { kind: LOOKUP, key: "countries".into() }],
            ..Default::default()
        }),
        request_id: k.request_id(),
    };
    k.call("config item", &format!("{r}ConfigItem"), registry.create_config_item(req)).await?;

    let i = "ferry.integration.v1.";
    let req = ipb::CreateIntegrationRequest {
        parent: "environments/prod".into(),
        integration_id: "rally".into(),
        integration: Some(ipb::Integration {
            external_system: "rally".into(),
            base_url: "https://rally.example.com".into(),
            active: true,
            ..Default::default()
        }),
        api_key: "fuzz-seed-api-key".into(),
        request_id: k.request_id(),
    };
    let rally = k.call("integration", &format!("{i}Integration"), integration.create_integration(req)).await?.name;
    let req = ipb::CreateMappingRequest {
        parent: rally.clone(),
        mapping_id: "prod-sync".into(),
        mapping: Some(ipb::Mapping { active: true, field_mapping_json: r#"{"title":"name"}"#.into(), ..Default::default() }),
        request_id: k.request_id(),
    };
    k.call("mapping", &format!("{i}Mapping"), integration.create_mapping(req)).await?;
    let req = ipb::CreateSyncJobRequest {
        parent: "environments/prod".into(),
        sync_job_id: "rally-sync".into(),
        sync_job: Some(ipb::SyncJob { integration: rally, schedule: "*/15 * * * *".into(), external: Some(true), ..Default::default() }),
        request_id: k.request_id(),
    };
    k.call("sync job", &format!("{i}SyncJob"), integration.create_sync_job(req)).await?;
    let req = ipb::CreateSnapshotRequest {
        parent: "environments/sandbox".into(),
        snapshot_id: String::new(),
        description: "before fuzzing".into(),
        request_id: k.request_id(),
    };
    k.call("snapshot", &format!("{i}Snapshot"), integration.create_snapshot(req)).await?;

    let req = mpb::CreateMergePlanRequest {
        source: "environments/prod/groups/test".into(),
        recipient: "environments/prod/groups/live".into(),
        request_id: k.request_id(),
        ..Default::default()
    };
    k.call("merge plan", "ferry.merge.v1.MergePlan", merge.create_merge_plan(req)).await?;
    let req = fpb::PlanRefreshRequest { source: "environments/prod".into(), destination: "environments/sandbox".into(), options: None };
    k.call("refresh plan", "ferry.refresh.v1.RefreshPlan", refresh.plan_refresh(req)).await?;
    Ok(())
}

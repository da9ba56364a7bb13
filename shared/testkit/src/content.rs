//! An environment's whole registry content as sorted lines (groups, entities with their
//! payloads, sharing, references, links and times, projects with their groups and
//! configuration items), without what a copy or a restore may change: entity ids and
//! revisions. Two equal contents are the same environment as people see it.

use ferry_proto::registry::v1 as pb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tonic::codegen::{Body, Bytes, StdError};

fn time(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref().map(|t| format!("{}.{:09}", t.seconds, t.nanos)).unwrap_or_default()
}

fn refs(r: &[ferry_proto::common::v1::EntityRef]) -> String {
    r.iter().map(|r| format!("{}:{}", r.kind, r.key)).collect::<Vec<_>>().join(",")
}

/// The content of environment `env` (e.g. `environments/sandbox`), read through `c`.
pub async fn environment<T>(c: &mut RegistryServiceClient<T>, env: &str) -> Vec<String>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let mut lines = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_groups(pb::ListGroupsRequest { parent: env.into(), page_size: 1000, page_token: token })
            .await
            .expect("list groups") // ok: test support; a failed read fails the test that asked
            .into_inner();
        for g in &page.groups {
            lines.push(format!("group {} {:?} {} entities, created {}", g.name, g.display_name, g.entity_count, time(&g.create_time)));
            let mut stream =
                c.export_entities(pb::ExportEntitiesRequest { parent: g.name.clone(), kinds: vec![] }).await.expect("export").into_inner(); // ok: test support; a failed read fails the test
            loop {
                let next = stream.message().await.expect("export stream"); // ok: test support; a broken stream fails the test
                let Some(m) = next else { break };
                for e in m.entities {
                    lines.push(format!(
                        "entity {} kind {} key {:?} sharing {} payload {} refs [{}] groups [{}] hash {} created {} updated {}",
                        g.name,
                        e.kind,
                        e.key,
                        e.sharing,
                        e.payload_json,
                        refs(&e.references),
                        e.groups.join(","),
                        e.content_hash,
                        time(&e.create_time),
                        time(&e.update_time)
                    ));
                }
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut token = String::new();
    loop {
        let page = c
            .list_projects(pb::ListProjectsRequest { parent: env.into(), page_size: 1000, page_token: token })
            .await
            .expect("list projects") // ok: test support; a failed read fails the test that asked
            .into_inner();
        for p in &page.projects {
            lines.push(format!("project {} {:?} groups [{}] created {}", p.name, p.display_name, p.groups.join(","), time(&p.create_time)));
            let items = c
                .list_config_items(pb::ListConfigItemsRequest { parent: p.name.clone(), page_size: 1000, page_token: String::new() })
                .await
                .expect("list config items") // ok: test support; a failed read fails the test that asked
                .into_inner();
            assert!(items.next_page_token.is_empty(), "more than 1,000 config items in {}", p.name);
            for i in items.config_items {
                lines.push(format!("config {} {} refs [{}] updated {}", i.name, i.value_json, refs(&i.references), time(&i.update_time)));
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    lines.sort();
    lines
}

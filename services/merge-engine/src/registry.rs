//! The engine's client of the group registry. API boundary: registry proto types stop
//! here; the rest of the engine sees domain values. Payloads never pass through: the
//! engine reads key manifests and sends operations that name entity ids.

use std::collections::VecDeque;

use ferry_kit::client::{ClientInterceptor, ClientTls};
use ferry_proto::common::v1 as pc;
use ferry_proto::registry::v1 as pb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use pb::merge_operation::Op;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use crate::domain::rules::Action;
use crate::domain::{ConfigItem, GroupName, Kind, ManifestEntry, ProjectInfo, ProjectName, Selection, Sharing};
use crate::error::{Error, Result};

type Client = RegistryServiceClient<InterceptedService<Channel, ClientInterceptor>>;

/// Most refs in one LookupKeys call and operations in one batch (the registry's limit).
pub const MAX_BATCH: usize = 10_000;
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
const MANIFEST_CHUNK: i32 = 5000;

/// A registry operation's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpOutcome {
    Applied,
    AlreadyPresent,
    Conflict,
}

#[derive(Clone)]
pub struct Registry {
    client: Client,
}

/// A registry error the engine did not ask for: unreachable is UNAVAILABLE (a job retries
/// later), anything else is the engine's bug or misconfiguration.
fn upstream(s: Status) -> Error {
    if ferry_kit::client::is_transient(&s) || s.code() == Code::ResourceExhausted {
        return Error::Unavailable(format!("group registry unavailable: {}", s.message()));
    }
    Error::remote("group-registry", s)
}

impl Registry {
    pub fn connect(url: &str, auth: ClientInterceptor, tls: &ClientTls) -> Result<Self, ferry_kit::Error> {
        let channel = ferry_kit::client::channel_with(url, tls)?;
        let client = RegistryServiceClient::with_interceptor(channel, auth)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self { client })
    }

    /// A group's revision, or `None` when it does not exist.
    pub async fn group_revision(&self, group: &GroupName) -> Result<Option<i64>> {
        // Without entity_count: counting walks the whole group, and only the revision matters here.
        let read_mask = Some(prost_types::FieldMask { paths: vec!["name".into(), "revision".into()] });
        match self.client.clone().get_group(pb::GetGroupRequest { name: group.to_string(), read_mask }).await {
            Ok(g) => Ok(Some(g.into_inner().revision)),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(upstream(s)),
        }
    }

    /// The revision of a group that must exist.
    pub async fn existing_revision(&self, group: &GroupName) -> Result<i64> {
        self.group_revision(group).await?.ok_or_else(|| Error::not_found("group", group))
    }

    /// Creates a group; a retry with the same `request_id` gets the first reply.
    pub async fn create_group(&self, group: &GroupName, display_name: &str, request_id: &str) -> Result<i64> {
        let req = pb::CreateGroupRequest {
            parent: group.env_name(),
            group_id: group.group.clone(),
            group: Some(pb::Group { display_name: display_name.to_owned(), ..Default::default() }),
            request_id: request_id.to_owned(),
        };
        match self.client.clone().create_group(req).await {
            Ok(g) => Ok(g.into_inner().revision),
            Err(s) if s.code() == Code::AlreadyExists => {
                Err(Error::AlreadyExists { resource: "group", name: group.to_string(), message: format!("{group} already exists") })
            }
            Err(s) if s.code() == Code::NotFound => Err(Error::not_found("environment", group.env_name())),
            Err(s) => Err(upstream(s)),
        }
    }

    /// Opens a group's key manifest, restricted to `selection` (G13).
    pub async fn manifest(&self, group: &GroupName, selection: &Selection) -> Result<Manifest> {
        let req = pb::StreamKeyManifestRequest {
            group: group.to_string(),
            kinds: selection.kinds.iter().map(|k| k.number()).collect(),
            keys: selection.keys.clone(),
            chunk_size: MANIFEST_CHUNK,
        };
        let stream = match self.client.clone().stream_key_manifest(req).await {
            Ok(s) => s.into_inner(),
            Err(s) if s.code() == Code::NotFound => return Err(Error::not_found("group", group)),
            Err(s) => return Err(upstream(s)),
        };
        let mut m = Manifest { stream, buffered: VecDeque::new(), revision: 0, ended: false };
        m.fill().await?;
        Ok(m)
    }

    /// For each (kind, key), whether `group` holds it.
    pub async fn lookup(&self, group: &GroupName, refs: &[(Kind, String)]) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(refs.len());
        for chunk in refs.chunks(MAX_BATCH) {
            let req = pb::LookupKeysRequest {
                group: group.to_string(),
                refs: chunk.iter().map(|(k, key)| pc::EntityRef { kind: k.number(), key: key.clone() }).collect(),
            };
            let present = match self.client.clone().lookup_keys(req).await {
                Ok(r) => r.into_inner().present,
                Err(s) if s.code() == Code::NotFound => return Err(Error::not_found("group", group)),
                Err(s) => return Err(upstream(s)),
            };
            if present.len() != chunk.len() {
                return Err(Error::Internal("lookup reply not aligned with its request".into()));
            }
            out.extend(present);
        }
        Ok(out)
    }

    /// Sends one batch of operations (at most [`MAX_BATCH`]); results align with `actions`.
    pub async fn apply(&self, recipient: &GroupName, actions: &[Action], request_id: &str) -> Result<Vec<(OpOutcome, i64)>> {
        let operations = actions
            .iter()
            .map(|a| pb::MergeOperation {
                op: Some(match *a {
                    Action::Copy(id) => Op::CopyEntityId(id),
                    Action::Link(id) => Op::LinkEntityId(id),
                    Action::Overwrite { source, target } => {
                        Op::Overwrite(pb::OverwritePayload { source_entity_id: source, target_entity_id: target })
                    }
                    Action::Remove(id) => Op::RemoveEntityId(id),
                    Action::Unlink(id) => Op::UnlinkEntityId(id),
                    Action::Restore { entity, ref overwritten } => {
                        Op::Restore(pb::RestorePayload { entity_id: entity, overwritten_hash: overwritten.clone() })
                    }
                }),
            })
            .collect();
        let req = pb::ApplyMergeOperationsRequest { recipient: recipient.to_string(), operations, request_id: request_id.to_owned() };
        let reply = match self.client.clone().apply_merge_operations(req).await {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::NotFound => return Err(Error::not_found("group", recipient)),
            // The registry lost a write race on this batch (after its own retries): nothing
            // was written, so the chunk is sent again later, like an unreachable registry.
            Err(s) if s.code() == Code::Aborted => {
                return Err(Error::Unavailable(format!("the registry asked to send the batch again: {}", s.message())));
            }
            // An operation naming an entity that is gone: a group changed under the job.
            Err(s) if s.code() == Code::InvalidArgument && !s.message().contains("request_id") => {
                return Err(Error::Aborted(format!("a group changed while the job ran; plan again ({})", s.message())));
            }
            Err(s) => return Err(upstream(s)),
        };
        if reply.results.len() != actions.len() {
            return Err(Error::Internal("merge batch reply not aligned with its operations".into()));
        }
        reply
            .results
            .iter()
            .map(|r| {
                let outcome = match pb::OperationOutcome::try_from(r.outcome) {
                    Ok(pb::OperationOutcome::Applied) => OpOutcome::Applied,
                    Ok(pb::OperationOutcome::AlreadyPresent) => OpOutcome::AlreadyPresent,
                    Ok(pb::OperationOutcome::Conflict) => OpOutcome::Conflict,
                    _ => return Err(Error::Internal(format!("unknown operation outcome {}", r.outcome))),
                };
                Ok((outcome, r.entity_id))
            })
            .collect()
    }
}

/// Most config items in one UpsertConfigItems call (the registry's limit).
pub const MAX_ITEMS: usize = 5000;

fn project_info(p: pb::Project) -> Result<ProjectInfo> {
    let bad = |e: String| Error::Internal(format!("project from the registry: {e}"));
    Ok(ProjectInfo {
        name: ProjectName::parse(&p.name).map_err(bad)?,
        groups: p.groups.iter().map(|g| GroupName::parse(g).map_err(bad)).collect::<Result<_>>()?,
        revision: p.revision,
    })
}

/// Upsert counts: (created, updated, unchanged).
pub type UpsertCounts = (i64, i64, i64);

impl Registry {
    /// A project, or `None` when it does not exist.
    pub async fn project(&self, name: &ProjectName) -> Result<Option<ProjectInfo>> {
        match self.client.clone().get_project(pb::GetProjectRequest { name: name.to_string() }).await {
            Ok(p) => project_info(p.into_inner()).map(Some),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(upstream(s)),
        }
    }

    pub async fn existing_project(&self, name: &ProjectName) -> Result<ProjectInfo> {
        self.project(name).await?.ok_or_else(|| Error::not_found("project", name))
    }

    /// Creates a project; a retry with the same `request_id` gets the first reply.
    pub async fn create_project(&self, name: &ProjectName, display_name: &str, groups: &[String], request_id: &str) -> Result<ProjectInfo> {
        let req = pb::CreateProjectRequest {
            parent: name.env_name(),
            project_id: name.project.clone(),
            project: Some(pb::Project { display_name: display_name.to_owned(), groups: groups.to_vec(), ..Default::default() }),
            request_id: request_id.to_owned(),
        };
        match self.client.clone().create_project(req).await {
            Ok(p) => project_info(p.into_inner()),
            Err(s) if s.code() == Code::AlreadyExists => {
                Err(Error::AlreadyExists { resource: "project", name: name.to_string(), message: format!("{name} already exists") })
            }
            Err(s) if s.code() == Code::NotFound => Err(Error::NotFound { resource: "group", name: s.message().to_owned() }),
            Err(s) => Err(upstream(s)),
        }
    }

    /// One page of a project's config items (ordered by id) and the next page's token.
    pub async fn config_items(&self, project: &ProjectName, page_token: String) -> Result<(Vec<ConfigItem>, String)> {
        let req = pb::ListConfigItemsRequest { parent: project.to_string(), page_size: 1000, page_token };
        let page = match self.client.clone().list_config_items(req).await {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::NotFound => return Err(Error::not_found("project", project)),
            Err(s) => return Err(upstream(s)),
        };
        let items = page
            .config_items
            .into_iter()
            .map(|c| ConfigItem {
                id: c.name.rsplit('/').next().unwrap_or_default().to_owned(),
                value_json: c.value_json,
                references: c.references.into_iter().filter_map(|r| Some((Kind::from_number(r.kind)?, r.key))).collect(),
            })
            .collect();
        Ok((items, page.next_page_token))
    }

    /// Creates or replaces items of `project` (at most [`MAX_ITEMS`]), keyed by id.
    pub async fn upsert_config_items(&self, project: &ProjectName, items: &[ConfigItem], request_id: &str) -> Result<UpsertCounts> {
        let req = pb::UpsertConfigItemsRequest {
            parent: project.to_string(),
            config_items: items
                .iter()
                .map(|c| pb::ConfigItem {
                    name: project.item(&c.id),
                    value_json: c.value_json.clone(),
                    references: c.references.iter().map(|(k, key)| pc::EntityRef { kind: k.number(), key: key.clone() }).collect(),
                    update_time: None,
                })
                .collect(),
            request_id: request_id.to_owned(),
        };
        match self.client.clone().upsert_config_items(req).await {
            Ok(r) => {
                let r = r.into_inner();
                Ok((r.created, r.updated, r.unchanged))
            }
            Err(s) if s.code() == Code::NotFound => Err(Error::not_found("project", project)),
            Err(s) => Err(upstream(s)),
        }
    }

    /// How many references of a project's items resolve through none of its groups (G7).
    pub async fn unresolved_count(&self, project: &ProjectName) -> Result<i64> {
        let req = pb::ResolveProjectRequest { name: project.to_string(), page_size: 1, page_token: String::new(), missing_only: true };
        match self.client.clone().resolve_project(req).await {
            Ok(r) => Ok(r.into_inner().missing_count),
            Err(s) if s.code() == Code::NotFound => Err(Error::not_found("project", project)),
            Err(s) => Err(upstream(s)),
        }
    }
}

/// A key manifest being read: entries in (kind, key) byte order, a chunk at a time, so
/// the engine holds at most one chunk per manifest.
pub struct Manifest {
    stream: Streaming<pb::StreamKeyManifestResponse>,
    buffered: VecDeque<ManifestEntry>,
    revision: i64,
    ended: bool,
}

fn entry(e: pb::ManifestEntry) -> Result<ManifestEntry> {
    let bad = |what: &str| Error::Internal(format!("manifest entry with unknown {what}"));
    Ok(ManifestEntry {
        kind: Kind::from_number(e.kind).ok_or_else(|| bad("kind"))?,
        key: e.key,
        content_hash: e.content_hash,
        sharing: Sharing::from_number(e.sharing).ok_or_else(|| bad("sharing"))?,
        entity_id: e.entity_id,
        references: e.references.into_iter().filter_map(|r| Some((Kind::from_number(r.kind)?, r.key))).collect(),
    })
}

impl Manifest {
    /// The group's revision when the stream started.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    async fn fill(&mut self) -> Result<()> {
        while self.buffered.is_empty() && !self.ended {
            match self.stream.message().await.map_err(upstream)? {
                Some(msg) => {
                    self.revision = msg.revision;
                    for e in msg.entries {
                        self.buffered.push_back(entry(e)?);
                    }
                }
                None => self.ended = true,
            }
        }
        Ok(())
    }

    pub async fn peek(&mut self) -> Result<Option<&ManifestEntry>> {
        self.fill().await?;
        Ok(self.buffered.front())
    }

    pub async fn next(&mut self) -> Result<Option<ManifestEntry>> {
        self.fill().await?;
        Ok(self.buffered.pop_front())
    }
}

//! The registry's bulk calls at the proto edge: streamed import and export, the key
//! manifest the merge engine merge-joins, key lookups and merge batches (the
//! `RegistryService` impl in `handlers` delegates here).

use ferry_kit::auth::Principal;
use ferry_kit::status::Violations;
use ferry_proto::registry::v1 as pb;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{self as c, done};
use super::handlers::{IMPORT, RegistryApi, Stream, scope};
use crate::domain::{EntityKey, GroupName, RequestKey};
use crate::service::ImportStart;
use crate::store::bulk::KeyFilter;

/// Most entities in one import message, operations in one batch, refs in one lookup.
pub(super) const MAX_BATCH: usize = 5000;
const MAX_OPS: usize = 10_000;
const EXPORT_PAGE: u64 = 500;

impl RegistryApi {
    #[tracing::instrument(skip_all)]
    pub(super) async fn import(
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

    pub(super) async fn export(
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

    pub(super) async fn key_manifest(
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

    pub(super) async fn lookup(&self, req: Request<pb::LookupKeysRequest>) -> Result<Response<pb::LookupKeysResponse>, Status> {
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
    pub(super) async fn apply_operations(
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
}

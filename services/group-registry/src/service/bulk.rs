//! Bulk paths: streamed import, export and key manifests, key lookups, merge operations
//! (what the merge engine sends) and environment copy (what a refresh runs).

use ferry_kit::db::now_micros;
use ferry_kit::idempotency;
use sea_orm::DatabaseTransaction;

use super::settle::{Way, deliver, one_by_one};
use super::{Registry, env_row, group_key};
use crate::domain::profile::CopyProfile;
use crate::domain::{
    Copied, Entity, EntityRef, EnvName, GroupName, Kind, ManifestEntry, MergeBatch, MergeOp, NewEntity, Outcome, RequestKey, rules,
};
use crate::error::{Error, Result};
use crate::store::bulk::{self as q, KeyFilter};
use crate::store::{entities, groups};

/// How an import begins: a retry of a finished import, or a fresh transaction.
pub enum ImportStart {
    /// The request id was used before by an import; compare fingerprints once the stream
    /// is read.
    Replayed {
        fingerprint: String,
        reply: (i64, i64),
    },
    Fresh(ImportTx),
}

/// An import in progress: one transaction over the whole stream, all or nothing.
pub struct ImportTx {
    txn: DatabaseTransaction,
    env_id: i64,
    group_id: i64,
    group: GroupName,
    created: i64,
    now: i64,
}

pub const IMPORT_METHOD: &str = "ImportEntities";

impl ImportTx {
    /// Inserts one batch; a (kind, key) the group already holds fails the whole import.
    pub async fn add(&mut self, batch: &[NewEntity]) -> Result<()> {
        let clashes = q::import(&self.txn, self.env_id, self.group_id, batch, self.now).await?;
        if !clashes.is_empty() {
            let shown: Vec<String> = clashes.iter().take(20).map(|r| r.to_string()).collect();
            return Err(Error::AlreadyExists {
                resource: "entity",
                name: self.group.to_string(),
                message: format!(
                    "{} already holds {} of the imported keys (first: {}); nothing was imported",
                    self.group,
                    clashes.len(),
                    shown.join(", ")
                ),
            });
        }
        self.created += batch.len() as i64;
        Ok(())
    }

    /// Commits; returns (created, revision).
    pub async fn finish(self, key: Option<RequestKey>) -> Result<(i64, i64)> {
        if self.created > 0 {
            groups::bump(&self.txn, &[self.group_id]).await?;
        }
        if self.created >= q::ANALYZE_AFTER_ROWS {
            q::analyze(&self.txn).await?;
        }
        let revision = groups::revision(&self.txn, self.group_id).await?;
        let reply = (self.created, revision);
        if let Some(k) = key {
            idempotency::record(&self.txn, &k.request_id, IMPORT_METHOD, &k.fingerprint, serde_json::to_vec(&reply)?).await?;
        }
        self.txn.commit().await?;
        Ok(reply)
    }
}

impl Registry {
    pub async fn import_begin(&self, group: &GroupName, request_id: Option<&str>) -> Result<ImportStart> {
        if let Some(id) = request_id
            && let Some(s) = idempotency::find(&self.db, id).await?
        {
            // Another method's reply is not an import's: the id was used for another request.
            if s.method != IMPORT_METHOD {
                return Err(Error::RequestIdReused);
            }
            return Ok(ImportStart::Replayed { fingerprint: s.fingerprint, reply: serde_json::from_slice(&s.response)? });
        }
        let txn = ferry_kit::db::begin(&self.db).await?;
        let g = group_key(&txn, group).await?;
        super::lock_group(&txn, g.id, group).await?;
        Ok(ImportStart::Fresh(ImportTx { txn, env_id: g.env_id, group_id: g.id, group: group.clone(), created: 0, now: now_micros() }))
    }

    /// Resolves a group for a stream; returns its id and current revision.
    pub async fn stream_start(&self, group: &GroupName) -> Result<(i64, i64)> {
        let g = group_key(&self.reads, group).await?;
        Ok((g.id, g.revision))
    }

    pub async fn export_page(&self, group_id: i64, kinds: &[Kind], after: Option<(i32, String)>, limit: u64) -> Result<Vec<Entity>> {
        Ok(entities::list_members(&self.reads, group_id, kinds, after, limit).await?)
    }

    pub async fn manifest_page(
        &self,
        group_id: i64,
        filter: &KeyFilter,
        after: Option<&(i32, String)>,
        limit: u64,
    ) -> Result<Vec<ManifestEntry>> {
        Ok(q::manifest_page(&self.reads, group_id, filter, after, limit).await?)
    }

    /// For each ref, whether the group holds its (kind, key).
    pub async fn lookup_keys(&self, group: &GroupName, refs: &[EntityRef]) -> Result<Vec<bool>> {
        let g = group_key(&self.reads, group).await?;
        let keys: Vec<(Kind, String)> = refs.iter().map(|r| (r.kind, r.key.as_str().to_owned())).collect();
        let held = q::members_at(&self.reads, g.id, &keys).await?;
        Ok(keys.iter().map(|k| held.contains_key(k)).collect())
    }

    /// Executes merge operations against a recipient group in one transaction.
    ///
    /// A batch of only copies and links is delivered set-based ([`deliver`]) and takes the
    /// recipient's row lock only at its end, when it bumps the revision, so batches into
    /// one recipient overlap: a plan's chunks hold disjoint keys, and the primary key of
    /// memberships keeps any two batches from adding one key twice. A batch that loses
    /// such a race (a unique violation, or a deadlock PostgreSQL breaks), or that holds two
    /// operations on one key, runs again the reference way ([`classify`], one operation
    /// after the other) holding the lock from its start, as batches with overwrites,
    /// removes or unlinks always do.
    pub async fn apply_merge_operations(&self, key: Option<RequestKey>, recipient: GroupName, ops: Vec<MergeOp>) -> Result<MergeBatch> {
        const LOCKED_ATTEMPTS: usize = 4;
        let again = |e: &Error| match e {
            Error::Db(e) => ferry_kit::db::is_write_race(e),
            e => matches!(e, Error::Again(crate::error::IN_ORDER)),
        };
        if ops.iter().all(|op| matches!(op, MergeOp::Copy(_) | MergeOp::Link(_))) {
            match self.merge_batch(key.clone(), recipient.clone(), ops.clone(), Way::Deliver).await {
                Err(e) if again(&e) => {}
                done => return done,
            }
        }
        let mut attempt = 1;
        loop {
            match self.merge_batch(key.clone(), recipient.clone(), ops.clone(), Way::Locked).await {
                Err(e) if again(&e) && attempt < LOCKED_ATTEMPTS => attempt += 1,
                done => return done,
            }
        }
    }

    /// One attempt at a merge batch.
    async fn merge_batch(&self, key: Option<RequestKey>, recipient: GroupName, ops: Vec<MergeOp>, way: Way) -> Result<MergeBatch> {
        self.write(key, "ApplyMergeOperations", move |txn| {
            Box::pin(async move {
                let g = group_key(txn, &recipient).await?;
                let results = match way {
                    Way::Deliver => deliver(txn, &g, &ops).await?,
                    Way::Locked => {
                        super::lock_group(txn, g.id, &recipient).await?;
                        one_by_one(txn, &g, &ops).await?
                    }
                };
                if results.iter().any(|r| r.outcome == Outcome::Applied) {
                    groups::bump(txn, &[g.id]).await?;
                }
                Ok(MergeBatch { results, revision: groups::revision(txn, g.id).await? })
            })
        })
        .await
    }

    /// Replaces the destination environment's registry data with the source's, as
    /// `profile` says. With `validate_only` the copy is made and rolled back: the counts
    /// are exactly what it would do, and nothing is written.
    pub async fn copy_environment(
        &self,
        key: Option<RequestKey>,
        source: EnvName,
        destination: EnvName,
        profile: CopyProfile,
        validate_only: bool,
    ) -> Result<Copied> {
        if validate_only {
            let txn = ferry_kit::db::begin(&self.db).await?;
            let copied = copy_in(&txn, &source, &destination, &profile).await;
            txn.rollback().await?;
            return copied;
        }
        self.write(key, "CopyEnvironment", move |txn| Box::pin(async move { copy_in(txn, &source, &destination, &profile).await })).await
    }
}

/// The copy of `source` over `destination` in `txn`, after the rules' checks.
async fn copy_in(txn: &DatabaseTransaction, source: &EnvName, destination: &EnvName, profile: &CopyProfile) -> Result<Copied> {
    let src = env_row(txn, source).await?;
    let dst = env_row(txn, destination).await?;
    rules::check_copy_destination(source.id(), destination.id(), dst.env.tier)?;
    let (n, first) = crate::store::sharing::disallowed_sharing(txn, Some(src.id), 10).await?;
    if n > 0 {
        let shown: Vec<String> = first.iter().map(ToString::to_string).collect();
        return Err(Error::invalid(
            "source",
            format!(
                "{source} holds {n} entities whose sharing their kind does not allow (first: {}); copying them would \
                     spread them: delete them and create them again with their kind's sharing",
                shown.join(", ")
            ),
        ));
    }
    Ok(crate::store::copy::copy_environment(txn, src.id, dst.id, crate::store::copy::Purpose::Refresh(now_micros()), profile).await?)
}

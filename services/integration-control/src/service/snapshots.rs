//! Snapshots of an environment's integrations (credentials still sealed), mappings and
//! jobs, with a SHA-256 checksum over their canonical JSON; restore recreates them.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ferry_kit::db::now_micros;
use sha2::{Digest, Sha256};

use super::{Control, page};
use crate::domain::secrets::{Sealed, Sealer};
use crate::domain::{
    AnyName, ChangeSet, EnvName, Page, RequestKey, ResourceId, ResourceState, ResourceType, Snapshot, SnapshotContents,
    SnapshotIntegration, SnapshotName,
};
use crate::error::{Error, Result};
use crate::store::{self, integrations::IntegrationRow, snapshots::SnapshotRow};

fn checksum(contents: &str) -> String {
    hex::encode(Sha256::digest(contents.as_bytes()))
}

impl Control {
    fn snapshot_retention_micros(&self) -> i64 {
        self.snapshot_retention.as_micros().min(i64::MAX as u128) as i64
    }

    /// `s` with when it expires.
    fn expiring(&self, mut s: Snapshot) -> Snapshot {
        s.expire_at = s.created_at.saturating_add(self.snapshot_retention_micros());
        s
    }

    pub async fn create_snapshot(
        &self,
        key: Option<RequestKey>,
        env: EnvName,
        id: Option<ResourceId>,
        description: String,
        actor: String,
    ) -> Result<Snapshot> {
        const M: &str = "CreateSnapshot";
        if !self.replayed(&key, M).await? {
            self.envs.exists(&env).await?;
        }
        let retention = self.snapshot_retention_micros();
        let sealer = self.sealer.clone();
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let id =
                    id.unwrap_or_else(|| ResourceId::from_stored(&format!("snap-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])));
                let name = SnapshotName { env: env.clone(), id };
                if store::snapshots::find(txn, &name).await?.is_some() {
                    return Err(Error::already_exists("snapshot", &name));
                }
                // Every sealed value of a snapshot is under one key, the newest: one still
                // under an older key (mid-rotation) is resealed for the snapshot.
                let mut integrations = Vec::new();
                for r in store::integrations::list(txn, &env, None, None).await? {
                    let sealed = r.sealed.map(|s| sealer.reseal(&s)).transpose().map_err(|_| unopenable(&r.integration.name))?;
                    integrations.push(SnapshotIntegration { integration: r.integration, sealed: sealed.map(|s| B64.encode(s.bytes)) });
                }
                let sealing_key_id = integrations.iter().any(|i| i.sealed.is_some()).then(|| sealer.newest().to_owned());
                let contents = SnapshotContents {
                    integrations,
                    mappings: store::mappings::list_env(txn, &env, None, None).await?,
                    sync_jobs: store::jobs::list(txn, &env, None, None, None).await?,
                };
                let text = serde_json::to_string(&contents)?;
                let now = now_micros();
                let snapshot = Snapshot {
                    name,
                    description,
                    integration_count: contents.integrations.len() as i64,
                    mapping_count: contents.mappings.len() as i64,
                    sync_job_count: contents.sync_jobs.len() as i64,
                    checksum: checksum(&text),
                    created_by: actor,
                    created_at: now,
                    expire_at: now.saturating_add(retention),
                    contents: None,
                };
                store::snapshots::insert(txn, &SnapshotRow { snapshot: snapshot.clone(), contents: text, sealing_key_id }).await?;
                Ok(snapshot)
            })
        })
        .await
    }

    pub async fn get_snapshot(&self, name: &SnapshotName, full: bool) -> Result<Snapshot> {
        let row = store::snapshots::find(&self.db, name).await?.ok_or_else(|| Error::not_found("snapshot", name))?;
        let mut s = self.expiring(row.snapshot);
        if full {
            s.contents = Some(serde_json::from_str(&row.contents)?);
        }
        Ok(s)
    }

    pub async fn list_snapshots(&self, env: &EnvName, before: Option<(i64, String)>, limit: u64) -> Result<Page<Snapshot, (i64, String)>> {
        let rows = store::snapshots::list(&self.db, env, before.clone(), limit + 1).await?;
        if rows.is_empty() && before.is_none() {
            self.envs.exists(env).await?;
        }
        Ok(page(rows.into_iter().map(|r| self.expiring(r.snapshot)).collect(), limit, |s| (s.created_at, s.name.id.as_str().to_owned())))
    }

    /// Recreates the snapshot's resources (or only `resources`) in `env`, unfenced and
    /// bound here. Resources not in the snapshot are left alone.
    pub async fn restore_snapshot(
        &self,
        key: Option<RequestKey>,
        name: SnapshotName,
        env: EnvName,
        resources: Vec<AnyName>,
    ) -> Result<ChangeSet> {
        self.write(key, "RestoreSnapshot", move |txn| {
            Box::pin(async move {
                let row = store::snapshots::find(txn, &name).await?.ok_or_else(|| Error::not_found("snapshot", &name))?;
                if env != name.env {
                    return Err(Error::unmet(
                        "SNAPSHOT_OF_OTHER_ENVIRONMENT",
                        &env,
                        format!("{name} was taken of {}; it restores only there", name.env),
                    ));
                }
                if checksum(&row.contents) != row.snapshot.checksum {
                    return Err(Error::DataLoss(format!("{name} does not match its checksum; it was damaged and cannot be restored")));
                }
                let contents: SnapshotContents = serde_json::from_str(&row.contents)?;
                let wanted: BTreeSet<AnyName> = resources.into_iter().collect();
                let held: BTreeSet<AnyName> = contents
                    .integrations
                    .iter()
                    .map(|i| AnyName::Integration(i.integration.name.clone()))
                    .chain(contents.mappings.iter().map(|m| AnyName::Mapping(m.name.clone())))
                    .chain(contents.sync_jobs.iter().map(|j| AnyName::Job(j.name.clone())))
                    .collect();
                if let Some(missing) = wanted.difference(&held).next() {
                    let n = match missing {
                        AnyName::Integration(i) => i.to_string(),
                        AnyName::Mapping(m) => m.to_string(),
                        AnyName::Job(j) => j.to_string(),
                    };
                    return Err(Error::not_found("snapshot resource", format!("{n} (in {name})")));
                }
                let pick = |n: AnyName| wanted.is_empty() || wanted.contains(&n);
                let now = now_micros();
                let mut cs = ChangeSet::new(env.clone(), now);
                for s in contents.integrations {
                    if !pick(AnyName::Integration(s.integration.name.clone())) {
                        continue;
                    }
                    let damaged = || Error::DataLoss(format!("{name} holds damaged credentials"));
                    let sealed = s
                        .sealed
                        .map(|b| {
                            Ok::<_, Error>(Sealed {
                                key_id: row.sealing_key_id.clone().ok_or_else(damaged)?,
                                bytes: B64.decode(b).map_err(|_| damaged())?,
                            })
                        })
                        .transpose()?;
                    let current = store::integrations::find(txn, &s.integration.name).await?;
                    let mut i = s.integration;
                    i.fenced = false;
                    if let Some(c) = &current
                        && c.sealed == sealed
                        && c.integration == integration_at(&i, c.integration.updated_at)
                    {
                        continue;
                    }
                    i.updated_at = now;
                    let before = current.map(|c| ResourceState::of_integration(&c.integration)).unwrap_or_default();
                    cs.change(&i.name, ResourceType::Integration, before, ResourceState::of_integration(&i));
                    store::integrations::save(txn, &IntegrationRow { integration: i, sealed }).await?;
                }
                for mut m in contents.mappings {
                    if !pick(AnyName::Mapping(m.name.clone())) {
                        continue;
                    }
                    if store::integrations::find(txn, &m.name.integration).await?.is_none() {
                        return Err(Error::unmet(
                            "INTEGRATION_MISSING",
                            &m.name.integration,
                            format!("{} does not exist; restore it too to restore {}", m.name.integration, m.name),
                        ));
                    }
                    m.bound = env.clone();
                    m.fenced = false;
                    let current = store::mappings::find(txn, &m.name).await?;
                    if current.as_ref().is_some_and(|c| *c == crate::domain::Mapping { updated_at: c.updated_at, ..m.clone() }) {
                        continue;
                    }
                    m.updated_at = now;
                    let before = current.as_ref().map(ResourceState::of_mapping).unwrap_or_default();
                    cs.change(&m.name, ResourceType::Mapping, before, ResourceState::of_mapping(&m));
                    store::mappings::save(txn, &m).await?;
                }
                for j in contents.sync_jobs {
                    if !pick(AnyName::Job(j.name.clone())) {
                        continue;
                    }
                    let current = store::jobs::find(txn, &j.name).await?;
                    if current.as_ref() == Some(&j) {
                        continue;
                    }
                    let before = current.as_ref().map(ResourceState::of_job).unwrap_or_default();
                    cs.change(&j.name, ResourceType::SyncJob, before, ResourceState::of_job(&j));
                    store::jobs::save(txn, &j).await?;
                }
                Ok(cs)
            })
        })
        .await
    }
}

/// A stored credential that its (configured) key does not open: damaged bytes.
fn unopenable(name: &impl std::fmt::Display) -> Error {
    Error::DataLoss(format!("the sealed credentials of {name} do not open with their sealing key; rotate them in again"))
}

/// A snapshot document (`contents`, all sealed under `key_id`) with every sealed value
/// resealed under the newest key, and its new checksum. A document that no longer matches
/// `checksum` is refused, not resealed: a reseal must not launder damage.
pub(crate) fn reseal_document(sealer: &Sealer, name: &str, key_id: &str, contents: &str, checksum_was: &str) -> Result<(String, String)> {
    if checksum(contents) != checksum_was {
        return Err(Error::DataLoss(format!("{name} does not match its checksum; it was damaged and is not resealed")));
    }
    let mut doc: SnapshotContents = serde_json::from_str(contents)?;
    for i in &mut doc.integrations {
        if let Some(b) = &i.sealed {
            let bytes = B64.decode(b).map_err(|_| Error::DataLoss(format!("{name} holds damaged credentials")))?;
            let resealed = sealer.reseal(&Sealed { key_id: key_id.to_owned(), bytes }).map_err(|_| unopenable(&i.integration.name))?;
            i.sealed = Some(B64.encode(resealed.bytes));
        }
    }
    let text = serde_json::to_string(&doc)?;
    let sum = checksum(&text);
    Ok((text, sum))
}

/// `i` with `updated_at` replaced, to compare records regardless of when they were saved.
fn integration_at(i: &crate::domain::Integration, updated_at: i64) -> crate::domain::Integration {
    crate::domain::Integration { updated_at, ..i.clone() }
}

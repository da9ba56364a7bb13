//! The refresh coordinator's bulk steps (DESIGN.md §3). Each is one transaction, returns
//! the ChangeSet of exactly what it changed, and is idempotent by `request_id`. Undo steps
//! reverse a change only while the resource is still in the change's `after` state.

use std::collections::{BTreeMap, BTreeSet};

use ferry_kit::db::now_micros;

use super::jobs::{pause, resume};
use super::leases::{revoke, revoke_for_job};
use super::{Control, Tier, integration_row, job, mapping};
use crate::domain::leases::Revoke;
use crate::domain::{
    Change, ChangeSet, CredentialState, EnvName, IntegrationName, JobName, JobState, MappingName, RequestKey, ResourceState, ResourceType,
};
use crate::error::{Error, Result};
use crate::store::{self, integrations::IntegrationRow};

/// What an undo step reverses: the changes a step returned, or resources by name.
#[derive(Debug, Clone)]
pub enum Undo<N> {
    Changes(Vec<Change>),
    Names(Vec<N>),
}

impl Control {
    pub(super) async fn check_env(&self, key: &Option<RequestKey>, method: &str, env: &EnvName) -> Result<()> {
        if !self.replayed(key, method).await? {
            self.envs.exists(env).await?;
        }
        Ok(())
    }

    /// Step 2: deactivates every active integration (or suspends its ACTIVE credentials).
    pub async fn deactivate_integrations(&self, key: Option<RequestKey>, env: EnvName, suspend_instead: bool) -> Result<ChangeSet> {
        const M: &str = "DeactivateIntegrations";
        self.check_env(&key, M, &env).await?;
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let now = now_micros();
                let mut cs = ChangeSet::new(env.clone(), now);
                for mut row in store::integrations::list(txn, &env, None, None).await? {
                    let i = &mut row.integration;
                    if !i.active {
                        continue;
                    }
                    let before = ResourceState::of_integration(i);
                    match (suspend_instead, i.credential_state) {
                        (true, CredentialState::Active) => i.credential_state = CredentialState::Suspended,
                        (true, CredentialState::Suspended) => {
                            cs.skip(&i.name, "credentials are already suspended");
                            continue;
                        }
                        _ => i.active = false,
                    }
                    i.updated_at = now;
                    cs.change(&i.name, ResourceType::Integration, before, ResourceState::of_integration(i));
                    store::integrations::save(txn, &row).await?;
                    let why = format!("{} was deactivated for a refresh", row.integration.name);
                    revoke(txn, Revoke::Integration(&row.integration.name), &why).await?;
                }
                super::events::emit_set(txn, &cs).await?;
                Ok(cs)
            })
        })
        .await
    }

    /// Step 8: reverses exactly the given changes (or reactivates the named integrations).
    pub async fn reactivate_integrations(&self, key: Option<RequestKey>, env: EnvName, undo: Undo<IntegrationName>) -> Result<ChangeSet> {
        const M: &str = "ReactivateIntegrations";
        self.check_env(&key, M, &env).await?;
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let now = now_micros();
                let mut cs = ChangeSet::new(env.clone(), now);
                match undo {
                    Undo::Changes(changes) => {
                        for c in changes {
                            let name = IntegrationName::parse(&c.resource).map_err(|e| Error::invalid("change_set.changes.resource", e))?;
                            let Some(mut row) = store::integrations::find(txn, &name).await? else {
                                cs.skip(&name, "no longer exists");
                                continue;
                            };
                            let i = &mut row.integration;
                            let now_state = ResourceState::of_integration(i);
                            if now_state.active != c.after.active || now_state.credential_state != c.after.credential_state {
                                cs.skip(&name, format!("changed since: {}", describe(&now_state)));
                                continue;
                            }
                            i.active = c.before.active;
                            if let Some(s) = c.before.credential_state
                                && i.credential_state != CredentialState::None
                                && s != CredentialState::None
                            {
                                i.credential_state = s;
                            }
                            if ResourceState::of_integration(i) == now_state {
                                cs.skip(&name, "already in its earlier state");
                                continue;
                            }
                            i.updated_at = now;
                            cs.change(&name, ResourceType::Integration, now_state, ResourceState::of_integration(i));
                            store::integrations::save(txn, &row).await?;
                        }
                    }
                    Undo::Names(names) => {
                        for name in names {
                            let mut row = integration_row(txn, &name).await?;
                            let i = &mut row.integration;
                            let before = ResourceState::of_integration(i);
                            i.active = true;
                            if i.credential_state == CredentialState::Suspended {
                                i.credential_state = CredentialState::Active;
                            }
                            if ResourceState::of_integration(i) == before {
                                cs.skip(&name, "already active");
                                continue;
                            }
                            i.updated_at = now;
                            cs.change(&name, ResourceType::Integration, before, ResourceState::of_integration(i));
                            store::integrations::save(txn, &row).await?;
                        }
                    }
                }
                super::events::emit_set(txn, &cs).await?;
                Ok(cs)
            })
        })
        .await
    }

    /// Step 3: pauses every RUNNING external job as `actor`; paused ones stay as they are.
    pub async fn pause_jobs(&self, key: Option<RequestKey>, env: EnvName, actor: String, reason: String) -> Result<ChangeSet> {
        const M: &str = "PauseSyncJobs";
        self.check_env(&key, M, &env).await?;
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let now = now_micros();
                let mut cs = ChangeSet::new(env.clone(), now);
                for mut j in store::jobs::list(txn, &env, None, None, None).await? {
                    if !j.external {
                        continue;
                    }
                    if j.state == JobState::Paused {
                        cs.skip(&j.name, format!("already paused by {}", j.paused_by));
                        continue;
                    }
                    let before = ResourceState::of_job(&j);
                    pause(&mut j, actor.clone(), reason.clone(), now);
                    cs.change(&j.name, ResourceType::SyncJob, before, ResourceState::of_job(&j));
                    store::jobs::save(txn, &j).await?;
                    revoke_for_job(txn, &j).await?;
                }
                super::events::emit_set(txn, &cs).await?;
                Ok(cs)
            })
        })
        .await
    }

    /// Step 9: resumes exactly the given jobs, each only while still paused by the same actor.
    pub async fn resume_jobs(&self, key: Option<RequestKey>, env: EnvName, undo: Undo<JobName>) -> Result<ChangeSet> {
        const M: &str = "ResumeSyncJobs";
        self.check_env(&key, M, &env).await?;
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let mut cs = ChangeSet::new(env.clone(), now_micros());
                match undo {
                    Undo::Changes(changes) => {
                        for c in changes {
                            let name = JobName::parse(&c.resource).map_err(|e| Error::invalid("change_set.changes.resource", e))?;
                            let Some(mut j) = store::jobs::find(txn, &name).await? else {
                                cs.skip(&name, "no longer exists");
                                continue;
                            };
                            if j.state != JobState::Paused || j.paused_by != c.after.paused_by {
                                cs.skip(&name, format!("changed since: {}", describe(&ResourceState::of_job(&j))));
                                continue;
                            }
                            let before = ResourceState::of_job(&j);
                            resume(&mut j);
                            cs.change(&name, ResourceType::SyncJob, before, ResourceState::of_job(&j));
                            store::jobs::save(txn, &j).await?;
                        }
                    }
                    Undo::Names(names) => {
                        for name in names {
                            let mut j = job(txn, &name).await?;
                            if j.state == JobState::Running {
                                cs.skip(&name, "already running");
                                continue;
                            }
                            let before = ResourceState::of_job(&j);
                            resume(&mut j);
                            cs.change(&name, ResourceType::SyncJob, before, ResourceState::of_job(&j));
                            store::jobs::save(txn, &j).await?;
                        }
                    }
                }
                super::events::emit_set(txn, &cs).await?;
                Ok(cs)
            })
        })
        .await
    }

    /// Step 5 (MANAGED): the destination's integrations and mappings become fenced copies of
    /// the source's. Sync jobs stay as they are.
    pub async fn copy_integrations(&self, key: Option<RequestKey>, source: EnvName, dest: EnvName) -> Result<ChangeSet> {
        const M: &str = "CopyIntegrations";
        if !self.replayed(&key, M).await? {
            self.envs.exists(&source).await?;
            if self.envs.tier(&dest).await? == Tier::Production {
                return Err(Error::unmet(
                    "DESTINATION_PRODUCTION",
                    &dest,
                    format!("{dest} is a production environment; production is never a refresh destination"),
                ));
            }
        }
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let now = now_micros();
                let mut cs = ChangeSet::new(dest.clone(), now);
                revoke(txn, Revoke::Env(&dest), &format!("{dest}'s integrations were replaced by copies of {source}'s")).await?;
                let src_integrations = store::integrations::list(txn, &source, None, None).await?;
                let src_mappings = store::mappings::list_env(txn, &source, None, None).await?;
                let old_integrations: BTreeMap<String, IntegrationRow> = store::integrations::list(txn, &dest, None, None)
                    .await?
                    .into_iter()
                    .map(|r| (r.integration.name.id.as_str().to_owned(), r))
                    .collect();
                let old_mappings: BTreeMap<(String, String), _> = store::mappings::list_env(txn, &dest, None, None)
                    .await?
                    .into_iter()
                    .map(|m| ((m.name.integration.id.as_str().to_owned(), m.name.id.as_str().to_owned()), m))
                    .collect();
                let keep_i: BTreeSet<String> = src_integrations.iter().map(|r| r.integration.name.id.as_str().to_owned()).collect();
                let keep_m: BTreeSet<(String, String)> =
                    src_mappings.iter().map(|m| (m.name.integration.id.as_str().to_owned(), m.name.id.as_str().to_owned())).collect();
                for (k, m) in &old_mappings {
                    store::mappings::delete(txn, &m.name).await?;
                    if !keep_m.contains(k) {
                        cs.change(&m.name, ResourceType::Mapping, ResourceState::of_mapping(m), ResourceState::default());
                    }
                }
                for (id, r) in &old_integrations {
                    if !keep_i.contains(id) {
                        store::integrations::delete(txn, &r.integration.name).await?;
                        cs.change(
                            &r.integration.name,
                            ResourceType::Integration,
                            ResourceState::of_integration(&r.integration),
                            ResourceState::default(),
                        );
                    }
                }
                for src in src_integrations {
                    let id = src.integration.name.id.as_str().to_owned();
                    let before = old_integrations.get(&id).map(|r| ResourceState::of_integration(&r.integration)).unwrap_or_default();
                    let mut copy = src;
                    copy.integration.name = IntegrationName::new(dest.id(), &id);
                    copy.integration.fenced = true;
                    copy.integration.origin = Some(source.clone());
                    copy.integration.updated_at = now;
                    store::integrations::save(txn, &copy).await?;
                    cs.change(&copy.integration.name, ResourceType::Integration, before, ResourceState::of_integration(&copy.integration));
                }
                for mut m in src_mappings {
                    let k = (m.name.integration.id.as_str().to_owned(), m.name.id.as_str().to_owned());
                    let before = old_mappings.get(&k).map(ResourceState::of_mapping).unwrap_or_default();
                    m.name = MappingName::new(dest.id(), &k.0, &k.1);
                    m.fenced = true;
                    m.origin = Some(source.clone());
                    m.updated_at = now;
                    store::mappings::save(txn, &m).await?;
                    cs.change(&m.name, ResourceType::Mapping, before, ResourceState::of_mapping(&m));
                }
                super::events::emit_set(txn, &cs).await?;
                Ok(cs)
            })
        })
        .await
    }

    /// Step 6: deactivates every active mapping that targets or is bound to another
    /// environment. Fences stay.
    pub async fn disable_foreign_mappings(&self, key: Option<RequestKey>, env: EnvName) -> Result<ChangeSet> {
        const M: &str = "DisableForeignMappings";
        self.check_env(&key, M, &env).await?;
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let now = now_micros();
                let mut cs = ChangeSet::new(env.clone(), now);
                for mut m in store::mappings::list_env(txn, &env, None, None).await? {
                    if !m.active || (m.target == env && m.bound == env) {
                        continue;
                    }
                    let before = ResourceState::of_mapping(&m);
                    m.active = false;
                    m.updated_at = now;
                    cs.change(&m.name, ResourceType::Mapping, before, ResourceState::of_mapping(&m));
                    store::mappings::save(txn, &m).await?;
                    revoke(txn, Revoke::Mapping(&m.name), &format!("{} targets or is bound to another environment", m.name)).await?;
                }
                super::events::emit_set(txn, &cs).await?;
                Ok(cs)
            })
        })
        .await
    }

    /// Step 7: activates the mappings provisioned for this environment (inactive, targeting
    /// it, bound elsewhere): binds them here, lifts fences, activates their integrations.
    pub async fn activate_provisioned_mappings(&self, key: Option<RequestKey>, env: EnvName, names: Vec<MappingName>) -> Result<ChangeSet> {
        const M: &str = "ActivateProvisionedMappings";
        self.check_env(&key, M, &env).await?;
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let now = now_micros();
                let mut cs = ChangeSet::new(env.clone(), now);
                let provisioned = |m: &crate::domain::Mapping| !m.active && m.target == env && m.bound != env;
                let candidates = if names.is_empty() {
                    store::mappings::list_env(txn, &env, None, None).await?.into_iter().filter(|m| provisioned(m)).collect::<Vec<_>>()
                } else {
                    let mut out = Vec::new();
                    for n in &names {
                        let m = mapping(txn, n).await?;
                        if provisioned(&m) {
                            out.push(m);
                        } else {
                            cs.skip(n, format!("not a mapping provisioned for {env} (inactive, targeting it, bound elsewhere)"));
                        }
                    }
                    out
                };
                for mut m in candidates {
                    let mut row = integration_row(txn, &m.name.integration).await?;
                    let i = &mut row.integration;
                    if i.fenced || !i.active {
                        let before = ResourceState::of_integration(i);
                        i.fenced = false;
                        i.active = true;
                        i.updated_at = now;
                        cs.change(&i.name, ResourceType::Integration, before, ResourceState::of_integration(i));
                        store::integrations::save(txn, &row).await?;
                    }
                    let before = ResourceState::of_mapping(&m);
                    m.bound = env.clone();
                    m.fenced = false;
                    m.active = true;
                    m.updated_at = now;
                    cs.change(&m.name, ResourceType::Mapping, before, ResourceState::of_mapping(&m));
                    store::mappings::save(txn, &m).await?;
                }
                super::events::emit_set(txn, &cs).await?;
                Ok(cs)
            })
        })
        .await
    }
}

/// A short account of a state for `skipped` reasons.
fn describe(s: &ResourceState) -> String {
    let mut parts = vec![format!("active is {}", s.active)];
    if let Some(c) = s.credential_state {
        parts.push(format!("credentials {c:?}").to_lowercase());
    }
    if let Some(j) = s.job_state {
        parts.push(format!("job {j:?}").to_lowercase());
        if !s.paused_by.is_empty() {
            parts.push(format!("paused by {}", s.paused_by));
        }
    }
    parts.join(", ")
}

//! Mappings: creation bound where they live, activation with the fencing rules.

use ferry_kit::db::now_micros;

use super::events::emit_change;
use super::leases::revoke;
use super::{Control, integration_row, mapping, page};
use crate::domain::leases::Revoke;
use crate::domain::{EnvName, Mapping, MappingName, MappingParent, Page, RequestKey, ResourceState, ResourceType};
use crate::error::{Error, Result};
use crate::store;

#[derive(Debug)]
pub struct NewMapping {
    pub name: MappingName,
    pub display_name: String,
    /// `None`: the environment it lives in.
    pub target: Option<EnvName>,
    pub active: bool,
    pub field_mapping_json: String,
}

/// The fields an update sets (`None`: left as is).
#[derive(Debug, Default)]
pub struct MappingPatch {
    pub display_name: Option<String>,
    pub field_mapping_json: Option<String>,
    pub target: Option<EnvName>,
}

fn targets_elsewhere(name: &MappingName, target: &EnvName) -> Error {
    Error::unmet("TARGETS_OTHER_ENVIRONMENT", name, format!("{name} is for {target}, not {}; it can be active only there", name.env()))
}

impl Control {
    pub async fn create_mapping(&self, key: Option<RequestKey>, new: NewMapping) -> Result<Mapping> {
        const M: &str = "CreateMapping";
        let target = new.target.clone().unwrap_or_else(|| new.name.env().clone());
        if &target != new.name.env() && !self.replayed(&key, M).await? {
            self.envs.exists(&target).await?;
        }
        self.write(key, M, move |txn| {
            Box::pin(async move {
                integration_row(txn, &new.name.integration).await?;
                if store::mappings::find(txn, &new.name).await?.is_some() {
                    return Err(Error::already_exists("mapping", &new.name));
                }
                if new.active && &target != new.name.env() {
                    return Err(Error::unmet(
                        "TARGETS_OTHER_ENVIRONMENT",
                        &new.name,
                        format!("a mapping provisioned for {target} must be created inactive"),
                    ));
                }
                let now = now_micros();
                let m = Mapping {
                    bound: new.name.env().clone(),
                    name: new.name,
                    display_name: new.display_name,
                    target,
                    active: new.active,
                    field_mapping_json: new.field_mapping_json,
                    fenced: false,
                    origin: None,
                    created_at: now,
                    updated_at: now,
                };
                store::mappings::insert(txn, &m).await?;
                Ok(m)
            })
        })
        .await
    }

    pub async fn get_mapping(&self, name: &MappingName) -> Result<Mapping> {
        mapping(&self.db, name).await
    }

    pub async fn list_mappings(
        &self,
        parent: &MappingParent,
        after: Option<(String, String)>,
        limit: u64,
    ) -> Result<Page<Mapping, (String, String)>> {
        let rows = match parent {
            MappingParent::Integration(i) => {
                integration_row(&self.db, i).await?;
                store::mappings::list_of(&self.db, i, after.as_ref().map(|(_, m)| m.as_str()), Some(limit + 1)).await?
            }
            MappingParent::AllOf(env) => {
                let rows = store::mappings::list_env(&self.db, env, after.clone(), Some(limit + 1)).await?;
                if rows.is_empty() && after.is_none() {
                    self.envs.exists(env).await?;
                }
                rows
            }
        };
        Ok(page(rows, limit, |m| (m.name.integration.id.as_str().to_owned(), m.name.id.as_str().to_owned())))
    }

    pub async fn update_mapping(&self, key: Option<RequestKey>, name: MappingName, patch: MappingPatch) -> Result<Mapping> {
        const M: &str = "UpdateMapping";
        if let Some(t) = &patch.target
            && t != name.env()
            && !self.replayed(&key, M).await?
        {
            self.envs.exists(t).await?;
        }
        self.write(key, M, move |txn| {
            Box::pin(async move {
                let mut m = mapping(txn, &name).await?;
                let before = m.clone();
                if let Some(t) = patch.target {
                    if m.active && &t != name.env() && t != m.target {
                        return Err(targets_elsewhere(&name, &t));
                    }
                    m.target = t;
                }
                if let Some(d) = patch.display_name {
                    m.display_name = d;
                }
                if let Some(f) = patch.field_mapping_json {
                    m.field_mapping_json = f;
                }
                if m != before {
                    m.updated_at = now_micros();
                    store::mappings::save(txn, &m).await?;
                }
                if m.target != before.target {
                    revoke(txn, Revoke::Mapping(&name), &format!("{name} was re-targeted to {}", m.target)).await?;
                }
                Ok(m)
            })
        })
        .await
    }

    pub async fn delete_mapping(&self, key: Option<RequestKey>, name: MappingName) -> Result<()> {
        self.write(key, "DeleteMapping", move |txn| {
            Box::pin(async move {
                mapping(txn, &name).await?;
                revoke(txn, Revoke::Mapping(&name), &format!("{name} was deleted")).await?;
                store::mappings::delete(txn, &name).await?;
                Ok(())
            })
        })
        .await
    }

    /// Activates a mapping. Fenced or bound elsewhere: refused unless `rebind`, which binds
    /// it here and lifts its and its integration's fence. Targeting elsewhere: refused.
    pub async fn activate_mapping(&self, key: Option<RequestKey>, name: MappingName, rebind: bool) -> Result<Mapping> {
        self.write(key, "ActivateMapping", move |txn| {
            Box::pin(async move {
                let mut m = mapping(txn, &name).await?;
                let was = ResourceState::of_mapping(&m);
                let env = name.env().clone();
                if m.target != env {
                    return Err(targets_elsewhere(&name, &m.target));
                }
                let settled = !m.fenced && m.bound == env;
                if m.active && settled {
                    return Ok(m);
                }
                if !settled {
                    if !rebind {
                        let (kind, why) = if m.fenced {
                            ("MAPPING_FENCED", format!("{name} arrived by a copy and is fenced; set rebind to bind it to {env}"))
                        } else {
                            ("BOUND_ELSEWHERE", format!("{name} is bound to {}; set rebind to bind it to {env}", m.bound))
                        };
                        return Err(Error::unmet(kind, &name, why));
                    }
                    m.bound = env;
                    m.fenced = false;
                    let mut row = integration_row(txn, &name.integration).await?;
                    if row.integration.fenced {
                        row.integration.fenced = false;
                        row.integration.updated_at = now_micros();
                        store::integrations::save(txn, &row).await?;
                    }
                }
                m.active = true;
                m.updated_at = now_micros();
                store::mappings::save(txn, &m).await?;
                emit_change(txn, name.env().id(), &name, ResourceType::Mapping, was, ResourceState::of_mapping(&m)).await?;
                Ok(m)
            })
        })
        .await
    }

    pub async fn deactivate_mapping(&self, key: Option<RequestKey>, name: MappingName) -> Result<Mapping> {
        self.write(key, "DeactivateMapping", move |txn| {
            Box::pin(async move {
                let mut m = mapping(txn, &name).await?;
                if m.active {
                    let was = ResourceState::of_mapping(&m);
                    m.active = false;
                    m.updated_at = now_micros();
                    store::mappings::save(txn, &m).await?;
                    emit_change(txn, name.env().id(), &name, ResourceType::Mapping, was, ResourceState::of_mapping(&m)).await?;
                }
                revoke(txn, Revoke::Mapping(&name), &format!("{name} was deactivated")).await?;
                Ok(m)
            })
        })
        .await
    }
}

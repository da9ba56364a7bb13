//! Integrations and their credentials.

use ferry_kit::db::now_micros;
use ferry_kit::status::Precondition;

use ferry_kit::outbox::Event;

use super::events::{emit, emit_change};
use super::leases::revoke;
use super::{Control, integration_row, page};
use crate::domain::leases::Revoke;
use crate::domain::{ApiKey, CredentialState, EnvName, Integration, IntegrationName, Page, RequestKey, ResourceState, ResourceType};
use crate::error::{Error, Result};
use crate::store::{self, integrations::IntegrationRow};

/// A new integration, checked. The key is sealed before anything is stored.
#[derive(Debug)]
pub struct NewIntegration {
    pub name: IntegrationName,
    pub display_name: String,
    pub external_system: String,
    pub base_url: String,
    pub active: bool,
    pub api_key: Option<ApiKey>,
}

/// The fields an update sets (`None`: left as is).
#[derive(Debug, Default)]
pub struct IntegrationPatch {
    pub display_name: Option<String>,
    pub base_url: Option<String>,
    pub active: Option<bool>,
}

impl Control {
    pub async fn create_integration(&self, key: Option<RequestKey>, new: NewIntegration) -> Result<Integration> {
        const M: &str = "CreateIntegration";
        if !self.replayed(&key, M).await? {
            self.envs.exists(&new.name.env).await?;
        }
        let sealer = self.sealer.clone();
        self.write(key, M, move |txn| {
            Box::pin(async move {
                if store::integrations::find(txn, &new.name).await?.is_some() {
                    return Err(Error::already_exists("integration", &new.name));
                }
                let (credential_state, sealed, fingerprint) = match &new.api_key {
                    Some(k) => (CredentialState::Active, Some(sealer.seal(k)), sealer.fingerprint(k)),
                    None => (CredentialState::None, None, String::new()),
                };
                let now = now_micros();
                let integration = Integration {
                    name: new.name,
                    display_name: new.display_name,
                    external_system: new.external_system,
                    base_url: new.base_url,
                    active: new.active,
                    credential_state,
                    fingerprint,
                    fenced: false,
                    origin: None,
                    created_at: now,
                    updated_at: now,
                };
                store::integrations::insert(txn, &IntegrationRow { integration: integration.clone(), sealed }).await?;
                Ok(integration)
            })
        })
        .await
    }

    pub async fn get_integration(&self, name: &IntegrationName) -> Result<Integration> {
        Ok(integration_row(&self.db, name).await?.integration)
    }

    pub async fn list_integrations(&self, env: &EnvName, after: Option<String>, limit: u64) -> Result<Page<Integration, String>> {
        let rows = store::integrations::list(&self.db, env, after.as_deref(), Some(limit + 1)).await?;
        if rows.is_empty() && after.is_none() {
            self.envs.exists(env).await?;
        }
        Ok(page(rows.into_iter().map(|r| r.integration).collect(), limit, |i| i.name.id.as_str().to_owned()))
    }

    pub async fn update_integration(&self, key: Option<RequestKey>, name: IntegrationName, patch: IntegrationPatch) -> Result<Integration> {
        self.write(key, "UpdateIntegration", move |txn| {
            Box::pin(async move {
                let mut row = integration_row(txn, &name).await?;
                let before = row.integration.clone();
                let i = &mut row.integration;
                if let Some(d) = patch.display_name {
                    i.display_name = d;
                }
                if let Some(u) = patch.base_url {
                    i.base_url = u;
                }
                if let Some(a) = patch.active {
                    i.active = a;
                }
                if *i != before {
                    i.updated_at = now_micros();
                    store::integrations::save(txn, &row).await?;
                    let (b, a) = (ResourceState::of_integration(&before), ResourceState::of_integration(&row.integration));
                    emit_change(txn, name.env.id(), &name, ResourceType::Integration, b, a).await?;
                }
                if before.active && !row.integration.active {
                    revoke(txn, Revoke::Integration(&name), &format!("{name} was deactivated")).await?;
                }
                Ok(row.integration)
            })
        })
        .await
    }

    /// Deletes an integration; returns how many mappings went with it.
    pub async fn delete_integration(&self, key: Option<RequestKey>, name: IntegrationName, force: bool) -> Result<i64> {
        self.write(key, "DeleteIntegration", move |txn| {
            Box::pin(async move {
                integration_row(txn, &name).await?;
                let jobs = store::jobs::of_integration(txn, &name).await?;
                if !jobs.is_empty() {
                    return Err(Error::FailedPrecondition {
                        message: format!("{name} is used by {} sync job(s); delete them or tie them elsewhere first", jobs.len()),
                        preconditions: jobs
                            .iter()
                            .map(|j| Precondition::new("INTEGRATION_IN_USE", j.name.to_string(), "this job syncs through the integration"))
                            .collect(),
                    });
                }
                let mappings = store::mappings::list_of(txn, &name, None, None).await?;
                if !mappings.is_empty() && !force {
                    return Err(Error::FailedPrecondition {
                        message: format!("{name} has {} mapping(s); set force to delete them too", mappings.len()),
                        preconditions: mappings
                            .iter()
                            .map(|m| Precondition::new("INTEGRATION_HAS_MAPPINGS", m.name.to_string(), "set force to delete it too"))
                            .collect(),
                    });
                }
                revoke(txn, Revoke::Integration(&name), &format!("{name} was deleted")).await?;
                let deleted = store::mappings::delete_of(txn, &name).await?;
                store::integrations::delete(txn, &name).await?;
                Ok(deleted as i64)
            })
        })
        .await
    }

    pub async fn rotate_credentials(&self, key: Option<RequestKey>, name: IntegrationName, api_key: ApiKey) -> Result<Integration> {
        let sealer = self.sealer.clone();
        self.write(key, "RotateCredentials", move |txn| {
            Box::pin(async move {
                let mut row = integration_row(txn, &name).await?;
                let was = row.integration.fingerprint.clone();
                row.sealed = Some(sealer.seal(&api_key));
                row.integration.fingerprint = sealer.fingerprint(&api_key);
                row.integration.credential_state = CredentialState::Active;
                row.integration.updated_at = now_micros();
                store::integrations::save(txn, &row).await?;
                let data = serde_json::json!({ "previous_fingerprint": was, "fingerprint": row.integration.fingerprint });
                emit(txn, &[Event::new("credentials.rotated", name.env.id(), name.to_string(), data)]).await?;
                revoke(txn, Revoke::Integration(&name), &format!("{name}'s credentials were rotated")).await?;
                Ok(row.integration)
            })
        })
        .await
    }

    /// Suspends (`to` SUSPENDED) or restores (`to` ACTIVE) credentials; already there is a no-op.
    pub async fn set_credential_state(&self, key: Option<RequestKey>, name: IntegrationName, to: CredentialState) -> Result<Integration> {
        let method = if to == CredentialState::Suspended { "SuspendCredentials" } else { "RestoreCredentials" };
        self.write(key, method, move |txn| {
            Box::pin(async move {
                let mut row = integration_row(txn, &name).await?;
                let i = &mut row.integration;
                if i.credential_state == CredentialState::None {
                    return Err(Error::unmet("CREDENTIALS_NONE", &name, format!("{name} has no credentials; rotate them in first")));
                }
                if i.credential_state != to {
                    let before = ResourceState::of_integration(i);
                    i.credential_state = to;
                    i.updated_at = now_micros();
                    let after = ResourceState::of_integration(i);
                    store::integrations::save(txn, &row).await?;
                    emit_change(txn, name.env.id(), &name, ResourceType::Integration, before, after).await?;
                }
                if to == CredentialState::Suspended {
                    revoke(txn, Revoke::Integration(&name), &format!("{name}'s credentials were suspended")).await?;
                }
                Ok(row.integration)
            })
        })
        .await
    }
}

//! Webhook subscriptions (the secret sealed before anything is stored, never returned),
//! their delivery log, redelivery, and events published by other services.

use ferry_kit::db::now_micros;
use ferry_kit::outbox::{self, Event};

use super::{Control, page};
use crate::domain::webhooks::{Delivery, DeliveryName, Subscription, SubscriptionName, SubscriptionState};
use crate::domain::{ApiKey, Page, RequestKey, ResourceId};
use crate::error::{Error, Result};
use crate::store::{self, webhooks::SubscriptionRow};

/// A new subscription, checked.
#[derive(Debug)]
pub struct NewSubscription {
    pub id: Option<ResourceId>,
    pub url: String,
    pub event_types: Vec<String>,
    pub environments: Vec<String>,
    pub secret: ApiKey,
}

/// What an update sets (`None`: left as is).
#[derive(Debug, Default)]
pub struct SubscriptionPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub environments: Option<Vec<String>>,
    pub state: Option<SubscriptionState>,
    pub secret: Option<ApiKey>,
}

async fn row<C: sea_orm::ConnectionTrait>(db: &C, name: &SubscriptionName) -> Result<SubscriptionRow> {
    store::webhooks::find(db, name).await?.ok_or_else(|| Error::not_found("webhook subscription", name))
}

impl Control {
    pub async fn create_webhook(&self, key: Option<RequestKey>, new: NewSubscription, actor: String) -> Result<Subscription> {
        let sealer = self.sealer.clone();
        self.write(key, "CreateWebhookSubscription", move |txn| {
            Box::pin(async move {
                let id =
                    new.id.unwrap_or_else(|| ResourceId::from_stored(&format!("wh-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])));
                let name = SubscriptionName(id);
                if store::webhooks::find(txn, &name).await?.is_some() {
                    return Err(Error::already_exists("webhook subscription", &name));
                }
                let now = now_micros();
                let row = SubscriptionRow {
                    subscription: Subscription {
                        name,
                        url: new.url,
                        event_types: new.event_types,
                        environments: new.environments,
                        state: SubscriptionState::Active,
                        disabled_reason: String::new(),
                        consecutive_failures: 0,
                        secret_fingerprint: sealer.fingerprint(&new.secret),
                        created_by: actor,
                        created_at: now,
                        updated_at: now,
                    },
                    sealed: sealer.seal(&new.secret),
                    failure_disabled: false,
                    next_attempt_at: 0,
                };
                store::webhooks::save(txn, &row).await?;
                Ok(row.subscription)
            })
        })
        .await
    }

    pub async fn get_webhook(&self, name: &SubscriptionName) -> Result<Subscription> {
        Ok(row(&self.db, name).await?.subscription)
    }

    pub async fn list_webhooks(&self, after: Option<String>, limit: u64) -> Result<Page<Subscription, String>> {
        let rows = store::webhooks::list(&self.db, after.as_deref(), limit + 1).await?;
        Ok(page(rows.into_iter().map(|r| r.subscription).collect(), limit, |s| s.name.id().to_owned()))
    }

    /// Applies `patch`. ACTIVE re-enables a DISABLED subscription: its failure count is
    /// reset and delivery resumes at its oldest undelivered event.
    pub async fn update_webhook(&self, key: Option<RequestKey>, name: SubscriptionName, patch: SubscriptionPatch) -> Result<Subscription> {
        let sealer = self.sealer.clone();
        self.write(key, "UpdateWebhookSubscription", move |txn| {
            Box::pin(async move {
                let mut r = row(txn, &name).await?;
                let before = r.subscription.clone();
                let s = &mut r.subscription;
                if let Some(u) = patch.url {
                    s.url = u;
                }
                if let Some(t) = patch.event_types {
                    s.event_types = t;
                }
                if let Some(e) = patch.environments {
                    s.environments = e;
                }
                match patch.state {
                    Some(SubscriptionState::Active) if s.state == SubscriptionState::Disabled => {
                        s.state = SubscriptionState::Active;
                        s.disabled_reason.clear();
                        s.consecutive_failures = 0;
                        r.failure_disabled = false;
                        r.next_attempt_at = 0;
                    }
                    Some(SubscriptionState::Disabled) if s.state == SubscriptionState::Active => {
                        s.state = SubscriptionState::Disabled;
                        s.disabled_reason = "disabled by hand".into();
                        r.failure_disabled = false;
                    }
                    _ => {}
                }
                if let Some(secret) = &patch.secret {
                    r.sealed = sealer.seal(secret);
                    r.subscription.secret_fingerprint = sealer.fingerprint(secret);
                }
                if r.subscription != before || patch.secret.is_some() {
                    r.subscription.updated_at = now_micros();
                    store::webhooks::save(txn, &r).await?;
                }
                Ok(r.subscription)
            })
        })
        .await
    }

    pub async fn delete_webhook(&self, key: Option<RequestKey>, name: SubscriptionName) -> Result<()> {
        self.write(key, "DeleteWebhookSubscription", move |txn| {
            Box::pin(async move {
                row(txn, &name).await?;
                store::webhooks::delete(txn, &name).await?;
                Ok(())
            })
        })
        .await
    }

    /// A subscription's deliveries, newest first, below the sequence `before`.
    pub async fn list_deliveries(&self, name: &SubscriptionName, before: Option<i64>, limit: u64) -> Result<Page<Delivery, i64>> {
        row(&self.db, name).await?;
        let items = store::deliveries::list(&self.db, name, before, limit + 1).await?;
        Ok(page(items, limit, |d| d.name.sequence))
    }

    /// Makes a delivery pending again (sent when it is its subscription's oldest pending).
    pub async fn redeliver(&self, key: Option<RequestKey>, name: DeliveryName) -> Result<Delivery> {
        self.write(key, "RedeliverWebhook", move |txn| {
            Box::pin(async move {
                if !store::deliveries::redeliver(txn, &name).await? {
                    return Err(Error::not_found("webhook delivery", &name));
                }
                store::deliveries::find(txn, &name).await?.ok_or_else(|| Error::not_found("webhook delivery", &name))
            })
        })
        .await
    }

    /// Appends another service's events to this outbox (those already there are skipped):
    /// how many were new.
    pub async fn publish_events(&self, events: Vec<Event>) -> Result<i32> {
        self.write(None, "PublishEvents", move |txn| Box::pin(async move { Ok(outbox::append(txn, &events).await? as i32) })).await
    }
}

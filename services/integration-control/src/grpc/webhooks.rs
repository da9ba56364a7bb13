//! Webhooks at the edge: subscriptions (the secret only ever comes in; requests that carry
//! it are fingerprinted with its keyed digest and Debug-print `***`), deliveries,
//! redelivery and PublishEvents. Subscriptions see every environment's events, so a caller
//! scoped to some environments is refused; PublishEvents needs the service right.

use ferry_kit::auth::Principal;
use ferry_kit::db::timestamp;
use ferry_kit::outbox::Event;
use ferry_kit::status::{Violations, permission_denied};
use ferry_proto::integration::v1 as pb;
use tonic::{Request, Response, Status};

use super::convert::{self as c, done};
use crate::domain::ResourceId;
use crate::domain::webhooks::{self as w, Delivery, DeliveryName, EVENT_TYPES, Subscription, SubscriptionName, SubscriptionState};
use crate::service::{Control, NewSubscription, SubscriptionPatch};

/// Most events one PublishEvents call carries.
pub const MAX_PUBLISH: usize = 1_000;

fn unscoped(p: &Principal) -> Result<(), Status> {
    match p.environments {
        Some(_) => Err(permission_denied("webhook subscriptions span every environment: a token scoped to environments may not use them")),
        None => Ok(()),
    }
}

fn subscription(s: Subscription) -> pb::WebhookSubscription {
    pb::WebhookSubscription {
        name: s.name.to_string(),
        url: s.url,
        event_types: s.event_types,
        environments: s.environments,
        state: match s.state {
            SubscriptionState::Active => pb::WebhookSubscriptionState::Active,
            SubscriptionState::Disabled => pb::WebhookSubscriptionState::Disabled,
        } as i32,
        disabled_reason: s.disabled_reason,
        consecutive_failures: s.consecutive_failures,
        secret: String::new(),
        secret_fingerprint: s.secret_fingerprint,
        created_by: s.created_by,
        create_time: Some(timestamp(s.created_at)),
        update_time: Some(timestamp(s.updated_at)),
    }
}

fn delivery(d: Delivery) -> pb::WebhookDelivery {
    pb::WebhookDelivery {
        name: d.name.to_string(),
        event_id: d.event_id,
        event_type: d.event_type,
        environment: d.environment,
        resource: d.resource,
        state: if d.delivered { pb::WebhookDeliveryState::Delivered } else { pb::WebhookDeliveryState::Pending } as i32,
        create_time: Some(timestamp(d.created_at)),
        deliver_time: d.delivered_at.map(timestamp),
        attempts: d
            .attempts
            .into_iter()
            .map(|a| pb::WebhookAttempt {
                time: Some(timestamp(a.time)),
                status_code: a.status_code,
                error: a.error,
                duration: Some(prost_types::Duration {
                    seconds: a.duration_micros / 1_000_000,
                    nanos: (a.duration_micros % 1_000_000) as i32 * 1_000,
                }),
            })
            .collect(),
    }
}

/// The request as fingerprinted for `request_id`: the secret replaced by its keyed digest.
fn masked(control: &Control, s: &Option<pb::WebhookSubscription>) -> Option<pb::WebhookSubscription> {
    s.clone().map(|s| pb::WebhookSubscription { secret: control.sealer().request_digest(&s.secret), ..s })
}

pub async fn create(
    control: &Control,
    req: Request<pb::CreateWebhookSubscriptionRequest>,
) -> Result<Response<pb::WebhookSubscription>, Status> {
    let p = Principal::of(&req);
    unscoped(&p)?;
    let r = req.into_inner();
    let mut v = Violations::new();
    let fingerprinted =
        pb::CreateWebhookSubscriptionRequest { webhook_subscription: masked(control, &r.webhook_subscription), ..r.clone() };
    let key = c::request_key(&mut v, "CreateWebhookSubscription", &fingerprinted, &r.request_id);
    let id = match r.webhook_subscription_id.as_str() {
        "" => Some(None),
        id => v.check("webhook_subscription_id", ResourceId::parse(id)).map(Some),
    };
    let body = r.webhook_subscription.unwrap_or_default();
    let url = v.check("webhook_subscription.url", w::url(&body.url));
    let types = v.check("webhook_subscription.event_types", w::event_types(&body.event_types));
    let envs = v.check("webhook_subscription.environments", w::environments(&body.environments));
    let secret = v.check("webhook_subscription.secret", w::secret(&body.secret));
    let (key, id, url, event_types, environments, secret) = done(v, || Some((key?, id?, url?, types?, envs?, secret?)))?;
    let new = NewSubscription { id, url, event_types, environments, secret };
    Ok(Response::new(subscription(control.create_webhook(key, new, c::actor(&p)).await?)))
}

pub async fn get(control: &Control, req: Request<pb::GetWebhookSubscriptionRequest>) -> Result<Response<pb::WebhookSubscription>, Status> {
    unscoped(&Principal::of(&req))?;
    let mut v = Violations::new();
    let name = v.check("name", SubscriptionName::parse(&req.get_ref().name));
    let name = done(v, || name)?;
    Ok(Response::new(subscription(control.get_webhook(&name).await?)))
}

pub async fn list(
    control: &Control,
    req: Request<pb::ListWebhookSubscriptionsRequest>,
) -> Result<Response<pb::ListWebhookSubscriptionsResponse>, Status> {
    unscoped(&Principal::of(&req))?;
    let r = req.into_inner();
    let mut v = Violations::new();
    let size = c::page_size(&mut v, r.page_size);
    let after = c::page_token::<String>(&mut v, "webhookSubscriptions", &r.page_token);
    let (size, after) = done(v, || Some((size?, after?)))?;
    let page = control.list_webhooks(after, size).await?;
    Ok(Response::new(pb::ListWebhookSubscriptionsResponse {
        next_page_token: c::next_token("webhookSubscriptions", &page.next),
        webhook_subscriptions: page.items.into_iter().map(subscription).collect(),
    }))
}

pub async fn update(
    control: &Control,
    req: Request<pb::UpdateWebhookSubscriptionRequest>,
) -> Result<Response<pb::WebhookSubscription>, Status> {
    unscoped(&Principal::of(&req))?;
    let r = req.into_inner();
    let mut v = Violations::new();
    let fingerprinted =
        pb::UpdateWebhookSubscriptionRequest { webhook_subscription: masked(control, &r.webhook_subscription), ..r.clone() };
    let key = c::request_key(&mut v, "UpdateWebhookSubscription", &fingerprinted, &r.request_id);
    let body = r.webhook_subscription.clone().unwrap_or_default();
    let name = v.check("webhook_subscription.name", SubscriptionName::parse(&body.name));
    let paths = c::mask_paths(&r.update_mask);
    if paths.is_empty() {
        v.add("update_mask", "is required (url, event_types, environments, state, secret)");
    }
    let mut patch = SubscriptionPatch::default();
    for path in &paths {
        match path.as_str() {
            "url" => patch.url = v.check("webhook_subscription.url", w::url(&body.url)),
            "event_types" => patch.event_types = v.check("webhook_subscription.event_types", w::event_types(&body.event_types)),
            "environments" => patch.environments = v.check("webhook_subscription.environments", w::environments(&body.environments)),
            "secret" => patch.secret = v.check("webhook_subscription.secret", w::secret(&body.secret)),
            "state" => {
                patch.state = match pb::WebhookSubscriptionState::try_from(body.state) {
                    Ok(pb::WebhookSubscriptionState::Active) => Some(SubscriptionState::Active),
                    Ok(pb::WebhookSubscriptionState::Disabled) => Some(SubscriptionState::Disabled),
                    _ => {
                        v.add("webhook_subscription.state", "must be ACTIVE or DISABLED");
                        None
                    }
                }
            }
            other => v.add("update_mask", format!("{other:?} cannot be updated (url, event_types, environments, state, secret)")),
        }
    }
    let (key, name) = done(v, || Some((key?, name?)))?;
    Ok(Response::new(subscription(control.update_webhook(key, name, patch).await?)))
}

pub async fn delete(
    control: &Control,
    req: Request<pb::DeleteWebhookSubscriptionRequest>,
) -> Result<Response<pb::DeleteWebhookSubscriptionResponse>, Status> {
    unscoped(&Principal::of(&req))?;
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "DeleteWebhookSubscription", &r, &r.request_id);
    let name = v.check("name", SubscriptionName::parse(&r.name));
    let (key, name) = done(v, || Some((key?, name?)))?;
    control.delete_webhook(key, name).await?;
    Ok(Response::new(pb::DeleteWebhookSubscriptionResponse {}))
}

pub async fn deliveries(
    control: &Control,
    req: Request<pb::ListWebhookDeliveriesRequest>,
) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
    unscoped(&Principal::of(&req))?;
    let r = req.into_inner();
    let mut v = Violations::new();
    let name = v.check("parent", SubscriptionName::parse(&r.parent));
    let list = format!("deliveries:{}", r.parent);
    let size = c::page_size(&mut v, r.page_size);
    let before = c::page_token::<i64>(&mut v, &list, &r.page_token);
    let (name, size, before) = done(v, || Some((name?, size?, before?)))?;
    let page = control.list_deliveries(&name, before, size).await?;
    Ok(Response::new(pb::ListWebhookDeliveriesResponse {
        next_page_token: c::next_token(&list, &page.next),
        webhook_deliveries: page.items.into_iter().map(delivery).collect(),
    }))
}

pub async fn redeliver(control: &Control, req: Request<pb::RedeliverWebhookRequest>) -> Result<Response<pb::WebhookDelivery>, Status> {
    unscoped(&Principal::of(&req))?;
    let r = req.into_inner();
    let mut v = Violations::new();
    let key = c::request_key(&mut v, "RedeliverWebhook", &r, &r.request_id);
    let name = v.check("name", DeliveryName::parse(&r.name));
    let (key, name) = done(v, || Some((key?, name?)))?;
    Ok(Response::new(delivery(control.redeliver(key, name).await?)))
}

fn event(v: &mut Violations, i: usize, e: pb::Event) -> Option<Event> {
    let at = |f: &str| format!("events[{i}].{f}");
    if e.id.is_empty() || e.id.len() > 128 || !e.id.chars().all(|c| c.is_ascii_graphic()) {
        v.add(at("id"), "must be 1-128 printable ASCII characters (a UUID)");
    }
    if !EVENT_TYPES.contains(&e.r#type.as_str()) {
        v.add(at("type"), format!("unknown event type {:?}", e.r#type));
    }
    if e.resource.is_empty() {
        v.add(at("resource"), "is required");
    }
    let time = match e.time {
        Some(t) => Some(t.seconds.saturating_mul(1_000_000) + i64::from(t.nanos / 1_000)),
        None => {
            v.add(at("time"), "is required");
            None
        }
    };
    let data = match serde_json::from_str::<serde_json::Value>(if e.data_json.is_empty() { "{}" } else { &e.data_json }) {
        Ok(d @ serde_json::Value::Object(_)) => Some(d),
        _ => {
            v.add(at("data_json"), "must be a JSON object");
            None
        }
    };
    Some(Event { id: e.id, kind: e.r#type, time: time?, environment: e.environment, resource: e.resource, data: data? })
}

pub async fn publish(control: &Control, req: Request<pb::PublishEventsRequest>) -> Result<Response<pb::PublishEventsResponse>, Status> {
    if !Principal::of(&req).service {
        return Err(permission_denied("PublishEvents needs the service right"));
    }
    let r = req.into_inner();
    let mut v = Violations::new();
    if r.events.len() > MAX_PUBLISH {
        v.add("events", format!("carries more than {MAX_PUBLISH} events"));
    }
    let events: Vec<Option<Event>> = r.events.into_iter().enumerate().map(|(i, e)| event(&mut v, i, e)).collect();
    let events = done(v, || events.into_iter().collect::<Option<Vec<_>>>())?;
    Ok(Response::new(pb::PublishEventsResponse { accepted: control.publish_events(events).await? }))
}

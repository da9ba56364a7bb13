//! Webhooks: every state change arrives at a real HTTP receiver, signed, in order, even
//! when the receiver was down while the changes were made; the delivery log shows the
//! failed attempts; a receiver that stays down disables its subscription with the reason;
//! redelivery sends an event again; the secret is never in a reply or stored in clear.

use std::time::Duration;

use ferry_proto::integration::v1 as pb;
use ferry_testkit::receiver::{Received, Receiver};
use integration_control::domain::webhooks::verify;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

const SECRET: &str = "whsec-PLAINTEXT-8c1f0a77d2";
const ACTIVE: i32 = 1;
const DISABLED: i32 = 2;

fn subscription(url: &str, event_types: &[&str]) -> pb::WebhookSubscription {
    pb::WebhookSubscription {
        url: url.into(),
        event_types: event_types.iter().map(|s| s.to_string()).collect(),
        secret: SECRET.into(),
        ..Default::default()
    }
}

async fn subscribe(app: &TestApp, id: &str, url: &str) -> pb::WebhookSubscription {
    let req = pb::CreateWebhookSubscriptionRequest {
        webhook_subscription_id: id.into(),
        webhook_subscription: Some(subscription(url, &[])),
        request_id: String::new(),
    };
    app.admin.clone().create_webhook_subscription(req).await.expect("subscribe").into_inner()
}

/// The events received, once each (by id), in arrival order, each checked: the event id
/// header is the body's id and the signature verifies with the secret.
fn events(received: &[Received]) -> Vec<serde_json::Value> {
    let mut seen = std::collections::HashSet::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let mut out = Vec::new();
    for r in received {
        let body = r.json();
        assert_eq!(r.header("ferry-event-id"), body["id"].as_str().unwrap_or("-"), "{body}");
        assert_eq!(verify(SECRET.as_bytes(), r.header("ferry-signature"), &r.body, now, 300), Ok(()), "{body}");
        assert!(!String::from_utf8_lossy(&r.body).contains(SECRET));
        if seen.insert(body["id"].as_str().unwrap_or_default().to_owned()) {
            out.push(body);
        }
    }
    out
}

fn kinds(events: &[serde_json::Value]) -> Vec<(String, String)> {
    events.iter().map(|e| (e["type"].as_str().unwrap_or("").to_owned(), e["resource"].as_str().unwrap_or("").to_owned())).collect()
}

/// Polls until the receiver holds `n` distinct events (or 20 s pass).
async fn wait_for(receiver: &Receiver, n: usize) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = events(&receiver.received());
        if got.len() >= n || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn deliveries(app: &TestApp, sub: &str) -> Vec<pb::WebhookDelivery> {
    let req = pb::ListWebhookDeliveriesRequest { parent: sub.into(), page_size: 100, page_token: String::new() };
    app.viewer.clone().list_webhook_deliveries(req).await.expect("deliveries").into_inner().webhook_deliveries
}

fn pair(kind: &str, resource: &str) -> (String, String) {
    (kind.to_owned(), resource.to_owned())
}

pub async fn every_change_arrives_signed_and_in_order(b: Backend) {
    let Some(app) = spawn_app_webhooks(b, fast_webhooks(1_000), 60).await else { return };
    env(&app, "dev", false).await;
    let mut receiver = Receiver::start().await;
    let sub = subscribe(&app, "ops", &receiver.url()).await;
    assert_eq!((sub.state, sub.secret.as_str(), sub.secret_fingerprint.len()), (ACTIVE, "", 16), "{sub:?}");
    let rally = integration(&app, "dev", "rally", "dev-key-1", true).await;
    let main = mapping(&app, &rally.name, "main", "", true).await;
    let nightly = job(&app, "dev", "nightly", &rally.name, false).await;
    let (mut admin, mut op) = (app.admin.clone(), app.dev_operator.clone());
    let ask = pb::AcquireSyncLeaseRequest { mapping: main.name.clone(), job: String::new(), ttl: None, request_id: String::new() };
    let lease = op.acquire_sync_lease(ask.clone()).await.expect("lease").into_inner();

    // Receiver up: suspend (revokes the lease), restore, rotate, pause.
    admin
        .suspend_credentials(pb::SuspendCredentialsRequest { name: rally.name.clone(), request_id: String::new() })
        .await
        .expect("suspend");
    admin
        .restore_credentials(pb::RestoreCredentialsRequest { name: rally.name.clone(), request_id: String::new() })
        .await
        .expect("restore");
    admin
        .rotate_credentials(pb::RotateCredentialsRequest {
            name: rally.name.clone(),
            api_key: "dev-key-2".into(),
            request_id: String::new(),
        })
        .await
        .expect("rotate");
    let pause = pb::PauseSyncJobRequest { name: nightly.name.clone(), reason: "maintenance".into(), request_id: String::new() };
    admin.pause_sync_job(pause).await.expect("pause");
    let mut expected = vec![
        pair("credentials.suspended", &rally.name),
        pair("sync_lease.revoked", &lease.name),
        pair("credentials.restored", &rally.name),
        pair("credentials.rotated", &rally.name),
        pair("sync_job.paused", &nightly.name),
    ];
    assert_eq!(kinds(&wait_for(&receiver, expected.len()).await), expected);

    // Receiver down: the changes go through all the same.
    receiver.stop().await;
    let fence = pb::FenceEnvironmentRequest {
        environment: "environments/dev".into(),
        holder: "t".into(),
        reason: "refresh".into(),
        include_resources: false,
        request_id: String::new(),
    };
    admin.fence_environment(fence).await.expect("fence while the receiver is down");
    let unfence = pb::UnfenceEnvironmentRequest {
        environment: "environments/dev".into(),
        holder: "t".into(),
        force: false,
        request_id: String::new(),
    };
    admin.unfence_environment(unfence).await.expect("unfence");
    admin.resume_sync_job(pb::ResumeSyncJobRequest { name: nightly.name.clone(), request_id: String::new() }).await.expect("resume");
    admin
        .deactivate_mapping(pb::DeactivateMappingRequest { name: main.name.clone(), request_id: String::new() })
        .await
        .expect("deactivate mapping");
    let off = pb::Integration { name: rally.name.clone(), active: false, ..Default::default() };
    let mask = Some(prost_types::FieldMask { paths: vec!["active".into()] });
    admin
        .update_integration(pb::UpdateIntegrationRequest { integration: Some(off), update_mask: mask, request_id: String::new() })
        .await
        .expect("deactivate");
    expected.extend([
        pair("environment.fenced", "environments/dev/fence"),
        pair("environment.unfenced", "environments/dev/fence"),
        pair("sync_job.resumed", &nightly.name),
        pair("mapping.disabled", &main.name),
        pair("integration.deactivated", &rally.name),
    ]);
    // Attempts fail while it is down, and the log shows them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let log = deliveries(&app, &sub.name).await;
        if let Some(a) = log.iter().flat_map(|d| d.attempts.iter()).find(|a| !a.error.is_empty()) {
            break a.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no failed attempt logged: {log:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(failed.status_code, 0, "{failed:?}");
    assert!(failed.error.contains("connect"), "{failed:?}");

    // Back up: everything arrives, once each after de-duplication, in commit order.
    receiver.restart().await;
    let got = wait_for(&receiver, expected.len()).await;
    assert_eq!(kinds(&got), expected);
    assert!(got.iter().all(|e| e["environment"] == "dev" && e["time"].as_str().is_some_and(|t| t.ends_with('Z'))), "{got:?}");
    assert_eq!(got[0]["data"]["after"]["credential_state"], "Suspended", "{}", got[0]);

    // The log: newest first, all delivered, the failed attempts beside the success.
    let log = deliveries(&app, &sub.name).await;
    assert_eq!(log.len(), expected.len());
    assert!(log.windows(2).all(|w| w[0].name > w[1].name || w[0].name.len() > w[1].name.len()), "newest first");
    assert!(log.iter().all(|d| d.state == 2 && d.deliver_time.is_some()), "{log:?}");
    let retried = log.iter().find(|d| d.attempts.len() > 1).expect("a delivery that needed retries");
    assert!(retried.attempts[0].error.is_empty() && retried.attempts[0].status_code == 200, "{retried:?}");
    assert!(retried.attempts[1..].iter().all(|a| !a.error.is_empty()), "{retried:?}");

    // Redelivery sends the same event (same id) again.
    let newest = log[0].clone();
    let again = admin
        .redeliver_webhook(pb::RedeliverWebhookRequest { name: newest.name.clone(), request_id: String::new() })
        .await
        .expect("redeliver")
        .into_inner();
    assert_eq!((again.state, again.event_id.as_str()), (1, newest.event_id.as_str()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while receiver.received().iter().filter(|r| r.header("ferry-event-id") == newest.event_id).count() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "not redelivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missing = pb::RedeliverWebhookRequest { name: format!("{}/deliveries/999999", sub.name), request_id: String::new() };
    assert_eq!(admin.redeliver_webhook(missing).await.unwrap_err().code(), Code::NotFound);

    // The secret: never in a reply, never stored in clear (in any column, audit included).
    let listed =
        app.viewer.clone().list_webhook_subscriptions(pb::ListWebhookSubscriptionsRequest::default()).await.expect("list").into_inner();
    assert_eq!(listed.webhook_subscriptions.len(), 1);
    assert!(!format!("{listed:?}{log:?}{again:?}").contains(SECRET));
    for (column, value) in crate::secrets::every_stored_value(&app.database_url).await {
        assert!(!value.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret is in {column}");
    }
}

pub async fn a_dead_receiver_disables_its_subscription(b: Backend) {
    let Some(app) = spawn_app_webhooks(b, fast_webhooks(3), 60).await else { return };
    env(&app, "dev", false).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let sub = subscribe(&app, "dead", &format!("http://{dead}/hook")).await;
    let rally = integration(&app, "dev", "rally", "dev-key-1", true).await;
    let mut admin = app.admin.clone();
    admin
        .suspend_credentials(pb::SuspendCredentialsRequest { name: rally.name.clone(), request_id: String::new() })
        .await
        .expect("suspend");

    let get = pb::GetWebhookSubscriptionRequest { name: sub.name.clone() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let disabled = loop {
        let s = app.viewer.clone().get_webhook_subscription(get.clone()).await.expect("get").into_inner();
        if s.state == DISABLED {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "not disabled: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(disabled.consecutive_failures, 3, "{disabled:?}");
    assert!(
        disabled.disabled_reason.contains("3 delivery attempts failed in a row") && disabled.disabled_reason.contains("connect"),
        "{disabled:?}"
    );
    let log = deliveries(&app, &sub.name).await;
    assert_eq!((log.len(), log[0].attempts.len(), log[0].state), (1, 3, 1), "{log:?}");
    // Events keep queueing for a subscription failures disabled.
    admin
        .restore_credentials(pb::RestoreCredentialsRequest { name: rally.name.clone(), request_id: String::new() })
        .await
        .expect("restore");

    // Pointed at a live receiver and re-enabled, it resumes where it stopped.
    let receiver = Receiver::start().await;
    let fixed = pb::WebhookSubscription { name: sub.name.clone(), url: receiver.url(), state: ACTIVE, ..Default::default() };
    let mask = Some(prost_types::FieldMask { paths: vec!["url".into(), "state".into()] });
    let update = pb::UpdateWebhookSubscriptionRequest { webhook_subscription: Some(fixed), update_mask: mask, request_id: String::new() };
    let enabled = admin.update_webhook_subscription(update).await.expect("re-enable").into_inner();
    assert_eq!((enabled.state, enabled.consecutive_failures, enabled.disabled_reason.as_str()), (ACTIVE, 0, ""));
    let got = wait_for(&receiver, 2).await;
    assert_eq!(kinds(&got), vec![pair("credentials.suspended", &rally.name), pair("credentials.restored", &rally.name)]);
}

pub async fn subscriptions_refuse_bad_input(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    let mut admin = app.admin.clone();
    let bad = pb::WebhookSubscription {
        url: "ftp://example.com/x".into(),
        event_types: vec!["integration.exploded".into()],
        secret: "short".into(),
        ..Default::default()
    };
    let req = pb::CreateWebhookSubscriptionRequest {
        webhook_subscription_id: "Bad_Id".into(),
        webhook_subscription: Some(bad),
        request_id: String::new(),
    };
    let refused = admin.create_webhook_subscription(req).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&refused);
    fields.sort();
    assert_eq!(
        fields,
        ["webhook_subscription.event_types", "webhook_subscription.secret", "webhook_subscription.url", "webhook_subscription_id"]
    );
    assert!(!format!("{refused:?}").contains("short"), "the secret is not repeated");

    // Roles and scopes: mutations are admin; a token scoped to environments is refused.
    let ok = pb::CreateWebhookSubscriptionRequest {
        webhook_subscription_id: "ops".into(),
        webhook_subscription: Some(subscription("http://127.0.0.1:9/h", &["sync_job.paused"])),
        request_id: "sub-1".into(),
    };
    assert_eq!(app.dev_operator.clone().create_webhook_subscription(ok.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(app.dev_admin.clone().create_webhook_subscription(ok.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    // request_id: a retry gets the first reply; a different request under it is refused.
    let first = admin.create_webhook_subscription(ok.clone()).await.expect("create").into_inner();
    assert_eq!(admin.create_webhook_subscription(ok.clone()).await.expect("replay").into_inner(), first);
    let other = pb::CreateWebhookSubscriptionRequest { webhook_subscription_id: "ops2".into(), ..ok.clone() };
    assert_eq!(admin.create_webhook_subscription(other).await.unwrap_err().code(), Code::InvalidArgument);
    let dup = pb::CreateWebhookSubscriptionRequest { request_id: String::new(), ..ok };
    assert_eq!(admin.create_webhook_subscription(dup).await.unwrap_err().code(), Code::AlreadyExists);
    // An update needs a mask; PublishEvents needs the service right.
    let update =
        pb::UpdateWebhookSubscriptionRequest { webhook_subscription: Some(first.clone()), update_mask: None, request_id: String::new() };
    assert_eq!(violated_fields(&admin.update_webhook_subscription(update).await.unwrap_err()), ["update_mask"]);
    let publish = pb::PublishEventsRequest { events: vec![] };
    assert_eq!(app.dev_operator.clone().publish_events(publish).await.unwrap_err().code(), Code::PermissionDenied);
    let del = pb::DeleteWebhookSubscriptionRequest { name: first.name.clone(), request_id: String::new() };
    admin.delete_webhook_subscription(del).await.expect("delete");
    let get = pb::GetWebhookSubscriptionRequest { name: first.name };
    assert_eq!(admin.get_webhook_subscription(get).await.unwrap_err().code(), Code::NotFound);
}

pub async fn delivered_deliveries_are_pruned_pending_ones_kept(b: Backend) {
    let webhooks = WebhookArgs { log_retention_hours: 0, ..fast_webhooks(1_000) };
    let Some(app) = spawn_app_webhooks(b, webhooks, 1).await else { return };
    env(&app, "dev", false).await;
    let receiver = Receiver::start().await;
    let live = subscribe(&app, "live", &receiver.url()).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let stuck = subscribe(&app, "stuck", &format!("http://{dead}/hook")).await;
    let rally = integration(&app, "dev", "rally", "dev-key-1", true).await;
    let suspend = pb::SuspendCredentialsRequest { name: rally.name.clone(), request_id: String::new() };
    app.admin.clone().suspend_credentials(suspend).await.expect("suspend");
    assert_eq!(wait_for(&receiver, 1).await.len(), 1);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !deliveries(&app, &live.name).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the delivered delivery was not pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pending = deliveries(&app, &stuck.name).await;
    assert_eq!((pending.len(), pending[0].state), (1, 1), "an undelivered delivery is kept: {pending:?}");
    assert!(!pending[0].attempts.is_empty() && !pending[0].event_type.is_empty(), "with its event and attempts: {pending:?}");
}

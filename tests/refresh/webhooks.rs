//! A refresh run's events reach a webhook receiver: the coordinator appends each run and
//! step state change to its outbox in the run's own write, relays them to
//! integration-control's PublishEvents, which delivers them signed, in order, with the
//! integration-control events the refresh's bulk steps made.

use std::time::Duration;

use ferry_proto::integration::v1 as ipb;
use ferry_proto::refresh::v1 as pb;
use ferry_testkit::receiver::Receiver;
use integration_control::domain::webhooks::verify;

use crate::helpers::*;
use crate::scenario::{PROD_RALLY, arrange};

const SECRET: &str = "whsec-refresh-test-31f9b2";

pub async fn refresh_run_events_arrive_through_the_coordinators_outbox(b: Backend) {
    let Some(s) = spawn_suite(b, Knobs::default()).await else { return };
    arrange(&s, false).await;
    let receiver = Receiver::start().await;
    let hook = ipb::WebhookSubscription {
        url: receiver.url(),
        event_types: vec![
            "refresh_run.state_changed".into(),
            "refresh_run.step_changed".into(),
            "integration.deactivated".into(),
            "integration.activated".into(),
        ],
        environments: vec!["prod".into(), "sandbox".into()],
        secret: SECRET.into(),
        ..Default::default()
    };
    let req = ipb::CreateWebhookSubscriptionRequest {
        webhook_subscription_id: "runs".into(),
        webhook_subscription: Some(hook),
        request_id: String::new(),
    };
    s.integration.clone().create_webhook_subscription(req).await.expect("subscribe");

    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    let done = wait_for(&s, &run.name, 60, terminal).await;
    assert_eq!(done.state, SUCCEEDED, "{done:?}");

    // Every event of the run arrives, once after de-duplication, signed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let events = loop {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
        let mut seen = std::collections::HashSet::new();
        let mut events = Vec::new();
        for r in receiver.received() {
            assert_eq!(verify(SECRET.as_bytes(), r.header("ferry-signature"), &r.body, now, 300), Ok(()));
            let e = r.json();
            assert_eq!(r.header("ferry-event-id"), e["id"].as_str().unwrap_or("-"));
            if seen.insert(e["id"].as_str().unwrap_or_default().to_owned()) {
                events.push(e);
            }
        }
        let finished = events.iter().any(|e| e["type"] == "refresh_run.state_changed" && e["data"]["state"] == "Succeeded");
        if finished {
            break events;
        }
        assert!(tokio::time::Instant::now() < deadline, "the run's last event did not arrive: {events:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The run's own events, in the order it went through them.
    let of_run: Vec<&serde_json::Value> = events.iter().filter(|e| e["resource"] == run.name.as_str()).collect();
    assert!(of_run.iter().all(|e| e["environment"] == "sandbox"), "{of_run:#?}");
    let states: Vec<&str> =
        of_run.iter().filter(|e| e["type"] == "refresh_run.state_changed").map(|e| e["data"]["state"].as_str().unwrap_or("")).collect();
    assert_eq!(states.first().copied(), Some("Pending"), "{states:?}");
    assert_eq!(states.last().copied(), Some("Succeeded"), "{states:?}");
    assert!(states.contains(&"Running"), "{states:?}");
    let steps: Vec<(i64, &str)> = of_run
        .iter()
        .filter(|e| e["type"] == "refresh_run.step_changed")
        .map(|e| (e["data"]["step"].as_i64().unwrap_or(0), e["data"]["state"].as_str().unwrap_or("")))
        .collect();
    for n in 1..=done.steps.len() as i64 {
        let of_step: Vec<&str> = steps.iter().filter(|(s, _)| *s == n).map(|(_, st)| *st).collect();
        assert_eq!(of_step.last().copied(), Some("Succeeded"), "step {n}: {of_step:?}");
        assert!(of_step.first().copied() == Some("Running") || of_step == ["Succeeded"], "step {n}: {of_step:?}");
    }
    // Steps go forward in order: each step's first event comes after the previous step's last.
    let firsts: Vec<usize> = (1..=done.steps.len() as i64).filter_map(|n| steps.iter().position(|(s, _)| *s == n)).collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{steps:?}");

    // integration-control's own events of the refresh: production's integration was
    // deactivated (step 2), then activated again (step 8), in that order.
    let rally: Vec<&str> = events.iter().filter(|e| e["resource"] == PROD_RALLY).map(|e| e["type"].as_str().unwrap_or("")).collect();
    assert_eq!(rally, ["integration.deactivated", "integration.activated"]);
}

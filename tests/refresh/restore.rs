//! A refresh loses nothing: the destination's registry content (groups, entities, links,
//! projects, configuration items) is kept as a restore point before the copy, and an abort
//! after the copy gives it back exactly.

use ferry_proto::refresh::v1 as pb;
use ferry_proto::registry::v1 as rpb;

use crate::helpers::*;
use crate::scenario::*;

async fn content(s: &Suite, env: &str) -> Vec<String> {
    ferry_testkit::content::environment(&mut s.registry.clone(), &format!("environments/{env}")).await
}

/// Aborted after step 5 and after each later step, the destination reads exactly as it
/// did before the refresh.
pub async fn abort_after_the_copy_gives_the_destination_back(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs { step_delay_ms: 700, ..Knobs::default() }).await else { return };
    arrange(&s, false).await;
    // More of the sandbox's own: a shared lookup in two groups, references, configuration.
    let own = group(&s, "sandbox", "own", &["lookup-a", "lookup-b"]).await;
    let before = content(&s, "sandbox").await;
    let source = content(&s, "prod").await;
    assert!(before.iter().any(|l| l.starts_with(&format!("group {own}"))), "{before:#?}");

    for after_step in 5..=8 {
        let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
        let copied = wait_for(&s, &run.name, 60, |r| steps_done(r) >= after_step).await;
        assert_ne!(content(&s, "sandbox").await, before, "step 5 copied production over the sandbox");
        assert!(copied.restore_point.starts_with("environments/sandbox/restorePoints/refresh-"), "{}", copied.restore_point);
        s.refresh
            .clone()
            .abort_refresh_run(pb::AbortRefreshRunRequest {
                name: run.name.clone(),
                reason: format!("after step {after_step}"),
                request_id: String::new(),
            })
            .await
            .expect("abort");
        let last = wait_for(&s, &run.name, 60, terminal).await;
        assert_eq!(last.state, ABORTED, "after step {after_step}: {:?}", last.error);
        assert_eq!(content(&s, "sandbox").await, before, "after step {after_step}: the sandbox's own content is back");
        assert_eq!(content(&s, "prod").await, source, "the source is never touched");
        let copy = &last.steps[4];
        assert_eq!(copy.state, pb::StepState::Undone as i32);
        assert!(
            copy.log.iter().any(|l| l.starts_with(&format!("registry: restored environments/sandbox from {}", last.restore_point))),
            "{:?}",
            copy.log
        );
        assert!(copy.undo_changes.iter().any(|c| c.resource == "environments/sandbox" && c.field == "content"));
        // The restore point stays, and says it was restored.
        let point = s
            .registry
            .clone()
            .get_restore_point(rpb::GetRestorePointRequest { name: last.restore_point.clone() })
            .await
            .expect("restore point kept")
            .into_inner();
        assert_eq!(point.run, run.name);
        assert!(point.integration_snapshot.ends_with(&format!("/snapshots/refresh-{}", run.name.trim_start_matches("refreshRuns/"))));
        assert!(point.restore_time.is_some());
    }
}

/// A restore point deleted (or expired) before the abort cannot give the content back: the
/// abort still ends, and the copy step says what stays.
pub async fn abort_without_its_restore_point_says_the_copy_stays(backend: Backend) {
    let Some(s) = spawn_suite(backend, Knobs { step_delay_ms: 700, ..Knobs::default() }).await else { return };
    arrange(&s, false).await;
    let run = start(&s, "prod", "sandbox", options(pb::RefreshMode::Managed, false)).await.expect("start");
    let copied = wait_for(&s, &run.name, 60, |r| steps_done(r) >= 5).await;
    s.registry
        .clone()
        .delete_restore_point(rpb::DeleteRestorePointRequest { name: copied.restore_point.clone(), request_id: String::new() })
        .await
        .expect("delete the restore point");
    let after_copy = content(&s, "sandbox").await;
    s.refresh
        .clone()
        .abort_refresh_run(pb::AbortRefreshRunRequest { name: run.name.clone(), reason: "too late".into(), request_id: String::new() })
        .await
        .expect("abort");
    let last = wait_for(&s, &run.name, 60, terminal).await;
    assert_eq!(last.state, ABORTED, "{:?}", last.error);
    let copy = &last.steps[4];
    assert!(copy.log.iter().any(|l| l.contains("cannot be restored") && l.ends_with("the copied content stays")), "{:?}", copy.log);
    assert_eq!(content(&s, "sandbox").await, after_copy, "nothing else was done to the registry content");
    assert!(!fence(&s, "sandbox").await.fenced, "the rest of the undo ran");
}

/// A refresh with a profile: the plan counts what it keeps, leaves out and masks; the run
/// keeps the sandbox's own group byte for byte, copies no map, and no production e-mail
/// reaches the sandbox; an abort still gives the sandbox back exactly.
pub async fn a_refresh_with_a_profile_preserves_excludes_and_masks(backend: Backend) {
    use ferry_proto::common::v1::{CopyProfile, MaskAction, MaskingRule};
    let Some(s) = spawn_suite(backend, Knobs { step_delay_ms: 300, ..Knobs::default() }).await else { return };
    arrange(&s, false).await;
    let people = group(&s, "prod", "people", &[]).await;
    for (key, kind, payload) in [
        ("crm-db", 1, r#"{"admin":{"email":"jane.doe@corp.example.com"},"url":"https://crm.corp"}"#),
        ("hr-db", 1, r#"{"admin":{"email":"max@corp.example.com"}}"#),
        ("regions", 9, r#"{"eu":["de","fr"]}"#),
    ] {
        s.registry
            .clone()
            .create_entity(rpb::CreateEntityRequest {
                parent: people.clone(),
                entity: Some(rpb::Entity { kind, key: key.into(), payload_json: payload.into(), ..Default::default() }),
                request_id: String::new(),
            })
            .await
            .expect("production entity");
    }
    let own = group(&s, "sandbox", "sandbox-test", &["fake-billing", "fixtures"]).await;
    let of_own = |c: &[String]| -> Vec<String> {
        c.iter().filter(|l| l.starts_with(&format!("group {own} ")) || l.starts_with(&format!("entity {own} "))).cloned().collect()
    };
    let before = content(&s, "sandbox").await;
    let profile = CopyProfile {
        preserve_groups: vec!["sandbox-*".into()],
        exclude_kinds: vec![9],
        masking: vec![MaskingRule { kind: 1, pointer: "/admin/email".into(), action: MaskAction::Fake as i32, value_json: String::new() }],
        ..Default::default()
    };
    let opts = || {
        let mut o = options(pb::RefreshMode::Managed, false).expect("options");
        o.profile = Some(profile.clone());
        Some(o)
    };

    // The plan counts what the profile does, and changes nothing.
    let plan = s
        .refresh
        .clone()
        .plan_refresh(pb::PlanRefreshRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            options: opts(),
        })
        .await
        .expect("plan")
        .into_inner();
    let copy = &plan.steps[4];
    let ds = copy.profile_counts.iter().find(|k| k.kind == 1).expect("data sources counted");
    assert_eq!((ds.copied, ds.masked), (2, 2));
    let maps = copy.profile_counts.iter().find(|k| k.kind == 9).expect("maps counted");
    assert_eq!((maps.copied, maps.excluded), (0, 1));
    let services = copy.profile_counts.iter().find(|k| k.kind == 7).expect("services counted");
    assert_eq!(services.preserved, 2, "the sandbox's own group");
    assert!(
        copy.summary.iter().any(|l| l == "DATA_SOURCE: copy 2 (2 masked), exclude 0, keep 0 of environments/sandbox"),
        "{:?}",
        copy.summary
    );
    assert_eq!(content(&s, "sandbox").await, before, "planning writes nothing");
    let mut bad = opts();
    if let Some(o) = bad.as_mut() {
        o.profile.as_mut().expect("profile").masking[0].pointer = "admin".into();
    }
    let refused = s
        .refresh
        .clone()
        .plan_refresh(pb::PlanRefreshRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            options: bad,
        })
        .await
        .expect_err("a bad pointer");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(refused_fields(&refused), vec!["options.profile.masking[0].pointer"], "{refused:?}");

    // The run.
    let run = start(&s, "prod", "sandbox", opts()).await.expect("start");
    let done = wait_for(&s, &run.name, 60, terminal).await;
    assert_eq!(done.state, SUCCEEDED, "{:?}", done.error);
    assert!(done.steps[4].log.iter().any(|l| l.starts_with("profile: DATA_SOURCE: copied 2 (2 masked)")), "{:?}", done.steps[4].log);
    let after = content(&s, "sandbox").await;
    let all = after.join("\n");
    assert!(!all.contains("corp.example"), "a production e-mail reached the sandbox:\n{all}");
    assert!(all.contains("crm-db") && all.contains(".invalid"), "masked, not dropped:\n{all}");
    assert!(!all.contains("kind 9 "), "no map:\n{all}");
    assert_eq!(of_own(&after), of_own(&before), "the preserved group is byte-identical");
    assert!(all.contains("environments/sandbox/groups/core"), "production's groups arrived");

    // Aborting a profiled refresh after its copy still gives everything back.
    let again = start(&s, "prod", "sandbox", opts()).await.expect("a second refresh");
    wait_for(&s, &again.name, 60, |r| steps_done(r) >= 5).await;
    s.refresh
        .clone()
        .abort_refresh_run(pb::AbortRefreshRunRequest { name: again.name.clone(), reason: "test".into(), request_id: String::new() })
        .await
        .expect("abort");
    let last = wait_for(&s, &again.name, 60, terminal).await;
    assert_eq!(last.state, ABORTED, "{:?}", last.error);
    assert_eq!(content(&s, "sandbox").await, after, "the abort gives back what the first refresh left");
}

fn refused_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status.get_details_bad_request().map(|b| b.field_violations.into_iter().map(|f| f.field).collect()).unwrap_or_default()
}

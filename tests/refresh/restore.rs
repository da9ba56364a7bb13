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

//! The engine's tables on SQLite and on PostgreSQL: a run is claimed by one driver at a
//! time, a lapsed lease is taken over, one run holds an environment at a time, and runs
//! stored before the engine are carried over with their step outputs as journal entries.

use std::collections::HashSet;

use ferry_kit::db::now_micros;
use ferry_testkit::{Backend, database, temp_dir};
use refresh_coordinator::domain::remote::ChangeSet;
use refresh_coordinator::domain::{
    EnvName, Options, PlannedStep, ProjectName, RefreshRun, RefreshSpec, Run, RunState, StepKind, StepState,
};
use refresh_coordinator::engine::journal::Journal;
use refresh_coordinator::engine::leases::{self, Claim, Interrupted};
use refresh_coordinator::engine::locks::{self, Held, Lock};
use refresh_coordinator::engine::ops::ListFilter;
use refresh_coordinator::engine::store as runs;
use refresh_coordinator::kinds::{Promotion, Refresh};
use refresh_coordinator::store::migrations::Migrator;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use sea_orm_migration::MigratorTrait;

async fn connect(backend: Backend) -> Option<(DatabaseConnection, std::path::PathBuf)> {
    let dir = temp_dir("ferry-refresh-store");
    let url = database(backend, &dir, "refresh.db").await?;
    let db = ferry_kit::db::connect(&url).await.expect("connect");
    ferry_kit::db::migrate::<Migrator>(&db, "refresh-coordinator").await.expect("migrate");
    Some((db, dir))
}

fn env(id: &str) -> EnvName {
    EnvName::parse(&format!("environments/{id}")).expect("env name")
}

fn new_run(source: &str, destination: &str) -> RefreshRun {
    let steps: Vec<PlannedStep> = StepKind::ALL.iter().map(|k| PlannedStep::new(*k)).collect();
    let spec = RefreshSpec {
        source: env(source),
        destination: env(destination),
        options: Options::default(),
        plan_etag: "e".into(),
        snapshot: String::new(),
        restore_point: String::new(),
        copied_groups: Vec::new(),
    };
    Run::new(refresh_coordinator::domain::new_run_id(), spec, steps, "test".into(), now_micros())
}

async fn insert(db: &impl ConnectionTrait, run: &RefreshRun, traceparent: Option<&str>) {
    let body = serde_json::to_string(run).expect("body");
    let subjects = [run.spec.source.to_string(), run.spec.destination.to_string()];
    let row = runs::NewRun {
        kind: "refresh",
        id: &run.id,
        created_at: run.create_time,
        state: run.state,
        body: &body,
        subjects: &subjects,
        traceparent,
    };
    runs::insert(db, row).await.expect("insert");
}

async fn lease_is_exclusive_and_lapses(backend: Backend) {
    let Some((db, dir)) = connect(backend).await else { return };
    let run = new_run("prod", "dev");
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    insert(&db, &run, Some(traceparent)).await;
    let stored = runs::find(&db, &run.id).await.expect("find").expect("stored");
    assert_eq!(stored.traceparent.as_deref(), Some(traceparent), "the trace context is kept with the run");
    let now = now_micros();
    let second = 1_000_000;

    let id = |c: Option<Claim>| c.map(|c| c.id);
    let first = leases::claim(&db, "a", now, now + second, &[]).await.expect("claim");
    assert_eq!(first, Some(Claim { id: run.id.clone(), kind: "refresh".into(), interrupted: None }), "a new run was never held");
    assert_eq!(leases::claim(&db, "b", now, now + second, &[]).await.expect("claim"), None, "held by a");
    assert!(leases::renew(&db, &run.id, "a", now + 5, now + 2 * second).await.expect("renew"));
    assert!(!leases::renew(&db, &run.id, "b", now, now + 2 * second).await.expect("renew"), "b holds nothing");

    // a stops renewing: once its lease lapses, b takes the run over (an interruption, with
    // when a was last heard from) and a cannot renew.
    let later = now + 3 * second;
    let taken = leases::claim(&db, "b", later, later + second, &[]).await.expect("claim");
    assert_eq!(taken.and_then(|c| c.interrupted), Some(Interrupted { holder: "a".into(), last_heard: now + 5 }));
    assert!(!leases::renew(&db, &run.id, "a", later, later + second).await.expect("renew"), "a lost the lease");
    // Given back: the next claim is no interruption.
    leases::release(&db, &run.id, "b").await.expect("release");
    let next = leases::claim(&db, "c", later, later + second, &[]).await.expect("claim");
    assert_eq!(next.as_ref().map(|c| c.interrupted.is_none()), Some(true), "{next:?}");

    // c restarts under its holder id: its lease ends at once and the run is claimable now.
    assert_eq!(leases::claim(&db, "c", later, later + second, &[]).await.expect("claim"), None, "still leased");
    assert_eq!(leases::expire_held_by(&db, "c").await.expect("expire"), 1);
    assert_eq!(leases::expire_held_by(&db, "nobody").await.expect("expire"), 0);
    let back = leases::claim(&db, "c", later, later + second, &[]).await.expect("claim");
    assert_eq!(back.as_ref().and_then(|c| c.interrupted.as_ref()).map(|i| i.holder.as_str()), Some("c"), "{back:?}");
    assert_eq!(id(back), Some(run.id.clone()));
    let _ = std::fs::remove_dir_all(dir);
}

async fn concurrent_drivers_never_claim_one_run_twice(backend: Backend) {
    let Some((db, dir)) = connect(backend).await else { return };
    let mut ids = HashSet::new();
    for i in 0..24 {
        let run = new_run(&format!("s{i}"), &format!("d{i}"));
        ids.insert(run.id.clone());
        insert(&db, &run, None).await;
    }
    let now = now_micros();
    let mut tasks = Vec::new();
    for owner in 0..6 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                match leases::claim(&db, &format!("owner-{owner}"), now, now + 60_000_000, &[]).await {
                    Ok(Some(claim)) => mine.push(claim.id),
                    Ok(None) => return mine,
                    Err(e) => panic!("claim: {e}"),
                }
            }
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.expect("claimer"));
    }
    let unique: HashSet<String> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), unique.len(), "a run was claimed twice");
    assert_eq!(unique, ids);
    let _ = std::fs::remove_dir_all(dir);
}

fn project(env: &str, id: &str) -> ProjectName {
    ProjectName::parse(&format!("environments/{env}/projects/{id}")).expect("project name")
}

/// Environment locks exclude each other and every project lock in the environment;
/// project locks exclude each other; a refused take takes nothing.
async fn locks_exclude_by_environment_and_project(backend: Backend) {
    let Some((db, dir)) = connect(backend).await else { return };
    let (prod, dev, uat) = (Lock::Environment(env("prod")), Lock::Environment(env("dev")), Lock::Environment(env("uat")));
    let held = |run: &str, resource: &str| Held { run: run.into(), resource: resource.into() };
    assert_eq!(locks::take(&db, "refreshRuns/1", &[prod.clone(), dev.clone()]).await.expect("take"), Ok(()));
    assert_eq!(
        locks::take(&db, "refreshRuns/2", &[uat.clone(), dev.clone()]).await.expect("take"),
        Err(held("refreshRuns/1", "environments/dev"))
    );
    assert_eq!(locks::blocking(&db, &uat).await.expect("blocking"), None, "a refused take takes nothing");
    let in_dev = Lock::Project(project("dev", "crm"));
    assert_eq!(
        locks::take(&db, "promotionRuns/3", std::slice::from_ref(&in_dev)).await.expect("take"),
        Err(held("refreshRuns/1", "environments/dev"))
    );
    let in_uat = Lock::Project(project("uat", "crm"));
    assert_eq!(locks::take(&db, "promotionRuns/3", std::slice::from_ref(&in_uat)).await.expect("take"), Ok(()));
    assert_eq!(
        locks::take(&db, "promotionRuns/4", std::slice::from_ref(&in_uat)).await.expect("take"),
        Err(held("promotionRuns/3", "environments/uat/projects/crm"))
    );
    assert_eq!(
        locks::take(&db, "promotionRuns/5", &[Lock::Project(project("uat", "erp"))]).await.expect("take"),
        Ok(()),
        "another project"
    );
    assert_eq!(
        locks::take(&db, "refreshRuns/6", std::slice::from_ref(&uat)).await.expect("take").map_err(|h| h.run.starts_with("promotionRuns/")),
        Err(true)
    );
    locks::release(&db, "refreshRuns/1").await.expect("release");
    assert!(locks::take(&db, "refreshRuns/2", &[uat.clone(), dev.clone()]).await.expect("take").is_err(), "uat still has projects locked");
    assert_eq!(locks::take(&db, "refreshRuns/2", &[dev]).await.expect("take"), Ok(()));
    let _ = std::fs::remove_dir_all(dir);
}

/// Sixteen starts at once on one environment, refreshes of it and promotions into one of
/// its projects, each in its own transaction: exactly one takes its locks.
async fn concurrent_starts_on_one_environment_one_wins(backend: Backend) {
    let Some((db, dir)) = connect(backend).await else { return };
    // Rounds over fresh environments, the starts of each released together: a race that
    // lets two in shows within a few rounds.
    for round in 0..8 {
        let target = format!("prod{round}");
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (db, target, barrier) = (db.clone(), target.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let (run, wanted) = if i % 2 == 0 {
                    (format!("refreshRuns/{round}-{i}"), vec![Lock::Environment(env(&target)), Lock::Environment(env(&format!("sbx{i}")))])
                } else {
                    (format!("promotionRuns/{round}-{i}"), vec![Lock::Project(project(&target, "crm"))])
                };
                barrier.wait().await;
                loop {
                    let txn = db.begin().await.expect("begin");
                    match locks::take(&txn, &run, &wanted).await {
                        Ok(Ok(())) => {
                            txn.commit().await.expect("commit");
                            return Some(run);
                        }
                        Ok(Err(_)) => return None,
                        // A concurrent start's write won: try again, as a request retry would.
                        Err(e) if ferry_kit::db::is_write_race(&e) => continue,
                        Err(e) => panic!("take: {e}"),
                    }
                }
            }));
        }
        let mut won = Vec::new();
        for t in tasks {
            won.extend(t.await.expect("start"));
        }
        assert_eq!(won.len(), 1, "round {round}: exactly one start takes its locks: {won:?}");
        for run in &won {
            locks::release(&db, run).await.expect("release");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn planned(kind: &str) -> serde_json::Value {
    serde_json::json!({"kind": kind, "summary": [], "integrations": [], "mappings": [], "provisioned_mappings": [], "sync_jobs": [],
        "copy": null, "requires_confirmation": false})
}

fn old_step(extra: serde_json::Value) -> serde_json::Value {
    let mut s = serde_json::json!({"state": "Succeeded", "attempts": 1, "start_time": 1, "end_time": 2, "actor": "refresh-coordinator",
        "comment": "", "waiting_for": "", "confirmed": false, "log": ["done"], "changes": [], "undo_changes": [], "error": null});
    s.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    s
}

async fn exec(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) {
    db.execute_raw(ferry_kit::db::stmt(db.get_database_backend(), sql, values)).await.expect("legacy insert");
}

/// Runs stored in the per-kind tables before the engine: the migration carries each over,
/// its document in the kind's shape, its hex-encoded step outputs as typed journal entries,
/// its pending abort, and what it is listed by.
async fn legacy_runs_are_carried_over(backend: Backend) {
    use ferry_proto::integration::v1 as ipb;
    use ferry_proto::merge::v1 as mpb;
    use prost::Message;
    let dir = temp_dir("ferry-refresh-legacy");
    let Some(url) = database(backend, &dir, "refresh.db").await else { return };
    let db = ferry_kit::db::connect(&url).await.expect("connect");
    // The schema as the release before the engine left it.
    Migrator::up(&db, Some(5)).await.expect("migrate to the per-kind tables");
    let cs = ipb::ChangeSet { environment: "environments/prod".into(), ..Default::default() };
    let refresh = serde_json::json!({
        "name": "r1", "source": "prod", "destination": "dev",
        "options": {"mode": "Managed", "suspend_credentials_instead": false, "require_approval": false},
        "state": "Running", "current_step": 2, "snapshot": "", "error": null, "created_by": "admin token",
        "abort_reason": "", "aborted_by": "", "aborting": false, "plan_etag": "etag1",
        "create_time": 10, "start_time": 11, "end_time": null,
        "steps": [
            old_step(serde_json::json!({"kind": "Check", "plan": planned("Check"), "outputs": {}})),
            old_step(serde_json::json!({"kind": "DeactivateSourceIntegrations", "plan": planned("DeactivateSourceIntegrations"),
                "outputs": {"deactivate": hex::encode(cs.encode_to_vec()), "undone": ""}})),
        ],
    });
    exec(
        &db,
        "INSERT INTO refresh_runs (id, created_at, source, destination, state, version, lease_owner, lease_until, abort_requested, \
         abort_reason, aborted_by, body, traceparent, heartbeat_at) VALUES (?, 10, 'prod', 'dev', 2, 7, 'c1', 99, ?, 'stop', 'ops', ?, NULL, 98)",
        vec!["r1".into(), true.into(), refresh.to_string().into()],
    )
    .await;
    let job = mpb::Job { name: "jobs/j1".into(), state: mpb::JobState::Failed as i32, ..Default::default() };
    let counts = mpb::MergePlanCounts { creates: 3, ..Default::default() };
    let project = |id: &str| serde_json::json!({"env": "corp", "id": id});
    let promotion = serde_json::json!({
        "id": "p1", "source": project("p"), "target": project("q"),
        "options": {"strategy": 1, "group_pairs": [["environments/corp/groups/a", "environments/corp/groups/b"]],
            "require_approval": false, "proceed_with_missing_dependencies": false},
        "state": "Failed", "current_step": 2, "plan": "", "error": null, "created_by": "admin token", "abort_reason": "",
        "aborted_by": "", "proceed_with_changed": false, "aborting": false, "create_time": 20, "start_time": 21, "end_time": null,
        "steps": [
            old_step(serde_json::json!({"number": 1, "kind": "Plan", "source": "p", "recipient": "q", "merge_plan": "", "job": "",
                "revert_job": "", "outputs": {}})),
            old_step(serde_json::json!({"number": 2, "kind": "MergeGroup", "state": "Failed", "source": "environments/corp/groups/a",
                "recipient": "environments/corp/groups/b", "merge_plan": "mergePlans/m1", "job": "jobs/j1", "revert_job": "",
                "outputs": {"counts": hex::encode(counts.encode_to_vec()), "apply-a1": hex::encode(job.encode_to_vec())}})),
        ],
    });
    exec(
        &db,
        "INSERT INTO promotion_runs (id, created_at, source, target, state, version, lease_owner, lease_until, abort_requested, body, \
         traceparent, heartbeat_at) VALUES ('p1', 20, 'environments/corp/projects/p', 'environments/corp/projects/q', 5, 3, '', 0, ?, ?, NULL, 0)",
        vec![false.into(), promotion.to_string().into()],
    )
    .await;
    ferry_kit::db::migrate::<Migrator>(&db, "refresh-coordinator").await.expect("migrate to the engine");

    let stored = runs::find(&db, "r1").await.expect("find").expect("refresh run carried over");
    assert_eq!((stored.kind.as_str(), stored.version), ("refresh", 7));
    assert_eq!(stored.abort_request.as_ref().map(|a| (a.reason.as_str(), a.by.as_str())), Some(("stop", "ops")), "the pending abort");
    let run = stored.run::<Refresh>().expect("a refresh run document");
    assert_eq!((run.spec.source.clone(), run.spec.plan_etag.as_str(), run.state), (env("prod"), "etag1", RunState::Running));
    assert_eq!(run.steps.iter().map(|s| (s.number, s.undo_done)).collect::<Vec<_>>(), [(1, false), (2, true)]);
    let journal = Journal::load(&db, "r1").await.expect("journal");
    let deactivated: Option<ChangeSet> = journal.get(2, "deactivate").expect("typed");
    assert_eq!(deactivated.map(|c| c.environment), Some("environments/prod".to_owned()), "the step output, typed");
    let by = |subject: Option<&str>, scope: Option<&[&str]>| ListFilter {
        states: vec![],
        subject: subject.map(str::to_owned),
        scope: scope.map(|s| s.iter().map(|e| (*e).to_owned()).collect()),
    };
    let count = |kind: &'static str, filter: ListFilter| {
        let db = db.clone();
        async move { runs::list(&db, kind, &filter, None, 10).await.expect("list").len() }
    };
    assert_eq!(count("refresh", by(Some("environments/dev"), None)).await, 1, "listed by environment");
    // A scoped caller lists the runs whose every environment is in scope, in the query.
    assert_eq!(count("refresh", by(None, Some(&["prod", "dev"]))).await, 1);
    assert_eq!(count("refresh", by(None, Some(&["dev"]))).await, 0, "prod is outside the scope");
    assert_eq!(count("refresh", by(None, Some(&[]))).await, 0);

    let stored = runs::find(&db, "p1").await.expect("find").expect("promotion run carried over");
    assert!(stored.abort_request.is_none());
    let run = stored.run::<Promotion>().expect("a promotion run document");
    assert_eq!(run.steps[1].detail.counts.map(|c| c.creates), Some(3));
    assert_eq!(run.spec.options.group_pairs[0].recipient, "environments/corp/groups/b");
    assert_eq!(run.steps[1].state, StepState::Failed);
    let journal = Journal::load(&db, "p1").await.expect("journal");
    assert!(journal.has(2, "apply-a1") && journal.has(2, "failed-a1"), "a retry of the failed step starts a new round");
    assert_eq!(count("promotion", by(Some("environments/corp/projects/q"), None)).await, 1, "listed by project");
    assert_eq!(count("promotion", by(None, Some(&["corp"]))).await, 1, "a project's environment is in scope");
    assert_eq!(count("promotion", by(None, Some(&["corpx"]))).await, 0);
    let _ = std::fs::remove_dir_all(dir);
}

/// A step's changes and what it left alone, when they are its operations' change sets,
/// are not written beside the run: they are derived from the journal when it is read,
/// and equal what the step recorded.
async fn derived_changes_are_read_from_the_journal(backend: Backend) {
    use refresh_coordinator::domain::remote::{CredentialState, JobState, ResourceChange, ResourceState};
    use refresh_coordinator::domain::{Change, LeftAlone};
    let Some((db, dir)) = connect(backend).await else { return };
    let mut run = new_run("prod", "dev");
    insert(&db, &run, None).await;
    let state = |active: bool| ResourceState {
        exists: true,
        active,
        credential_state: CredentialState::Active,
        sync_job_state: JobState::Unspecified,
        paused_by: String::new(),
        fenced: false,
        bound_environment: "environments/prod".into(),
        fence_holder: String::new(),
    };
    let mapping = "environments/dev/integrations/rally/mappings/stories";
    let skipped = LeftAlone { resource: "environments/dev/integrations/rally/mappings/own".into(), reason: "not foreign".into() };
    let cs = ChangeSet {
        environment: "environments/dev".into(),
        changes: vec![ResourceChange { resource: mapping.into(), resource_type: 2, before: Some(state(true)), after: Some(state(false)) }],
        skipped: vec![skipped.clone()],
        change_time: 5,
    };
    let mut journal = Journal::load(&db, &run.id).await.expect("journal");
    journal.append(&db, &run.id, 6, "disable-foreign", "rid", &cs).await.expect("append");
    let recorded = vec![Change { resource: mapping.into(), field: "active".into(), before: "true".into(), after: "false".into() }];
    let step = &mut run.steps[5];
    (step.changes, step.left_alone, step.derived) = (recorded.clone(), vec![skipped.clone()], vec!["disable-foreign".into()]);
    step.undo_changes = vec![Change { resource: mapping.into(), field: "fenced".into(), before: "false".into(), after: "true".into() }];
    let undo = step.undo_changes.clone();

    let mut written = Vec::new();
    let (body, parts) = runs::split(&mut run, &mut written).expect("split");
    let kept: Vec<(i32, &str)> = parts.iter().map(|(n, part, _)| (*n, *part)).collect();
    assert_eq!(kept, [(6, "undo_changes")], "only what the journal does not hold is written beside the run");
    assert!(runs::save(&db, &run.id, &body, run.state, 1).await.expect("save"), "saved at its version");
    runs::save_parts(&db, &run.id, &parts).await.expect("parts");

    let stored = runs::find(&db, &run.id).await.expect("find").expect("the run");
    let mut read = [stored.run::<Refresh>().expect("document")];
    assert!(read[0].steps[5].changes.is_empty(), "the document does not hold them");
    runs::with_parts::<Refresh>(&db, &mut read).await.expect("with parts");
    let step = &read[0].steps[5];
    assert_eq!(step.changes, recorded, "derived from the journaled change set");
    assert_eq!(step.left_alone, [skipped]);
    assert_eq!(step.undo_changes, undo, "stored beside the run");
    let _ = std::fs::remove_dir_all(dir);
}

ferry_testkit::per_backend!(
    derived_changes_are_read_from_the_journal,
    legacy_runs_are_carried_over,
    lease_is_exclusive_and_lapses,
    concurrent_drivers_never_claim_one_run_twice,
    locks_exclude_by_environment_and_project,
    concurrent_starts_on_one_environment_one_wins,
);

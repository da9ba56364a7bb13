//! The run table's leases and the environment locks, on SQLite and on PostgreSQL: a run is
//! claimed by one driver at a time, a lapsed lease is taken over, and one run holds an
//! environment at a time.

use std::collections::HashSet;

use ferry_kit::db::now_micros;
use ferry_testkit::{Backend, database, temp_dir};
use refresh_coordinator::domain::ProjectName;
use refresh_coordinator::domain::{EnvName, Options, Plan, PlannedStep, Run, RunName, StepKind};
use refresh_coordinator::store::leases::{self, Claim, Interrupted, Runs::Refresh};
use refresh_coordinator::store::locks::{self, Held, Lock};
use refresh_coordinator::store::{migrations::Migrator, runs};
use sea_orm::{DatabaseConnection, TransactionTrait};

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

fn new_run(source: &str, destination: &str) -> Run {
    let steps: Vec<PlannedStep> = StepKind::ALL.iter().map(|k| PlannedStep::new(*k)).collect();
    let plan =
        Plan { source: env(source), destination: env(destination), options: Options::default(), steps, etag: "e".into(), plan_time: 0 };
    Run::new(RunName::new_random(), plan, "test".into(), now_micros())
}

async fn lease_is_exclusive_and_lapses(backend: Backend) {
    let Some((db, dir)) = connect(backend).await else { return };
    let run = new_run("prod", "dev");
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    runs::insert(&db, &run, Some(traceparent)).await.expect("insert");
    let stored = runs::find(&db, run.name.id()).await.expect("find").expect("stored");
    assert_eq!(stored.traceparent.as_deref(), Some(traceparent), "the trace context is kept with the run");
    let now = now_micros();
    let second = 1_000_000;

    let id = |c: Option<Claim>| c.map(|c| c.id);
    let first = leases::claim(&db, Refresh, "a", now, now + second, &[]).await.expect("claim");
    assert_eq!(first, Some(Claim { id: run.name.id().to_owned(), interrupted: None }), "a new run was never held");
    assert_eq!(leases::claim(&db, Refresh, "b", now, now + second, &[]).await.expect("claim"), None, "held by a");
    assert!(leases::renew(&db, Refresh, run.name.id(), "a", now + 5, now + 2 * second).await.expect("renew"));
    assert!(!leases::renew(&db, Refresh, run.name.id(), "b", now, now + 2 * second).await.expect("renew"), "b holds nothing");

    // a stops renewing: once its lease lapses, b takes the run over (an interruption, with
    // when a was last heard from) and a cannot renew.
    let later = now + 3 * second;
    let taken = leases::claim(&db, Refresh, "b", later, later + second, &[]).await.expect("claim");
    assert_eq!(taken.and_then(|c| c.interrupted), Some(Interrupted { holder: "a".into(), last_heard: now + 5 }));
    assert!(!leases::renew(&db, Refresh, run.name.id(), "a", later, later + second).await.expect("renew"), "a lost the lease");
    // Given back: the next claim is no interruption.
    leases::release(&db, Refresh, run.name.id(), "b").await.expect("release");
    let next = leases::claim(&db, Refresh, "c", later, later + second, &[]).await.expect("claim");
    assert_eq!(next.as_ref().map(|c| c.interrupted.is_none()), Some(true), "{next:?}");

    // c restarts under its holder id: its lease ends at once and the run is claimable now.
    assert_eq!(leases::claim(&db, Refresh, "c", later, later + second, &[]).await.expect("claim"), None, "still leased");
    assert_eq!(leases::expire_held_by(&db, Refresh, "c").await.expect("expire"), 1);
    assert_eq!(leases::expire_held_by(&db, Refresh, "nobody").await.expect("expire"), 0);
    let back = leases::claim(&db, Refresh, "c", later, later + second, &[]).await.expect("claim");
    assert_eq!(back.as_ref().and_then(|c| c.interrupted.as_ref()).map(|i| i.holder.as_str()), Some("c"), "{back:?}");
    assert_eq!(id(back), Some(run.name.id().to_owned()));
    let _ = std::fs::remove_dir_all(dir);
}

async fn concurrent_drivers_never_claim_one_run_twice(backend: Backend) {
    let Some((db, dir)) = connect(backend).await else { return };
    let mut ids = HashSet::new();
    for i in 0..24 {
        let run = new_run(&format!("s{i}"), &format!("d{i}"));
        ids.insert(run.name.id().to_owned());
        runs::insert(&db, &run, None).await.expect("insert");
    }
    let now = now_micros();
    let mut tasks = Vec::new();
    for owner in 0..6 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                match leases::claim(&db, Refresh, &format!("owner-{owner}"), now, now + 60_000_000, &[]).await {
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

ferry_testkit::per_backend!(
    lease_is_exclusive_and_lapses,
    concurrent_drivers_never_claim_one_run_twice,
    locks_exclude_by_environment_and_project,
    concurrent_starts_on_one_environment_one_wins,
);

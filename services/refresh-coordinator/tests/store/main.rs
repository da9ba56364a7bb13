//! The run table's leases and the environment locks, on SQLite and on PostgreSQL: a run is
//! claimed by one driver at a time, a lapsed lease is taken over, and one run holds an
//! environment at a time.

use std::collections::HashSet;

use ferry_kit::db::now_micros;
use refresh_coordinator::domain::{EnvName, Options, Plan, PlannedStep, Run, RunName, StepKind};
use refresh_coordinator::store::leases::{self, Claim, Interrupted, Runs::Refresh};
use refresh_coordinator::store::{migrations::Migrator, runs};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn connect(backend: Backend) -> Option<(DatabaseConnection, std::path::PathBuf)> {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("ferry-refresh-store-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}/refresh.db", dir.display()),
        Backend::Postgres => {
            let admin = match std::env::var("FERRY_TEST_PG_URL") {
                Ok(u) if !u.is_empty() => u,
                _ if std::env::var("CI").as_deref() == Ok("true") => panic!("CI=true but FERRY_TEST_PG_URL is not set"),
                _ => {
                    eprintln!("!!! SKIPPING PostgreSQL test: FERRY_TEST_PG_URL is not set (run scripts/test)");
                    return None;
                }
            };
            let name = format!("ferry_rc_store_{}_{:x}", std::process::id(), n & 0xffff_ffff);
            let db = Database::connect(&admin).await.expect("connect to the test PostgreSQL");
            db.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
            db.close().await.ok();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin);
            format!("{base}/{name}")
        }
    };
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

async fn one_run_per_environment(backend: Backend) {
    let Some((db, dir)) = connect(backend).await else { return };
    let (prod, dev, uat) = (env("prod"), env("dev"), env("uat"));
    assert_eq!(runs::lock(&db, &[&prod, &dev], "run-1").await.expect("lock"), Ok(()));
    assert_eq!(runs::lock(&db, &[&uat, &dev], "run-2").await.expect("lock"), Err("run-1".to_owned()));
    assert_eq!(runs::holder(&db, &uat).await.expect("holder"), None, "a refused lock takes nothing");
    runs::unlock(&db, "run-1").await.expect("unlock");
    assert_eq!(runs::lock(&db, &[&uat, &dev], "run-2").await.expect("lock"), Ok(()));
    assert_eq!(runs::holder(&db, &dev).await.expect("holder").as_deref(), Some("run-2"));
    let _ = std::fs::remove_dir_all(dir);
}

macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { crate::$name(crate::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { crate::$name(crate::Backend::Postgres).await } )*
        }
    };
}

per_backend!(lease_is_exclusive_and_lapses, concurrent_drivers_never_claim_one_run_twice, one_run_per_environment);

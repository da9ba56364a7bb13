//! The audit tables on both backends: concurrent appends make one chain (no fork, no
//! gap), lists filter in the query and page, and an edited or deleted row is found.

use ferry_kit::audit::store::{self, Filter};
use ferry_kit::audit::{Event, Verifier};
use ferry_testkit::{Backend, database, per_backend, temp_dir};
use sea_orm::ConnectionTrait;
use sea_orm_migration::{MigrationTrait, MigratorTrait};

struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(ferry_kit::audit::store::Migration)]
    }
}

fn event(subject: &str, method: &str, resource: &str, outcome: &str) -> Event {
    Event {
        service: "test".into(),
        subject: subject.into(),
        credential: "static-token".into(),
        method: format!("/ferry.registry.v1.RegistryService/{method}"),
        resources: vec![resource.into()],
        outcome: outcome.into(),
        ..Event::default()
    }
}

async fn all(db: &sea_orm::DatabaseConnection, filter: &Filter) -> Vec<Event> {
    let (mut out, mut after) = (Vec::new(), 0);
    loop {
        let page = store::list(db, filter, after, 7).await.expect("list");
        let Some(last) = page.last() else { return out };
        after = last.sequence;
        out.extend(page);
    }
}

async fn verify(db: &sea_orm::DatabaseConnection) -> Result<u64, ferry_kit::audit::Broken> {
    let (seq, hash) = store::head(db).await.expect("head");
    let mut v = Verifier::default();
    for e in all(db, &Filter::default()).await {
        v.check(&e)?;
    }
    v.finish(seq, &hash)
}

async fn one_chain_filtered_and_verified(backend: Backend) {
    let dir = temp_dir("ferry-kit-audit");
    let Some(url) = database(backend, &dir, "audit.db").await else { return };
    let db = ferry_kit::db::open::<Migrator>(&url, "test").await.expect("open");
    // 40 appends from 8 tasks at once, each in its own transaction.
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in 0..5 {
                    let e = event(
                        &format!("user{}", t % 2),
                        if i % 2 == 0 { "CreateGroup" } else { "DeleteGroup" },
                        &format!("environments/e{t}/groups/g{i}"),
                        if i == 4 { "NOT_FOUND" } else { "OK" },
                    );
                    store::append_alone(&db, e).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(verify(&db).await, Ok(40), "one chain without a fork or a gap");

    let conn = &db;
    let only = |f: Filter| async move { all(conn, &f).await };
    assert_eq!(only(Filter { subject: Some("user1".into()), ..Filter::default() }).await.len(), 20);
    assert_eq!(only(Filter { method: Some("DeleteGroup".into()), ..Filter::default() }).await.len(), 16);
    assert_eq!(only(Filter { method: Some("/ferry.registry.v1.RegistryService/CreateGroup".into()), ..Filter::default() }).await.len(), 24);
    assert_eq!(only(Filter { method: Some("Group".into()), ..Filter::default() }).await.len(), 0, "the last part whole, not a suffix");
    assert_eq!(only(Filter { outcome: Some("NOT_FOUND".into()), ..Filter::default() }).await.len(), 8);
    let e3 = only(Filter { resource_prefix: Some("environments/e3/".into()), ..Filter::default() }).await;
    assert_eq!(e3.len(), 5);
    assert!(e3.iter().all(|e| e.resources[0].starts_with("environments/e3/")));
    assert_eq!(only(Filter { resource_prefix: Some("groups/".into()), ..Filter::default() }).await.len(), 0, "a prefix, not a substring");
    assert_eq!(
        only(Filter { resource_prefix: Some("environments/e_/".into()), ..Filter::default() }).await.len(),
        0,
        "LIKE wildcards are literal"
    );
    assert_eq!(only(Filter { start_sequence: 31, ..Filter::default() }).await.len(), 10);
    let mid = all(&db, &Filter::default()).await[19].time;
    let later = only(Filter { start_time: Some(mid), ..Filter::default() }).await;
    assert!(later.len() >= 21 && later.iter().all(|e| e.time >= mid));
    let both = Filter {
        subject: Some("user0".into()),
        outcome: Some("OK".into()),
        resource_prefix: Some("environments/e2/".into()),
        ..Filter::default()
    };
    assert_eq!(only(both).await.len(), 4);

    // An edited row is named; so is a deleted one.
    let backend = db.get_database_backend();
    db.execute_raw(ferry_kit::db::stmt(backend, "UPDATE audit_events SET subject = 'mallory' WHERE sequence = 17", []))
        .await
        .expect("edit");
    let broken = verify(&db).await.unwrap_err();
    assert_eq!(broken.sequence, 17, "{broken:?}");
    db.execute_raw(ferry_kit::db::stmt(backend, "DELETE FROM audit_events WHERE sequence = 9", [])).await.expect("delete");
    assert_eq!(verify(&db).await.unwrap_err().sequence, 9);
    let _ = std::fs::remove_dir_all(&dir);
}

per_backend!(one_chain_filtered_and_verified);

//! Priority 6: snapshots round-trip exactly; restores refuse the wrong environment and
//! damaged snapshots.

use ferry_proto::integration::v1 as pb;
use sea_orm::{ConnectionTrait, Database};
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

async fn snapshot(app: &TestApp, env: &str, id: &str) -> pb::Snapshot {
    app.admin
        .clone()
        .create_snapshot(pb::CreateSnapshotRequest {
            parent: format!("environments/{env}"),
            snapshot_id: id.into(),
            description: "before refresh".into(),
            request_id: String::new(),
        })
        .await
        .expect("create snapshot")
        .into_inner()
}

async fn full(app: &TestApp, name: &str) -> pb::Snapshot {
    app.admin.clone().get_snapshot(pb::GetSnapshotRequest { name: name.into(), view: 2 }).await.expect("get full").into_inner()
}

/// What a FULL view holds, without the times a restore moves.
fn contents(s: &pb::Snapshot) -> (Vec<pb::Integration>, Vec<pb::Mapping>, Vec<pb::SyncJob>) {
    let integrations = s.integrations.iter().cloned().map(|i| pb::Integration { update_time: None, ..i }).collect();
    let mappings = s.mappings.iter().cloned().map(|m| pb::Mapping { update_time: None, ..m }).collect();
    (integrations, mappings, s.sync_jobs.clone())
}

fn restore(name: &str, env: &str, resources: Vec<String>) -> pb::RestoreSnapshotRequest {
    pb::RestoreSnapshotRequest { name: name.into(), environment: env.into(), resources, request_id: String::new() }
}

pub async fn snapshot_round_trip_restores_exactly(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let mut c = app.admin.clone();
    let rally = integration(&app, "dev", "rally", "dev-key", true).await;
    let m = mapping(&app, &rally.name, "main", "", true).await;
    let j = job(&app, "dev", "nightly", &rally.name, false).await;
    let jira = integration(&app, "dev", "jira", "", false).await;

    let s1 = snapshot(&app, "dev", "s1").await;
    assert_eq!((s1.integration_count, s1.mapping_count, s1.sync_job_count), (2, 1, 1));
    assert_eq!(s1.checksum.len(), 64);
    assert!(s1.integrations.is_empty(), "BASIC view");
    let f1 = full(&app, &s1.name).await;
    assert_eq!(
        f1.integrations.iter().map(|i| i.credential_fingerprint.clone()).collect::<Vec<_>>(),
        vec![String::new(), rally.credential_fingerprint.clone()]
    );
    assert_eq!(f1.checksum, s1.checksum);

    // Everything moves on.
    c.rotate_credentials(pb::RotateCredentialsRequest { name: rally.name.clone(), api_key: "other-key".into(), request_id: String::new() })
        .await
        .expect("rotate");
    c.deactivate_mapping(pb::DeactivateMappingRequest { name: m.name.clone(), request_id: String::new() }).await.expect("off");
    c.pause_sync_job(pb::PauseSyncJobRequest { name: j.name.clone(), reason: String::new(), request_id: String::new() })
        .await
        .expect("pause");
    c.delete_integration(pb::DeleteIntegrationRequest { name: jira.name.clone(), force: false, request_id: String::new() })
        .await
        .expect("delete");
    let extra = integration(&app, "dev", "extra", "", false).await;

    let cs = c.restore_snapshot(restore(&s1.name, "environments/dev", vec![])).await.expect("restore").into_inner();
    assert_eq!(changed(&cs), vec![jira.name.clone(), rally.name.clone(), m.name.clone(), j.name.clone()]);
    let after = snapshot(&app, "dev", "s2").await;
    let f2 = full(&app, &after.name).await;
    let (mut i2, m2, j2) = contents(&f2);
    i2.retain(|i| i.name != extra.name);
    assert_eq!((i2, m2, j2), contents(&f1), "restored exactly, with the same sealed key");
    assert_eq!(get_integration(&app, &extra.name).await.name, extra.name, "resources not in the snapshot are left alone");
    let again = c.restore_snapshot(restore(&s1.name, "environments/dev", vec![])).await.expect("again").into_inner();
    assert!(again.changes.is_empty(), "restoring what is already there changes nothing");

    // Only the named resources.
    c.pause_sync_job(pb::PauseSyncJobRequest { name: j.name.clone(), reason: String::new(), request_id: String::new() })
        .await
        .expect("pause");
    c.deactivate_mapping(pb::DeactivateMappingRequest { name: m.name.clone(), request_id: String::new() }).await.expect("off");
    let only_job = c.restore_snapshot(restore(&s1.name, "environments/dev", vec![j.name.clone()])).await.expect("job only").into_inner();
    assert_eq!(changed(&only_job), vec![j.name.clone()]);
    assert_eq!(get_job(&app, &j.name).await.state, RUNNING);
    assert!(!get_mapping(&app, &m.name).await.active);

    let listed = c
        .list_snapshots(pb::ListSnapshotsRequest { parent: "environments/dev".into(), ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.snapshots.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec![after.name.as_str(), s1.name.as_str()]);
    assert!(listed.snapshots.iter().all(|s| s.integrations.is_empty()));
    let assigned = c
        .create_snapshot(pb::CreateSnapshotRequest { parent: "environments/dev".into(), ..Default::default() })
        .await
        .expect("assigned id")
        .into_inner();
    assert!(assigned.name.starts_with("environments/dev/snapshots/snap-"), "{}", assigned.name);
}

pub async fn snapshot_restore_refusals(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    env(&app, "uat", false).await;
    let mut c = app.admin.clone();
    integration(&app, "dev", "rally", "k", true).await;
    let s = snapshot(&app, "dev", "s1").await;
    let dup = c
        .create_snapshot(pb::CreateSnapshotRequest { parent: "environments/dev".into(), snapshot_id: "s1".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let wrong = c.restore_snapshot(restore(&s.name, "environments/uat", vec![])).await.unwrap_err();
    assert_eq!(wrong.code(), Code::FailedPrecondition);
    let not_in = c.restore_snapshot(restore(&s.name, "environments/dev", vec!["environments/dev/jobs/nope".into()])).await.unwrap_err();
    assert_eq!(not_in.code(), Code::NotFound);
    let missing = c.restore_snapshot(restore("environments/dev/snapshots/nope", "environments/dev", vec![])).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let unknown_env =
        c.create_snapshot(pb::CreateSnapshotRequest { parent: "environments/nowhere".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(unknown_env.code(), Code::NotFound);

    // A snapshot changed behind the service's back fails its checksum.
    let db = Database::connect(&app.database_url).await.expect("connect");
    db.execute_unprepared("UPDATE snapshots SET contents = REPLACE(contents, 'rally.example.com', 'evil.example.com')")
        .await
        .expect("tamper");
    db.close().await.ok();
    let damaged = c.restore_snapshot(restore(&s.name, "environments/dev", vec![])).await.unwrap_err();
    assert_eq!(damaged.code(), Code::DataLoss);
}

/// Snapshots say when they expire (7 days by default) and are pruned after it.
pub async fn snapshots_expire_and_are_pruned(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let s = snapshot(&app, "dev", "kept").await;
    let (created, expires) = (s.create_time.expect("created"), s.expire_time.expect("expires"));
    assert_eq!((expires.seconds - created.seconds, expires.nanos), (7 * 24 * 3600, created.nanos));
    assert_eq!(full(&app, &s.name).await.expire_time, s.expire_time, "Get says the same");
    drop(app);

    let Some(app) = spawn_app_with(b, 0, 1).await else { return };
    env(&app, "dev", false).await;
    integration(&app, "dev", "rally", "k", true).await;
    let s = snapshot(&app, "dev", "gone").await;
    assert_eq!(s.expire_time, s.create_time, "retention 0: due at once");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match app.admin.clone().get_snapshot(pb::GetSnapshotRequest { name: s.name.clone(), view: 1 }).await {
            Err(e) if e.code() == Code::NotFound => break,
            Ok(_) => assert!(std::time::Instant::now() < deadline, "not pruned within 20 s"),
            Err(e) => panic!("{e:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.admin
            .clone()
            .get_integration(pb::GetIntegrationRequest { name: "environments/dev/integrations/rally".into() })
            .await
            .expect("kept")
            .into_inner()
            .name,
        "environments/dev/integrations/rally",
        "only the snapshot goes"
    );
}

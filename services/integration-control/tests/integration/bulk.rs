//! Priority 5: the coordinator's bulk steps restore exactly what they changed.

use ferry_proto::integration::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

fn set_active(name: &str, active: bool) -> pb::UpdateIntegrationRequest {
    pb::UpdateIntegrationRequest {
        integration: Some(pb::Integration { name: name.into(), active, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["active".into()] }),
        request_id: String::new(),
    }
}

async fn states(app: &TestApp, names: &[&str]) -> Vec<(bool, i32)> {
    let mut out = Vec::new();
    for n in names {
        let i = get_integration(app, n).await;
        out.push((i.active, i.credential_state));
    }
    out
}

/// prod holds: a (active, key), b (inactive, key), c (active, no key), d (active, suspended).
async fn mixed_integrations(app: &TestApp) -> [String; 4] {
    let a = integration(app, "prod", "a", "key-a", true).await.name;
    let b = integration(app, "prod", "b", "key-b", false).await.name;
    let c = integration(app, "prod", "c", "", true).await.name;
    let d = integration(app, "prod", "d", "key-d", true).await.name;
    app.admin
        .clone()
        .suspend_credentials(pb::SuspendCredentialsRequest { name: d.clone(), request_id: String::new() })
        .await
        .expect("suspend d");
    [a, b, c, d]
}

pub async fn deactivate_then_reactivate_restores_exactly(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "prod", true).await;
    env(&app, "dev", false).await;
    let [ia, ib, ic, id] = mixed_integrations(&app).await;
    let all = [ia.as_str(), ib.as_str(), ic.as_str(), id.as_str()];
    let before = states(&app, &all).await;
    let mut c = app.admin.clone();

    let req = pb::DeactivateIntegrationsRequest {
        environment: "environments/prod".into(),
        suspend_credentials_instead: false,
        request_id: "refresh-1-step-2".into(),
    };
    let cs = c.deactivate_integrations(req.clone()).await.expect("deactivate").into_inner();
    assert_eq!(changed(&cs), vec![ia.clone(), ic.clone(), id.clone()], "only the active ones, in order");
    assert!(cs.changes.iter().all(|ch| ch.before.as_ref().is_some_and(|s| s.active) && ch.after.as_ref().is_some_and(|s| !s.active)));
    assert_eq!(states(&app, &all).await, vec![(false, ACTIVE), (false, ACTIVE), (false, NONE), (false, SUSPENDED)]);

    // Someone turns c back on by hand during the refresh.
    c.update_integration(set_active(&ic, true)).await.expect("manual");
    // A crashed coordinator retries step 2: the first ChangeSet, nothing changed.
    let retry = c.deactivate_integrations(req).await.expect("retry").into_inner();
    assert_eq!(retry, cs);
    assert!(get_integration(&app, &ic).await.active);

    let undo = pb::ReactivateIntegrationsRequest {
        environment: "environments/prod".into(),
        change_set: Some(cs.clone()),
        integrations: vec![],
        request_id: "refresh-1-step-8".into(),
    };
    let back = c.reactivate_integrations(undo.clone()).await.expect("reactivate").into_inner();
    assert_eq!(changed(&back), vec![ia.clone(), id.clone()]);
    assert_eq!(skipped(&back), vec![ic.clone()], "changed since: left alone");
    assert_eq!(states(&app, &all).await, before, "exactly the earlier states: b stays off, d stays suspended");
    assert_eq!(c.reactivate_integrations(undo).await.expect("retry").into_inner(), back);

    // Neither or both inputs, or a change of another environment, are refused.
    let neither = pb::ReactivateIntegrationsRequest { environment: "environments/prod".into(), ..Default::default() };
    assert_eq!(c.reactivate_integrations(neither).await.unwrap_err().code(), Code::InvalidArgument);
    let both = pb::ReactivateIntegrationsRequest {
        environment: "environments/prod".into(),
        change_set: Some(cs.clone()),
        integrations: vec![ia.clone()],
        request_id: String::new(),
    };
    assert_eq!(c.reactivate_integrations(both).await.unwrap_err().code(), Code::InvalidArgument);
    let foreign = pb::ReactivateIntegrationsRequest {
        environment: "environments/dev".into(),
        change_set: Some(cs.clone()),
        integrations: vec![],
        request_id: String::new(),
    };
    assert_eq!(c.reactivate_integrations(foreign).await.unwrap_err().code(), Code::InvalidArgument);
    let unknown = pb::DeactivateIntegrationsRequest { environment: "environments/nowhere".into(), ..Default::default() };
    assert_eq!(c.deactivate_integrations(unknown).await.unwrap_err().code(), Code::NotFound);

    // By name: reactivated and suspended credentials restored.
    let by_name = pb::ReactivateIntegrationsRequest {
        environment: "environments/prod".into(),
        change_set: None,
        integrations: vec![ib.clone(), id.clone()],
        request_id: String::new(),
    };
    let named = c.reactivate_integrations(by_name).await.expect("by name").into_inner();
    assert_eq!(changed(&named), vec![ib.clone(), id.clone()]);
    assert_eq!(states(&app, &[ib.as_str(), id.as_str()]).await, vec![(true, ACTIVE), (true, ACTIVE)]);
}

pub async fn suspend_instead_then_reactivate_restores_exactly(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "prod", true).await;
    let [ia, ib, ic, id] = mixed_integrations(&app).await;
    let all = [ia.as_str(), ib.as_str(), ic.as_str(), id.as_str()];
    let before = states(&app, &all).await;
    let mut c = app.admin.clone();
    let cs = c
        .deactivate_integrations(pb::DeactivateIntegrationsRequest {
            environment: "environments/prod".into(),
            suspend_credentials_instead: true,
            request_id: String::new(),
        })
        .await
        .expect("suspend instead")
        .into_inner();
    assert_eq!(changed(&cs), vec![ia.clone(), ic.clone()]);
    assert_eq!(skipped(&cs), vec![id.clone()], "already suspended");
    assert_eq!(states(&app, &all).await, vec![(true, SUSPENDED), (false, ACTIVE), (false, NONE), (true, SUSPENDED)]);
    let back = c
        .reactivate_integrations(pb::ReactivateIntegrationsRequest {
            environment: "environments/prod".into(),
            change_set: Some(cs),
            integrations: vec![],
            request_id: String::new(),
        })
        .await
        .expect("restore")
        .into_inner();
    assert_eq!(changed(&back), vec![ia.clone(), ic.clone()]);
    assert_eq!(states(&app, &all).await, before);
}

pub async fn pause_then_resume_jobs_restores_exactly(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let rally = integration(&app, "dev", "rally", "k", true).await;
    let j1 = job(&app, "dev", "j1", &rally.name, false).await.name;
    let j2 = job(&app, "dev", "j2", &rally.name, false).await.name;
    // No integration, and created without saying whether it is external: a refresh pauses it.
    let j4 = job(&app, "dev", "j4", "", false).await.name;
    let mut op = app.dev_operator.clone();
    // A person paused j2 before the refresh.
    op.pause_sync_job(pb::PauseSyncJobRequest { name: j2.clone(), reason: "broken".into(), request_id: String::new() })
        .await
        .expect("pause j2");
    let mut c = app.admin.clone();
    let internal = c
        .create_sync_job(pb::CreateSyncJobRequest {
            parent: "environments/dev".into(),
            sync_job_id: "j3".into(),
            sync_job: Some(pb::SyncJob { schedule: "0 * * * *".into(), external: Some(false), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .expect("internal job")
        .into_inner()
        .name;

    let req = pb::PauseSyncJobsRequest {
        environment: "environments/dev".into(),
        actor: "refreshes/r1".into(),
        reason: "refresh".into(),
        request_id: "r1-step-3".into(),
    };
    let cs = c.pause_sync_jobs(req.clone()).await.expect("pause all").into_inner();
    assert_eq!(changed(&cs), vec![j1.clone(), j4.clone()]);
    assert_eq!(skipped(&cs), vec![j2.clone()]);
    assert_eq!(get_job(&app, &j1).await.paused_by, "refreshes/r1");
    assert_eq!(get_job(&app, &internal).await.state, RUNNING, "internal jobs keep running");
    assert_eq!(get_job(&app, &j2).await.paused_by, DEV_OPERATOR_SUBJECT);

    // During the refresh a person takes j4 over: resumed and paused by them.
    c.resume_sync_job(pb::ResumeSyncJobRequest { name: j4.clone(), request_id: String::new() }).await.expect("resume j4");
    op.pause_sync_job(pb::PauseSyncJobRequest { name: j4.clone(), reason: "mine".into(), request_id: String::new() })
        .await
        .expect("pause j4");
    assert_eq!(c.pause_sync_jobs(req).await.expect("retry").into_inner(), cs, "a retry replays");

    let resume = pb::ResumeSyncJobsRequest {
        environment: "environments/dev".into(),
        change_set: Some(cs),
        sync_jobs: vec![],
        request_id: "r1-step-9".into(),
    };
    let back = c.resume_sync_jobs(resume).await.expect("resume all").into_inner();
    assert_eq!(changed(&back), vec![j1.clone()]);
    assert_eq!(skipped(&back), vec![j4.clone()]);
    let states: Vec<(i32, String)> = {
        let mut v = Vec::new();
        for n in [&j1, &j2, &internal, &j4] {
            let j = get_job(&app, n).await;
            v.push((j.state, j.paused_by));
        }
        v
    };
    assert_eq!(
        states,
        vec![
            (RUNNING, String::new()),
            (PAUSED, DEV_OPERATOR_SUBJECT.into()),
            (RUNNING, String::new()),
            (PAUSED, DEV_OPERATOR_SUBJECT.into()),
        ],
        "a job a person paused stays paused"
    );

    let by_name = pb::ResumeSyncJobsRequest {
        environment: "environments/dev".into(),
        change_set: None,
        sync_jobs: vec![j2.clone(), j1.clone()],
        request_id: String::new(),
    };
    let named = c.resume_sync_jobs(by_name).await.expect("by name").into_inner();
    assert_eq!((changed(&named), skipped(&named)), (vec![j2.clone()], vec![j1.clone()]));
    let neither = pb::ResumeSyncJobsRequest { environment: "environments/dev".into(), ..Default::default() };
    assert_eq!(c.resume_sync_jobs(neither).await.unwrap_err().code(), Code::InvalidArgument);
}

pub async fn refresh_copy_disable_activate_provisioned(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "prod", true).await;
    env(&app, "dev", false).await;
    let mut c = app.admin.clone();
    let rally = integration(&app, "prod", "rally", "prod-key", true).await;
    mapping(&app, &rally.name, "main", "", true).await;
    mapping(&app, &rally.name, "for-dev", "environments/dev", false).await;
    let own = integration(&app, "dev", "own", "dev-key", true).await;
    let own_map = mapping(&app, &own.name, "m", "", true).await;

    let copy = |source: &str, destination: &str| pb::CopyIntegrationsRequest {
        source: source.into(),
        destination: destination.into(),
        request_id: String::new(),
    };
    let same = c.copy_integrations(copy("environments/dev", "environments/dev")).await.unwrap_err();
    assert_eq!(same.code(), Code::InvalidArgument);
    let into_prod = c.copy_integrations(copy("environments/dev", "environments/prod")).await.unwrap_err();
    assert_eq!(into_prod.code(), Code::FailedPrecondition, "production is never a destination");
    assert_eq!(precondition_subjects(&into_prod), vec!["environments/prod".to_string()]);
    assert_eq!(c.copy_integrations(copy("environments/nowhere", "environments/dev")).await.unwrap_err().code(), Code::NotFound);

    let cs = c.copy_integrations(copy("environments/prod", "environments/dev")).await.expect("copy").into_inner();
    assert_eq!(cs.environment, "environments/dev");
    assert_eq!(
        changed(&cs),
        vec![
            own_map.name.clone(),
            own.name.clone(),
            "environments/dev/integrations/rally".to_string(),
            "environments/dev/integrations/rally/mappings/for-dev".to_string(),
            "environments/dev/integrations/rally/mappings/main".to_string(),
        ]
    );
    assert!(!cs.changes[1].after.as_ref().is_some_and(|s| s.exists), "the destination's own integration is replaced");
    let copied = get_integration(&app, "environments/dev/integrations/rally").await;
    assert_eq!((copied.fenced, copied.origin_environment.as_str()), (true, "environments/prod"));
    assert_eq!(copied.credential_fingerprint, rally.credential_fingerprint, "sealed credentials copied sealed");
    assert_eq!(c.get_integration(pb::GetIntegrationRequest { name: own.name.clone() }).await.unwrap_err().code(), Code::NotFound);

    // Step 6: the production mapping that came over is disabled (and stays fenced).
    let disabled = c
        .disable_foreign_mappings(pb::DisableForeignMappingsRequest { environment: "environments/dev".into(), request_id: String::new() })
        .await
        .expect("disable")
        .into_inner();
    assert_eq!(changed(&disabled), vec!["environments/dev/integrations/rally/mappings/main".to_string()]);
    let main = get_mapping(&app, "environments/dev/integrations/rally/mappings/main").await;
    assert_eq!((main.active, main.fenced), (false, true));
    assert!(get_mapping(&app, "environments/prod/integrations/rally/mappings/main").await.active, "production untouched");

    // Step 7: the mapping provisioned for dev is bound here and activated.
    let activated = c
        .activate_provisioned_mappings(pb::ActivateProvisionedMappingsRequest {
            environment: "environments/dev".into(),
            mappings: vec![],
            request_id: String::new(),
        })
        .await
        .expect("activate provisioned")
        .into_inner();
    assert_eq!(
        changed(&activated),
        vec!["environments/dev/integrations/rally".to_string(), "environments/dev/integrations/rally/mappings/for-dev".to_string()]
    );
    let for_dev = get_mapping(&app, "environments/dev/integrations/rally/mappings/for-dev").await;
    assert_eq!((for_dev.active, for_dev.fenced, for_dev.bound_environment.as_str()), (true, false, "environments/dev"));
    assert!(authorize(&app, &for_dev.name, "").await.allowed);
    assert!(!authorize(&app, &main.name, "").await.allowed, "the production mapping in the sandbox is never allowed");
    let again = c
        .activate_provisioned_mappings(pb::ActivateProvisionedMappingsRequest {
            environment: "environments/dev".into(),
            mappings: vec![for_dev.name.clone()],
            request_id: String::new(),
        })
        .await
        .expect("again")
        .into_inner();
    assert_eq!((changed(&again), skipped(&again)), (vec![], vec![for_dev.name.clone()]));
    let missing = c
        .activate_provisioned_mappings(pb::ActivateProvisionedMappingsRequest {
            environment: "environments/dev".into(),
            mappings: vec!["environments/dev/integrations/rally/mappings/nope".into()],
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

pub async fn fence_and_unfence_environment(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let mut c = app.admin.clone();
    let rally = integration(&app, "dev", "rally", "k", true).await;
    let m = mapping(&app, &rally.name, "main", "", true).await;
    let fence = |holder: &str, include_resources: bool| pb::FenceEnvironmentRequest {
        environment: "environments/dev".into(),
        holder: holder.into(),
        reason: "refresh".into(),
        include_resources,
        request_id: String::new(),
    };
    let unfence = |holder: &str, force: bool| pb::UnfenceEnvironmentRequest {
        environment: "environments/dev".into(),
        holder: holder.into(),
        force,
        request_id: String::new(),
    };
    let get = pb::GetEnvironmentFenceRequest { name: "environments/dev/fence".into() };
    assert!(!c.get_environment_fence(get.clone()).await.expect("get").into_inner().fenced);

    let cs = c.fence_environment(fence("refreshes/r1", false)).await.expect("fence").into_inner();
    assert_eq!(changed(&cs), vec!["environments/dev/fence".to_string()]);
    assert_eq!(cs.changes[0].after.as_ref().map(|s| s.fence_holder.as_str()), Some("refreshes/r1"));
    let f = c.get_environment_fence(get.clone()).await.expect("get").into_inner();
    assert_eq!((f.fenced, f.holder.as_str(), f.reason.as_str()), (true, "refreshes/r1", "refresh"));
    let again = c.fence_environment(fence("refreshes/r1", false)).await.expect("again").into_inner();
    assert!(again.changes.is_empty(), "fencing again for the same holder changes nothing");
    let other = c.fence_environment(fence("refreshes/r2", false)).await.unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&other), vec!["refreshes/r1".to_string()]);
    let with_resources = c.fence_environment(fence("refreshes/r1", true)).await.expect("resources").into_inner();
    assert_eq!(changed(&with_resources), vec![rally.name.clone(), m.name.clone()]);

    assert_eq!(c.unfence_environment(unfence("refreshes/r2", false)).await.unwrap_err().code(), Code::FailedPrecondition);
    let lifted = c.unfence_environment(unfence("refreshes/r2", true)).await.expect("force").into_inner();
    assert_eq!(changed(&lifted), vec!["environments/dev/fence".to_string()]);
    assert!(get_mapping(&app, &m.name).await.fenced, "resource fences stay");
    assert!(c.unfence_environment(unfence("refreshes/r1", false)).await.expect("noop").into_inner().changes.is_empty());
    let missing = pb::GetEnvironmentFenceRequest { name: "environments/nowhere/fence".into() };
    assert_eq!(c.get_environment_fence(missing).await.unwrap_err().code(), Code::NotFound);
    let no_holder = c.fence_environment(fence("", false)).await.unwrap_err();
    assert_eq!(violated_fields(&no_holder), vec!["holder".to_string()]);
}

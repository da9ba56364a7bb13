//! Priorities 1-3: integrations and credentials, mappings and their activation, sync jobs.

use ferry_proto::integration::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

pub async fn integrations_crud_and_credentials(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let mut c = app.admin.clone();

    let rally = integration(&app, "dev", "rally", "rally-key-1", true).await;
    assert_eq!(rally.name, "environments/dev/integrations/rally");
    assert_eq!((rally.active, rally.credential_state, rally.fenced), (true, ACTIVE, false));
    assert_eq!(rally.credential_fingerprint.len(), 16);
    assert!(rally.credential_fingerprint.chars().all(|c| c.is_ascii_hexdigit()));
    let jira = integration(&app, "dev", "jira", "", false).await;
    assert_eq!((jira.active, jira.credential_state, jira.credential_fingerprint.as_str()), (false, NONE, ""));

    let dup = create_integration(&app, "dev", "rally", "", false).await.unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let no_env = create_integration(&app, "nowhere", "rally", "k", false).await.unwrap_err();
    assert_eq!(no_env.code(), Code::NotFound);

    // List in id order, paged.
    let p1 = c
        .list_integrations(pb::ListIntegrationsRequest { parent: "environments/dev".into(), page_size: 1, page_token: String::new() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(p1.integrations.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), vec!["environments/dev/integrations/jira"]);
    let p2 = c
        .list_integrations(pb::ListIntegrationsRequest { parent: "environments/dev".into(), page_size: 1, page_token: p1.next_page_token })
        .await
        .expect("list page 2")
        .into_inner();
    assert_eq!(p2.integrations[0].name, rally.name);
    assert!(p2.next_page_token.is_empty());
    let unknown =
        c.list_integrations(pb::ListIntegrationsRequest { parent: "environments/nowhere".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // Update with a mask.
    let updated = c
        .update_integration(pb::UpdateIntegrationRequest {
            integration: Some(pb::Integration {
                name: rally.name.clone(),
                display_name: "Rally".into(),
                active: false,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["display_name".into(), "active".into()] }),
            request_id: String::new(),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!((updated.display_name.as_str(), updated.active, updated.base_url.as_str()), ("Rally", false, "https://rally.example.com"));
    let bad_mask = c
        .update_integration(pb::UpdateIntegrationRequest {
            integration: Some(pb::Integration { name: rally.name.clone(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["credential_state".into()] }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_mask), vec!["update_mask".to_string()]);

    // Rotate, suspend, restore.
    let rotated = c
        .rotate_credentials(pb::RotateCredentialsRequest {
            name: rally.name.clone(),
            api_key: "rally-key-2".into(),
            request_id: String::new(),
        })
        .await
        .expect("rotate")
        .into_inner();
    assert_eq!(rotated.credential_state, ACTIVE);
    assert_ne!(rotated.credential_fingerprint, rally.credential_fingerprint);
    let back = c
        .rotate_credentials(pb::RotateCredentialsRequest {
            name: rally.name.clone(),
            api_key: "rally-key-1".into(),
            request_id: String::new(),
        })
        .await
        .expect("rotate back")
        .into_inner();
    assert_eq!(back.credential_fingerprint, rally.credential_fingerprint, "a fingerprint identifies a key");
    let suspend = |name: String| pb::SuspendCredentialsRequest { name, request_id: String::new() };
    let s1 = c.suspend_credentials(suspend(rally.name.clone())).await.expect("suspend").into_inner();
    assert_eq!((s1.credential_state, s1.credential_fingerprint.as_str()), (SUSPENDED, rally.credential_fingerprint.as_str()));
    let s2 = c.suspend_credentials(suspend(rally.name.clone())).await.expect("suspend again").into_inner();
    assert_eq!(s2, s1, "suspending suspended credentials changes nothing");
    let restored = c
        .restore_credentials(pb::RestoreCredentialsRequest { name: rally.name.clone(), request_id: String::new() })
        .await
        .expect("restore")
        .into_inner();
    assert_eq!((restored.credential_state, restored.credential_fingerprint.as_str()), (ACTIVE, rally.credential_fingerprint.as_str()));
    let none = c.suspend_credentials(suspend(jira.name.clone())).await.unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition);
    let none =
        c.restore_credentials(pb::RestoreCredentialsRequest { name: jira.name.clone(), request_id: String::new() }).await.unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition);
    let missing = c.suspend_credentials(suspend("environments/dev/integrations/missing".into())).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Delete: mappings need force, jobs always refuse.
    let m = mapping(&app, &rally.name, "main", "", true).await;
    let j = job(&app, "dev", "nightly", &rally.name, false).await;
    let del = |force: bool| pb::DeleteIntegrationRequest { name: rally.name.clone(), force, request_id: String::new() };
    let used = c.delete_integration(del(true)).await.unwrap_err();
    assert_eq!(used.code(), Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&used), vec![j.name.clone()]);
    c.delete_sync_job(pb::DeleteSyncJobRequest { name: j.name.clone(), request_id: String::new() }).await.expect("delete job");
    let has_mappings = c.delete_integration(del(false)).await.unwrap_err();
    assert_eq!(has_mappings.code(), Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&has_mappings), vec![m.name.clone()]);
    let deleted = c.delete_integration(del(true)).await.expect("forced delete").into_inner();
    assert_eq!(deleted.deleted_mappings, 1);
    assert_eq!(c.get_integration(pb::GetIntegrationRequest { name: rally.name.clone() }).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(c.get_mapping(pb::GetMappingRequest { name: m.name.clone() }).await.unwrap_err().code(), Code::NotFound);
}

pub async fn mappings_crud_and_fenced_activation(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "prod", true).await;
    env(&app, "dev", false).await;
    let mut c = app.admin.clone();
    let rally = integration(&app, "prod", "rally", "prod-key", true).await;

    let main = mapping(&app, &rally.name, "main", "", true).await;
    assert_eq!(main.target_environment, "environments/prod");
    assert_eq!(main.bound_environment, "environments/prod");
    assert_eq!(main.field_mapping_json, r#"{"title":"name"}"#);
    // The article's tip: the sandbox mapping is provisioned in production, inactive.
    let active_for_dev = create_mapping(&app, &rally.name, "for-dev", "environments/dev", true).await.unwrap_err();
    assert_eq!(active_for_dev.code(), Code::FailedPrecondition);
    let for_dev = mapping(&app, &rally.name, "for-dev", "environments/dev", false).await;
    assert_eq!((for_dev.target_environment.as_str(), for_dev.bound_environment.as_str()), ("environments/dev", "environments/prod"));
    let no_target = create_mapping(&app, &rally.name, "x", "environments/nowhere", false).await.unwrap_err();
    assert_eq!(no_target.code(), Code::NotFound);
    let no_integration = create_mapping(&app, "environments/prod/integrations/missing", "x", "", false).await.unwrap_err();
    assert_eq!(no_integration.code(), Code::NotFound);
    assert_eq!(create_mapping(&app, &rally.name, "main", "", false).await.unwrap_err().code(), Code::AlreadyExists);

    let activate = |name: &str, rebind: bool| pb::ActivateMappingRequest { name: name.into(), rebind, request_id: String::new() };
    for rebind in [false, true] {
        let refused = c.activate_mapping(activate(&for_dev.name, rebind)).await.unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "a mapping for another environment never activates here");
    }
    let retarget = c
        .update_mapping(pb::UpdateMappingRequest {
            mapping: Some(pb::Mapping { name: main.name.clone(), target_environment: "environments/dev".into(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["target_environment".into()] }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(retarget.code(), Code::FailedPrecondition);
    let renamed = c
        .update_mapping(pb::UpdateMappingRequest {
            mapping: Some(pb::Mapping { name: main.name.clone(), display_name: "Main".into(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["display_name".into()] }),
            request_id: String::new(),
        })
        .await
        .expect("rename")
        .into_inner();
    assert_eq!((renamed.display_name.as_str(), renamed.active), ("Main", true));

    let off = c.deactivate_mapping(pb::DeactivateMappingRequest { name: main.name.clone(), request_id: String::new() }).await.expect("off");
    assert!(!off.into_inner().active);
    let on = c.activate_mapping(activate(&main.name, false)).await.expect("on").into_inner();
    assert!(on.active);
    let again = c.activate_mapping(activate(&main.name, false)).await.expect("again").into_inner();
    assert_eq!(again, on, "activating an active mapping changes nothing");

    let all = c
        .list_mappings(pb::ListMappingsRequest { parent: "environments/prod/integrations/-".into(), ..Default::default() })
        .await
        .expect("list all")
        .into_inner();
    assert_eq!(all.mappings.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), vec![for_dev.name.as_str(), main.name.as_str()]);

    // Copies arrive fenced: the provisioned mapping in dev activates only with rebind.
    c.copy_integrations(pb::CopyIntegrationsRequest {
        source: "environments/prod".into(),
        destination: "environments/dev".into(),
        request_id: String::new(),
    })
    .await
    .expect("copy");
    let copied = "environments/dev/integrations/rally/mappings/for-dev";
    let m = get_mapping(&app, copied).await;
    assert_eq!((m.fenced, m.bound_environment.as_str(), m.origin_environment.as_str()), (true, "environments/prod", "environments/prod"));
    let fenced = c.activate_mapping(activate(copied, false)).await.unwrap_err();
    assert_eq!(fenced.code(), Code::FailedPrecondition);
    assert_eq!(precondition_subjects(&fenced), vec![copied.to_string()]);
    let rebound = c.activate_mapping(activate(copied, true)).await.expect("rebind").into_inner();
    assert_eq!((rebound.active, rebound.fenced, rebound.bound_environment.as_str()), (true, false, "environments/dev"));
    assert!(!get_integration(&app, "environments/dev/integrations/rally").await.fenced, "rebind lifts the integration's fence");

    c.delete_mapping(pb::DeleteMappingRequest { name: main.name.clone(), request_id: String::new() }).await.expect("delete");
    assert_eq!(c.get_mapping(pb::GetMappingRequest { name: main.name.clone() }).await.unwrap_err().code(), Code::NotFound);
}

pub async fn sync_jobs_pause_resume_record_who(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    env(&app, "uat", false).await;
    let mut c = app.admin.clone();
    let rally = integration(&app, "dev", "rally", "k", true).await;
    let other = integration(&app, "uat", "rally", "k", true).await;

    let create = |id: &str, integration: &str, schedule: &str| pb::CreateSyncJobRequest {
        parent: "environments/dev".into(),
        sync_job_id: id.into(),
        sync_job: Some(pb::SyncJob { integration: integration.into(), schedule: schedule.into(), ..Default::default() }),
        request_id: String::new(),
    };
    let j = c.create_sync_job(create("nightly", &rally.name, "0 2 * * *")).await.expect("create").into_inner();
    assert_eq!((j.state, j.external, j.paused_by.as_str()), (RUNNING, Some(true), ""), "tied to an integration means external");
    let opted_out = c
        .create_sync_job(pb::CreateSyncJobRequest {
            sync_job: Some(pb::SyncJob { external: Some(false), ..create("x", &rally.name, "0 2 * * *").sync_job.unwrap_or_default() }),
            ..create("x", &rally.name, "0 2 * * *")
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&opted_out), vec!["sync_job.external".to_string()], "a job with an integration cannot be internal");
    let cross = c.create_sync_job(create("x", &other.name, "0 2 * * *")).await.unwrap_err();
    assert_eq!(violated_fields(&cross), vec!["sync_job.integration".to_string()]);
    let cron = c.create_sync_job(create("x", "", "every day")).await.unwrap_err();
    assert_eq!(violated_fields(&cron), vec!["sync_job.schedule".to_string()]);
    let missing = c.create_sync_job(create("x", "environments/dev/integrations/missing", "* * * * *")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(c.create_sync_job(create("nightly", "", "* * * * *")).await.unwrap_err().code(), Code::AlreadyExists);
    let unsaid = c.create_sync_job(create("cleanup", "", "*/5 * * * *")).await.expect("job without an integration").into_inner();
    assert_eq!(unsaid.external, Some(true), "not saying means external: the safe choice");
    let internal = c
        .create_sync_job(pb::CreateSyncJobRequest {
            sync_job: Some(pb::SyncJob { external: Some(false), schedule: "*/5 * * * *".into(), ..Default::default() }),
            ..create("compact", "", "*/5 * * * *")
        })
        .await
        .expect("internal job")
        .into_inner();
    assert_eq!(internal.external, Some(false), "an explicit opt-out");
    let paused = job(&app, "dev", "held", "", true).await;
    assert_eq!((paused.state, paused.paused_by.as_str()), (PAUSED, ADMIN_SUBJECT));

    let mut op = app.dev_operator.clone();
    let p = op
        .pause_sync_job(pb::PauseSyncJobRequest { name: j.name.clone(), reason: "vendor outage".into(), request_id: String::new() })
        .await
        .expect("pause")
        .into_inner();
    assert_eq!((p.state, p.paused_by.as_str(), p.pause_reason.as_str()), (PAUSED, DEV_OPERATOR_SUBJECT, "vendor outage"));
    assert!(p.pause_time.is_some());
    let p2 = c
        .pause_sync_job(pb::PauseSyncJobRequest { name: j.name.clone(), reason: "other".into(), request_id: String::new() })
        .await
        .expect("pause again")
        .into_inner();
    assert_eq!(p2, p, "pausing a paused job changes nothing, paused_by stays");
    let listed = c
        .list_sync_jobs(pb::ListSyncJobsRequest { parent: "environments/dev".into(), state: PAUSED, ..Default::default() })
        .await
        .expect("list paused")
        .into_inner();
    assert_eq!(listed.sync_jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(), vec![paused.name.as_str(), j.name.as_str()]);
    let r =
        c.resume_sync_job(pb::ResumeSyncJobRequest { name: j.name.clone(), request_id: String::new() }).await.expect("resume").into_inner();
    assert_eq!((r.state, r.paused_by.as_str(), r.pause_reason.as_str(), r.pause_time), (RUNNING, "", "", None));
    let r2 =
        c.resume_sync_job(pb::ResumeSyncJobRequest { name: j.name.clone(), request_id: String::new() }).await.expect("again").into_inner();
    assert_eq!(r2, r);
    c.delete_sync_job(pb::DeleteSyncJobRequest { name: internal.name.clone(), request_id: String::new() }).await.expect("delete");
    assert_eq!(c.get_sync_job(pb::GetSyncJobRequest { name: internal.name }).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        c.list_sync_jobs(pb::ListSyncJobsRequest { parent: "environments/nowhere".into(), ..Default::default() }).await.unwrap_err().code(),
        Code::NotFound
    );
}

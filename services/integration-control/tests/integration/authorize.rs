//! Priority 4: AuthorizeSync, every deny reason in the contract's order.

use ferry_proto::integration::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

const ENVIRONMENT_FENCED: i32 = 1;
const PRODUCTION_MAPPING_IN_NON_PRODUCTION: i32 = 2;
const TARGETS_OTHER_ENVIRONMENT: i32 = 3;
const BOUND_ELSEWHERE: i32 = 4;
const MAPPING_FENCED: i32 = 5;
const INTEGRATION_FENCED: i32 = 6;
const INTEGRATION_INACTIVE: i32 = 7;
const CREDENTIALS_SUSPENDED: i32 = 8;
const CREDENTIALS_MISSING: i32 = 9;
const MAPPING_INACTIVE: i32 = 10;
const JOB_PAUSED: i32 = 11;

fn assert_denied(r: &pb::AuthorizeSyncResponse, reasons: &[i32]) {
    assert!(!r.allowed, "{r:?}");
    assert_eq!(r.reasons, reasons, "{r:?}");
    assert_eq!(r.reason, reasons[0]);
    assert!(!r.message.is_empty());
}

pub async fn authorize_sync_every_deny_reason_in_order(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "prod", true).await;
    env(&app, "dev", false).await;
    env(&app, "uat", false).await;
    let mut c = app.admin.clone();
    let rally = integration(&app, "dev", "rally", "dev-key", true).await;
    let main = mapping(&app, &rally.name, "main", "", true).await;
    let nightly = job(&app, "dev", "nightly", &rally.name, false).await;

    let ok = authorize(&app, &main.name, "").await;
    assert!(ok.allowed && ok.reasons.is_empty() && ok.reason == 0, "{ok:?}");
    assert!(authorize(&app, &main.name, &nightly.name).await.allowed);

    // JOB_PAUSED: the asking job, or without one any job of the integration.
    c.pause_sync_job(pb::PauseSyncJobRequest { name: nightly.name.clone(), reason: String::new(), request_id: String::new() })
        .await
        .expect("pause");
    assert_denied(&authorize(&app, &main.name, "").await, &[JOB_PAUSED]);
    assert_denied(&authorize(&app, &main.name, &nightly.name).await, &[JOB_PAUSED]);
    let other_job = job(&app, "dev", "other", "", false).await;
    assert!(authorize(&app, &main.name, &other_job.name).await.allowed, "the asking job decides when one is named");
    c.resume_sync_job(pb::ResumeSyncJobRequest { name: nightly.name.clone(), request_id: String::new() }).await.expect("resume");

    // MAPPING_INACTIVE.
    c.deactivate_mapping(pb::DeactivateMappingRequest { name: main.name.clone(), request_id: String::new() }).await.expect("off");
    assert_denied(&authorize(&app, &main.name, "").await, &[MAPPING_INACTIVE]);
    c.activate_mapping(pb::ActivateMappingRequest { name: main.name.clone(), rebind: false, request_id: String::new() }).await.expect("on");

    // CREDENTIALS_SUSPENDED, then CREDENTIALS_MISSING on a key-less integration.
    c.suspend_credentials(pb::SuspendCredentialsRequest { name: rally.name.clone(), request_id: String::new() }).await.expect("suspend");
    assert_denied(&authorize(&app, &main.name, "").await, &[CREDENTIALS_SUSPENDED]);
    c.restore_credentials(pb::RestoreCredentialsRequest { name: rally.name.clone(), request_id: String::new() }).await.expect("restore");
    let keyless = integration(&app, "dev", "keyless", "", true).await;
    let keyless_map = mapping(&app, &keyless.name, "m", "", true).await;
    assert_denied(&authorize(&app, &keyless_map.name, "").await, &[CREDENTIALS_MISSING]);

    // INTEGRATION_INACTIVE, with every later failing check listed too.
    c.update_integration(pb::UpdateIntegrationRequest {
        integration: Some(pb::Integration { name: keyless.name.clone(), active: false, ..Default::default() }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["active".into()] }),
        request_id: String::new(),
    })
    .await
    .expect("deactivate");
    assert_denied(&authorize(&app, &keyless_map.name, "").await, &[INTEGRATION_INACTIVE, CREDENTIALS_MISSING]);

    // MAPPING_FENCED and INTEGRATION_FENCED: an EXTERNAL refresh fences the resources;
    // lifting the environment fence leaves them.
    let fence = |include_resources: bool| pb::FenceEnvironmentRequest {
        environment: "environments/dev".into(),
        holder: "refreshes/r1".into(),
        reason: "refresh".into(),
        include_resources,
        request_id: String::new(),
    };
    c.fence_environment(fence(true)).await.expect("fence");
    // ENVIRONMENT_FENCED comes first of all.
    assert_denied(&authorize(&app, &main.name, "").await, &[ENVIRONMENT_FENCED, MAPPING_FENCED, INTEGRATION_FENCED]);
    c.unfence_environment(pb::UnfenceEnvironmentRequest {
        environment: "environments/dev".into(),
        holder: "refreshes/r1".into(),
        force: false,
        request_id: String::new(),
    })
    .await
    .expect("unfence");
    assert_denied(&authorize(&app, &main.name, "").await, &[MAPPING_FENCED, INTEGRATION_FENCED]);
    c.activate_mapping(pb::ActivateMappingRequest { name: main.name.clone(), rebind: true, request_id: String::new() })
        .await
        .expect("rebind");
    assert!(authorize(&app, &main.name, "").await.allowed, "rebind lifts both fences");

    // TARGETS_OTHER_ENVIRONMENT alone (another sandbox is not production).
    let for_uat = mapping(&app, &rally.name, "for-uat", "environments/uat", false).await;
    assert_denied(&authorize(&app, &for_uat.name, "").await, &[TARGETS_OTHER_ENVIRONMENT, MAPPING_INACTIVE]);

    // A production mapping copied into a sandbox: never allowed, and why comes first.
    let prod_rally = integration(&app, "prod", "rally", "prod-key", true).await;
    let prod_main = mapping(&app, &prod_rally.name, "main", "", true).await;
    let for_dev = mapping(&app, &prod_rally.name, "for-dev", "environments/dev", false).await;
    assert!(authorize(&app, &prod_main.name, "").await.allowed);
    assert_denied(&authorize(&app, &for_dev.name, "").await, &[TARGETS_OTHER_ENVIRONMENT, MAPPING_INACTIVE]);
    c.copy_integrations(pb::CopyIntegrationsRequest {
        source: "environments/prod".into(),
        destination: "environments/dev".into(),
        request_id: String::new(),
    })
    .await
    .expect("copy");
    let copied_main = "environments/dev/integrations/rally/mappings/main";
    assert_denied(
        &authorize(&app, copied_main, "").await,
        &[PRODUCTION_MAPPING_IN_NON_PRODUCTION, TARGETS_OTHER_ENVIRONMENT, BOUND_ELSEWHERE, MAPPING_FENCED, INTEGRATION_FENCED],
    );
    // BOUND_ELSEWHERE: the provisioned mapping arrived bound to production.
    let copied_for_dev = "environments/dev/integrations/rally/mappings/for-dev";
    assert_denied(&authorize(&app, copied_for_dev, "").await, &[BOUND_ELSEWHERE, MAPPING_FENCED, INTEGRATION_FENCED, MAPPING_INACTIVE]);
    c.fence_environment(fence(false)).await.expect("fence again");
    assert_eq!(authorize(&app, copied_main, "").await.reason, ENVIRONMENT_FENCED);
    assert_eq!(authorize(&app, copied_main, "").await.reasons.len(), 6);
}

pub async fn authorize_sync_bad_input(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    env(&app, "uat", false).await;
    let rally = integration(&app, "dev", "rally", "k", true).await;
    let main = mapping(&app, &rally.name, "main", "", true).await;
    let uat_job = job(&app, "uat", "nightly", "", false).await;
    let mut v = app.viewer.clone();
    let ask = |mapping: &str, job: &str| pb::AuthorizeSyncRequest { mapping: mapping.into(), job: job.into() };
    let cross = v.authorize_sync(ask(&main.name, &uat_job.name)).await.unwrap_err();
    assert_eq!(violated_fields(&cross), vec!["job".to_string()]);
    let malformed = v.authorize_sync(ask("environments/dev/mappings/main", "")).await.unwrap_err();
    assert_eq!(violated_fields(&malformed), vec!["mapping".to_string()]);
    let missing = v.authorize_sync(ask("environments/dev/integrations/rally/mappings/nope", "")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let missing_job = v.authorize_sync(ask(&main.name, "environments/dev/jobs/nope")).await.unwrap_err();
    assert_eq!(missing_job.code(), Code::NotFound);
}

//! Sync leases: granted only when AuthorizeSync allows, with the opened credential; renewed
//! after deciding again; revoked at once by the changes that end the allowance.

use std::time::Duration;

use ferry_proto::integration::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

const LEASE_ACTIVE: i32 = 1;
const LEASE_EXPIRED: i32 = 2;
const LEASE_RELEASED: i32 = 3;
const LEASE_REVOKED: i32 = 4;

fn ttl(secs: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: secs, nanos: 0 })
}

fn ask(mapping: &str) -> pb::AcquireSyncLeaseRequest {
    pb::AcquireSyncLeaseRequest { mapping: mapping.into(), job: String::new(), ttl: None, request_id: String::new() }
}

async fn acquire(c: &mut Client, mapping: &str) -> Result<pb::SyncLease, tonic::Status> {
    c.acquire_sync_lease(ask(mapping)).await.map(|r| r.into_inner())
}

async fn renew(c: &mut Client, lease: &str) -> Result<pb::SyncLease, tonic::Status> {
    c.renew_sync_lease(pb::RenewSyncLeaseRequest { name: lease.into(), ttl: None }).await.map(|r| r.into_inner())
}

/// The kinds of a PreconditionFailure detail.
fn kinds(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status.get_details_precondition_failure().map(|p| p.violations.into_iter().map(|v| v.r#type).collect()).unwrap_or_default()
}

fn list(env: &str, show_ended: bool, in_flight: bool) -> pb::ListSyncLeasesRequest {
    pb::ListSyncLeasesRequest { parent: format!("environments/{env}"), page_size: 0, page_token: String::new(), show_ended, in_flight }
}

async fn leases(app: &TestApp, env: &str, show_ended: bool) -> Vec<pb::SyncLease> {
    app.viewer.clone().list_sync_leases(list(env, show_ended, false)).await.expect("list leases").into_inner().sync_leases
}

/// The names of the leases whose syncs may still run.
async fn in_flight(app: &TestApp, env: &str) -> Vec<String> {
    let page = app.viewer.clone().list_sync_leases(list(env, false, true)).await.expect("list in flight").into_inner();
    page.sync_leases.into_iter().map(|l| l.name).collect()
}

/// Renewing `lease` is refused as revoked, and the list says why.
async fn assert_revoked(app: &TestApp, c: &mut Client, lease: &str, why: &str) {
    let refused = renew(c, lease).await.expect_err("a revoked lease does not renew");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(kinds(&refused), vec!["LEASE_REVOKED"], "{refused:?}");
    let env = lease.split('/').nth(1).unwrap_or_default();
    let ended = leases(app, env, true).await.into_iter().find(|l| l.name == lease).expect("kept");
    assert_eq!(ended.state, LEASE_REVOKED, "{ended:?}");
    assert!(ended.end_reason.contains(why), "{why:?} in {:?}", ended.end_reason);
    assert!(ended.end_time.is_some());
}

pub async fn leases_are_granted_renewed_and_revoked(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let rally = integration(&app, "dev", "rally", "dev-key-1", true).await;
    let main = mapping(&app, &rally.name, "main", "", true).await;
    let nightly = job(&app, "dev", "nightly", &rally.name, false).await;
    let (mut op, mut admin) = (app.dev_operator.clone(), app.admin.clone());

    let lease = acquire(&mut op, &main.name).await.expect("allowed: a lease");
    let key = lease.credential.clone().expect("the credential comes with the grant");
    assert_eq!((key.api_key.as_str(), key.integration.as_str()), ("dev-key-1", rally.name.as_str()));
    assert_eq!(key.fingerprint, rally.credential_fingerprint);
    assert_eq!((lease.state, lease.holder.as_str(), lease.mapping.as_str()), (LEASE_ACTIVE, DEV_OPERATOR_SUBJECT, main.name.as_str()));
    let span = lease.expire_time.unwrap().seconds - lease.acquire_time.unwrap().seconds;
    assert!((59..=61).contains(&span), "the default ttl is 60 s: {span}");
    let renewed = renew(&mut op, &lease.name).await.expect("renew");
    assert_eq!((renewed.renewals, renewed.credential.is_none()), (1, true), "a renewal never carries the credential");
    let other = renew(&mut admin, &lease.name).await.expect_err("only the holder renews");
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");
    let listed = leases(&app, "dev", false).await;
    assert_eq!(listed.iter().map(|l| (&l.name, &l.holder)).collect::<Vec<_>>(), vec![(&lease.name, &DEV_OPERATOR_SUBJECT.to_string())]);
    assert!(listed.iter().all(|l| l.credential.is_none()), "a list never carries a credential");

    // Each change that ends the allowance revokes at once; a grant is then refused naming why.
    let fence = pb::FenceEnvironmentRequest {
        environment: "environments/dev".into(),
        holder: "refreshRuns/r1".into(),
        reason: "refresh".into(),
        include_resources: false,
        request_id: String::new(),
    };
    admin.fence_environment(fence).await.expect("fence");
    assert!(leases(&app, "dev", false).await.is_empty(), "none outstanding");
    assert_eq!(in_flight(&app, "dev").await, vec![lease.name.clone()], "its holder was not told yet");
    assert_revoked(&app, &mut op, &lease.name, "environments/dev was fenced by refreshRuns/r1").await;
    assert!(in_flight(&app, "dev").await.is_empty(), "the refused renewal told its holder");
    let told = leases(&app, "dev", true).await.into_iter().find(|l| l.name == lease.name).expect("kept");
    assert!(told.acknowledge_time.is_some(), "{told:?}");
    let fenced = acquire(&mut op, &main.name).await.expect_err("fenced: no lease");
    assert_eq!(fenced.code(), Code::FailedPrecondition, "{fenced:?}");
    assert_eq!(kinds(&fenced), vec!["ENVIRONMENT_FENCED"]);
    assert_eq!(precondition_subjects(&fenced), vec!["environments/dev"]);
    let unfence = pb::UnfenceEnvironmentRequest {
        environment: "environments/dev".into(),
        holder: "refreshRuns/r1".into(),
        force: false,
        request_id: String::new(),
    };
    admin.unfence_environment(unfence).await.expect("unfence");

    let lease = acquire(&mut op, &main.name).await.expect("unfenced").name;
    admin
        .suspend_credentials(pb::SuspendCredentialsRequest { name: rally.name.clone(), request_id: String::new() })
        .await
        .expect("suspend");
    assert_revoked(&app, &mut op, &lease, "credentials were suspended").await;
    assert_eq!(kinds(&acquire(&mut op, &main.name).await.unwrap_err()), vec!["CREDENTIALS_SUSPENDED"]);
    admin
        .restore_credentials(pb::RestoreCredentialsRequest { name: rally.name.clone(), request_id: String::new() })
        .await
        .expect("restore");

    let lease = acquire(&mut op, &main.name).await.expect("restored").name;
    admin
        .pause_sync_job(pb::PauseSyncJobRequest { name: nightly.name.clone(), reason: String::new(), request_id: String::new() })
        .await
        .expect("pause");
    assert_revoked(&app, &mut op, &lease, &format!("{} was paused by", nightly.name)).await;
    assert_eq!(kinds(&acquire(&mut op, &main.name).await.unwrap_err()), vec!["JOB_PAUSED"]);
    admin.resume_sync_job(pb::ResumeSyncJobRequest { name: nightly.name.clone(), request_id: String::new() }).await.expect("resume");

    let lease = acquire(&mut op, &main.name).await.expect("resumed").name;
    let rotate = pb::RotateCredentialsRequest { name: rally.name.clone(), api_key: "dev-key-2".into(), request_id: String::new() };
    admin.rotate_credentials(rotate).await.expect("rotate");
    assert_revoked(&app, &mut op, &lease, "credentials were rotated").await;
    let lease = acquire(&mut op, &main.name).await.expect("rotated");
    assert_eq!(lease.credential.as_ref().map(|k| k.api_key.as_str()), Some("dev-key-2"), "the new key");

    admin.deactivate_mapping(pb::DeactivateMappingRequest { name: main.name.clone(), request_id: String::new() }).await.expect("off");
    assert_revoked(&app, &mut op, &lease.name, "was deactivated").await;
    admin
        .activate_mapping(pb::ActivateMappingRequest { name: main.name.clone(), rebind: false, request_id: String::new() })
        .await
        .expect("on");

    // A change that revokes nothing by itself (a paused job created for the integration)
    // still ends the lease at its next renewal: every renewal decides again.
    let lease = acquire(&mut op, &main.name).await.expect("on again").name;
    let paused = job(&app, "dev", "paused", &rally.name, true).await;
    let refused = renew(&mut op, &lease).await.expect_err("denied now");
    assert_eq!(kinds(&refused), vec!["JOB_PAUSED"], "{refused:?}");
    assert_eq!(precondition_subjects(&refused), vec![paused.name.clone()]);
    assert_revoked(&app, &mut op, &lease, "is paused by").await;
    assert!(leases(&app, "dev", false).await.is_empty(), "nothing outstanding");

    // The keys granted are stored nowhere in the clear, not in the audit log either; a
    // renewal that went well is a heartbeat and leaves no event, a refused one does.
    for (table, value) in crate::secrets::every_stored_value(&app.database_url).await {
        for key in ["dev-key-1", "dev-key-2"] {
            assert!(!value.windows(key.len()).any(|w| w == key.as_bytes()), "{key} stored in {table}");
        }
    }
    let db = sea_orm::Database::connect(&app.database_url).await.expect("connect");
    let events = ferry_kit::audit::store::all(&db, &Default::default()).await.expect("audit events");
    let outcomes =
        |method: &str| -> Vec<String> { events.iter().filter(|e| e.method.ends_with(method)).map(|e| e.outcome.clone()).collect() };
    let grants = outcomes("/AcquireSyncLease");
    assert_eq!(grants.iter().filter(|o| *o == "OK").count(), 6, "every grant: {grants:?}");
    assert_eq!(grants.iter().filter(|o| *o == "FAILED_PRECONDITION").count(), 3, "every refusal: {grants:?}");
    let renewals = outcomes("/RenewSyncLease");
    assert!(!renewals.is_empty() && renewals.iter().all(|o| o != "OK"), "only refused renewals are recorded: {renewals:?}");
    assert!(renewals.iter().all(|o| o == "FAILED_PRECONDITION" || o == "PERMISSION_DENIED"), "{renewals:?}");
}

pub async fn lease_release_expiry_and_refusals(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "prod", true).await;
    env(&app, "dev", false).await;
    env(&app, "uat", false).await;
    let rally = integration(&app, "dev", "rally", "dev-key", true).await;
    let main = mapping(&app, &rally.name, "main", "", true).await;
    let uat_job = job(&app, "uat", "nightly", "", false).await;
    let (mut op, mut admin) = (app.dev_operator.clone(), app.admin.clone());

    // Release: RELEASED, again answered as it is, and no renewal after.
    let lease = acquire(&mut op, &main.name).await.expect("lease").name;
    let release = |name: &str| pb::ReleaseSyncLeaseRequest { name: name.into() };
    assert_eq!(op.release_sync_lease(release(&lease)).await.expect("release").into_inner().state, LEASE_RELEASED);
    assert_eq!(op.release_sync_lease(release(&lease)).await.expect("again").into_inner().state, LEASE_RELEASED);
    assert_eq!(kinds(&renew(&mut op, &lease).await.unwrap_err()), vec!["LEASE_RELEASED"]);

    // Expiry: a lease not renewed within its ttl is EXPIRED and not outstanding.
    let short = pb::AcquireSyncLeaseRequest { ttl: ttl(5), ..ask(&main.name) };
    let lease = op.acquire_sync_lease(short).await.expect("5 s").into_inner().name;
    tokio::time::sleep(Duration::from_millis(5_200)).await;
    assert_eq!(kinds(&renew(&mut op, &lease).await.unwrap_err()), vec!["LEASE_EXPIRED"]);
    assert!(leases(&app, "dev", false).await.is_empty());
    assert_eq!(leases(&app, "dev", true).await.iter().find(|l| l.name == lease).map(|l| l.state), Some(LEASE_EXPIRED));

    // A retry with the same request_id: the same lease, the credential again.
    let once = pb::AcquireSyncLeaseRequest { request_id: "acquire-once-1".into(), ..ask(&main.name) };
    let first = op.acquire_sync_lease(once.clone()).await.expect("first").into_inner();
    let again = op.acquire_sync_lease(once).await.expect("replay").into_inner();
    assert_eq!(first.name, again.name);
    assert_eq!(again.credential.map(|k| k.api_key), Some("dev-key".into()));

    // RevokeSyncLeases: admin only; revokes every outstanding lease of the environment.
    let revoke = pb::RevokeSyncLeasesRequest { parent: "environments/dev".into(), reason: "incident 7".into(), request_id: String::new() };
    assert_eq!(op.revoke_sync_leases(revoke.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    let revoked = admin.revoke_sync_leases(revoke).await.expect("revoke").into_inner().revoked;
    assert_eq!(revoked, vec![first.name.clone()]);
    assert_revoked(&app, &mut op, &first.name, &format!("revoked by {ADMIN_SUBJECT}: incident 7")).await;
    let late = pb::AcquireSyncLeaseRequest { request_id: "acquire-once-1".into(), ..ask(&main.name) };
    let replayed = op.acquire_sync_lease(late).await.expect("replay after the revocation").into_inner();
    assert_eq!(
        (replayed.name, replayed.state, replayed.credential),
        (first.name.clone(), LEASE_REVOKED, None),
        "no key for a revoked lease"
    );

    // Bad input, each named precisely.
    for (req, field) in [
        (pb::AcquireSyncLeaseRequest { ttl: ttl(1), ..ask(&main.name) }, "ttl"),
        (pb::AcquireSyncLeaseRequest { ttl: ttl(601), ..ask(&main.name) }, "ttl"),
        (ask("environments/dev/mappings/main"), "mapping"),
        (pb::AcquireSyncLeaseRequest { job: uat_job.name.clone(), ..ask(&main.name) }, "job"),
    ] {
        let bad = op.acquire_sync_lease(req).await.expect_err("refused");
        assert_eq!((bad.code(), violated_fields(&bad)), (Code::InvalidArgument, vec![field.to_string()]), "{bad:?}");
    }
    let both = app.viewer.clone().list_sync_leases(list("dev", true, true)).await.unwrap_err();
    assert_eq!(violated_fields(&both), vec!["in_flight".to_string()]);
    let missing = acquire(&mut op, "environments/dev/integrations/rally/mappings/nope").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(renew(&mut op, "environments/dev/syncLeases/lnope").await.unwrap_err().code(), Code::NotFound);
    assert_eq!(app.viewer.clone().acquire_sync_lease(ask(&main.name)).await.unwrap_err().code(), Code::PermissionDenied);

    // A production mapping copied into a sandbox never gets a lease, whatever its flags say.
    let prod_rally = integration(&app, "prod", "rally", "prod-key", true).await;
    mapping(&app, &prod_rally.name, "main", "", true).await;
    let copy = pb::CopyIntegrationsRequest {
        source: "environments/prod".into(),
        destination: "environments/uat".into(),
        request_id: String::new(),
    };
    admin.copy_integrations(copy).await.expect("copy");
    let copied = "environments/uat/integrations/rally/mappings/main";
    let activate = pb::ActivateMappingRequest { name: copied.into(), rebind: true, request_id: String::new() };
    admin.activate_mapping(activate).await.expect_err("a mapping targeting production is not activated here");
    let never = acquire(&mut admin, copied).await.expect_err("a production mapping in a sandbox");
    assert_eq!(kinds(&never).first().map(String::as_str), Some("PRODUCTION_MAPPING_IN_NON_PRODUCTION"), "{never:?}");
    assert!(!never.message().contains("prod-key") && !format!("{never:?}").contains("prod-key"));
}

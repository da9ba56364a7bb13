//! The audit log across the four services: who did what, in which run and step, with
//! what outcome; no secret or token in any event; `ferry audit verify` passes, then names
//! the event edited in the database.

use ferry_kit::config::JwtArgs;
use ferry_proto::audit::v1 as apb;
use ferry_proto::integration::v1 as ipb;
use ferry_proto::refresh::v1 as pb;
use ferry_testkit::Backend;
use ferry_testkit::jwt::{JwksServer, SigningKey, claims, jwks};
use sea_orm::ConnectionTrait;

use crate::helpers::*;
use crate::scenario::*;

async fn events(s: &Suite, service: &str, filter: apb::ListAuditEventsRequest) -> Vec<apb::AuditEvent> {
    let mut client = s.audit(service);
    let (mut all, mut page_token) = (Vec::new(), String::new());
    loop {
        let req = apb::ListAuditEventsRequest { page_size: 3, page_token, ..filter.clone() };
        let page = client.list_audit_events(req).await.expect("list audit events").into_inner();
        all.extend(page.audit_events);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

fn method(e: &apb::AuditEvent) -> &str {
    e.method.rsplit('/').next().unwrap_or_default()
}

/// `ferry audit verify` against the suite: its output and exit status.
async fn verify(s: &Suite) -> (String, u8) {
    let url = |service: &str| format!("http://{}", s.service_addr(service));
    let args = [
        "ferry".to_owned(),
        "audit".into(),
        "verify".into(),
        "--registry".into(),
        url("group-registry"),
        "--merge".into(),
        url("merge-engine"),
        "--integration".into(),
        url("integration-control"),
        "--refresh".into(),
        url("refresh-coordinator"),
        "--token".into(),
        ADMIN.into(),
    ];
    let cli = <ferry_cli::Cli as clap::Parser>::try_parse_from(args).expect("parse");
    let mut out = Vec::new();
    let code = match ferry_cli::execute(cli, &mut out).await {
        Ok(()) => 0,
        Err(e) => ferry_cli::exit_code(&e),
    };
    (String::from_utf8(out).expect("utf-8"), code)
}

const ISSUER: &str = "https://login.example.com";
/// The subject of the JWT that starts the run.
const JO: &str = "jo@example.com";

pub async fn audit_log_says_who_did_what(backend: Backend) {
    // Every service accepts JWTs of a test issuer (a real JWKS server) beside the tokens file.
    let key = SigningKey::rsa(0, "test-key");
    let issuer = JwksServer::start(jwks(&[&key]), None, None).await;
    let jwt_args = JwtArgs {
        issuer: Some(ISSUER.into()),
        audience: Some("ferry".into()),
        jwks_url: Some(issuer.url("/jwks")),
        role_map: "ferry-admins=admin+approver,ferry-ops=operator".into(),
        ..JwtArgs::default()
    };
    let Some(s) = spawn_suite(backend, Knobs { four_eyes: true, jwt: Some(jwt_args), ..Knobs::default() }).await else { return };
    let jwt = |group: &str| {
        let mut c = claims(ISSUER, "ferry", JO);
        c["groups"] = serde_json::json!([group]);
        key.sign(&c)
    };
    let (jo_admin, jo_operator) = (jwt("ferry-admins"), jwt("ferry-ops"));
    arrange(&s, false).await;
    let secret = "sk-live-audit-secret-0123456789";
    s.integration
        .clone()
        .rotate_credentials(ipb::RotateCredentialsRequest {
            name: "environments/prod/integrations/rally".into(),
            api_key: secret.into(),
            request_id: "rotate-1".into(),
        })
        .await
        .expect("rotate");
    let missing = s
        .person
        .clone()
        .pause_sync_job(ipb::PauseSyncJobRequest {
            name: "environments/prod/jobs/nope".into(),
            reason: "x".into(),
            request_id: String::new(),
        })
        .await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);

    let start_req = pb::StartRefreshRequest {
        source: "environments/prod".into(),
        destination: "environments/sandbox".into(),
        options: options(pb::RefreshMode::Managed, true),
        ..Default::default()
    };
    let run = s.refresh_as(&jo_admin).start_refresh(start_req).await.expect("start with a JWT").into_inner();
    assert_eq!(run.created_by, JO, "the run records the JWT's subject");
    wait_for(&s, &run.name, 20, |r| r.state == WAITING).await;
    let confirm = |token: &str| {
        let mut client = s.refresh_as(token);
        let name = run.name.clone();
        async move {
            let req =
                pb::ConfirmRefreshStepRequest { name, step: 1, actor: String::new(), comment: "ok".into(), request_id: String::new() };
            client.confirm_refresh_step(req).await
        }
    };
    assert_eq!(confirm(&jo_admin).await.unwrap_err().code(), tonic::Code::PermissionDenied, "self-approval");
    confirm(APPROVER).await.expect("another approver");
    let last = wait_for(&s, &run.name, 30, |r| matches!(r.state, SUCCEEDED | FAILED)).await;
    assert_eq!(last.state, SUCCEEDED, "run ended: {:?}", last.error);

    // A job paused with a JWT records its subject.
    let pause =
        ipb::PauseSyncJobRequest { name: "environments/sandbox/jobs/sbx-job".into(), reason: "jwt".into(), request_id: String::new() };
    let mut as_jo = s.integration_as(&jo_operator);
    assert_eq!(as_jo.pause_sync_job(pause).await.expect("pause with a JWT").into_inner().paused_by, JO);

    // The report's actors come from the log.
    let report = s.refresh.clone().get_refresh_report(pb::GetRefreshReportRequest { name: format!("{}/report", run.name) }).await;
    let report = report.expect("report").into_inner().markdown;
    assert!(report.contains("## Who did what (audit log)"), "{report}");
    assert!(report.contains(&format!("| {JO} | jwt | StartRefresh | - | OK |")), "{report}");
    assert!(report.contains(&format!("| {JO} | jwt | ConfirmRefreshStep | 1 check | PERMISSION_DENIED |")), "{report}");
    assert!(report.contains(&format!("| {APPROVER_SUBJECT} | static-token | ConfirmRefreshStep | 1 check | OK |")), "{report}");
    assert!(report.contains(&format!("times on behalf of {JO} (events ")), "{report}");

    // Who did what, in the service that did it.
    let integration = events(&s, "integration-control", apb::ListAuditEventsRequest::default()).await;
    let paused = integration.iter().find(|e| method(e) == "PauseSyncJob" && e.outcome == "OK").expect("the person's pause");
    assert_eq!((paused.subject.as_str(), paused.credential.as_str()), ("pat@example.com", "static-token"));
    assert_eq!(paused.resources, vec!["environments/sandbox/jobs/manual".to_owned()]);
    let refused = integration.iter().find(|e| method(e) == "PauseSyncJob" && e.outcome == "NOT_FOUND").expect("the failed pause");
    assert_eq!(refused.resources, vec!["environments/prod/jobs/nope".to_owned()]);
    let rotated = integration.iter().find(|e| method(e) == "RotateCredentials").expect("the rotation");
    assert_eq!((rotated.subject.as_str(), rotated.request_id.as_str()), (ADMIN_SUBJECT, "rotate-1"));
    let deactivated = integration.iter().find(|e| method(e) == "DeactivateIntegrations").expect("the run's deactivation");
    assert_eq!((deactivated.subject.as_str(), deactivated.on_behalf_of.as_str()), ("refresh-coordinator", JO), "a service and its caller");
    let by_jwt = integration.iter().find(|e| method(e) == "PauseSyncJob" && e.subject == JO).expect("the JWT's pause");
    assert_eq!(
        (by_jwt.credential.as_str(), by_jwt.resources.as_slice()),
        ("jwt", ["environments/sandbox/jobs/sbx-job".to_owned()].as_slice())
    );
    let refresh = events(&s, "refresh-coordinator", apb::ListAuditEventsRequest::default()).await;
    let started = refresh.iter().find(|e| method(e) == "StartRefresh").expect("the start");
    assert_eq!((started.subject.as_str(), started.credential.as_str()), (JO, "jwt"));
    assert_eq!((started.run.as_str(), started.outcome.as_str()), (run.name.as_str(), "OK"));
    let confirms: Vec<_> = refresh.iter().filter(|e| method(e) == "ConfirmRefreshStep").collect();
    let seen: Vec<_> = confirms.iter().map(|e| (e.subject.as_str(), e.outcome.as_str(), e.run.as_str(), e.step.as_str())).collect();
    assert_eq!(seen, vec![(JO, "PERMISSION_DENIED", run.name.as_str(), "1 check"), (APPROVER_SUBJECT, "OK", run.name.as_str(), "1 check")]);
    let driver: Vec<_> = refresh.iter().filter(|e| e.method == "refresh-coordinator/driver").collect();
    assert!(driver.len() >= 9, "the driver's writes: {}", driver.len());
    assert!(driver.iter().all(|e| e.subject == "refresh-coordinator" && e.on_behalf_of == JO && e.run == run.name));
    assert!(driver.iter().any(|e| e.step.starts_with("9 ")), "{:?}", driver.iter().map(|e| &e.step).collect::<Vec<_>>());
    let registry = events(&s, "group-registry", apb::ListAuditEventsRequest::default()).await;
    assert!(registry.iter().any(|e| method(e) == "CopyEnvironment" && e.resources == ["environments/prod", "environments/sandbox"]));

    // Filters hold in the query; a scoped caller may not read the log at all.
    let of_pat =
        events(&s, "integration-control", apb::ListAuditEventsRequest { subject: "pat@example.com".into(), ..Default::default() }).await;
    assert!(of_pat.len() >= 2 && of_pat.iter().all(|e| e.subject == "pat@example.com"));
    let sandbox =
        apb::ListAuditEventsRequest { resource_prefix: "environments/sandbox/".into(), outcome: "OK".into(), ..Default::default() };
    let in_sandbox = events(&s, "integration-control", sandbox).await;
    assert!(
        !in_sandbox.is_empty()
            && in_sandbox.iter().all(|e| e.outcome == "OK" && e.resources.iter().any(|r| r.starts_with("environments/sandbox/")))
    );
    let bad = s
        .audit("integration-control")
        .list_audit_events(apb::ListAuditEventsRequest { outcome: "FINE".into(), ..Default::default() })
        .await;
    assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);

    // No secret and no token in any event.
    let mut all = integration.clone();
    all.extend(refresh.clone());
    all.extend(registry);
    all.extend(events(&s, "merge-engine", apb::ListAuditEventsRequest::default()).await);
    let text = format!("{all:?}");
    for never in [secret, "key-of-prod-rally", ADMIN, SERVICE, PERSON, APPROVER, VIEWER, SCOPED, &jo_admin, &jo_operator] {
        assert!(!text.contains(never), "an audit event holds {never:?}");
    }

    // The chains verify; an edited row is named.
    let (out, code) = verify(&s).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("chain intact").count(), 4, "{out}");
    let db = sea_orm::Database::connect(s.integration_database()).await.expect("connect");
    let stmt = ferry_kit::db::stmt(
        db.get_database_backend(),
        "UPDATE audit_events SET subject = 'mallory' WHERE sequence = ?",
        [paused.sequence.into()],
    );
    db.execute_raw(stmt).await.expect("edit an event");
    let (out, code) = verify(&s).await;
    assert_eq!(code, 4, "{out}");
    assert!(out.contains(&format!("integration-control: chain BROKEN at event {}: ", paused.sequence)), "{out}");
    assert_eq!(out.matches("chain intact").count(), 3, "{out}");
}

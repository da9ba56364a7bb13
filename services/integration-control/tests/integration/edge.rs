//! The edges: bad input, scopes, retries.

use ferry_proto::integration::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;

pub async fn bad_input_is_refused_precisely(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    env(&app, "prod", true).await;
    let mut c = app.admin.clone();
    let rally = integration(&app, "dev", "rally", "k", true).await;

    let bad = c
        .create_integration(pb::CreateIntegrationRequest {
            parent: "environments/dev".into(),
            integration_id: "Bad Id".into(),
            integration: Some(pb::Integration {
                external_system: String::new(),
                base_url: "rally.example.com".into(),
                ..Default::default()
            }),
            api_key: "x".repeat(4097),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad),
        vec!["integration_id", "integration.external_system", "integration.base_url", "api_key"],
        "every problem at once"
    );
    let rotate = |key: String| pb::RotateCredentialsRequest { name: rally.name.clone(), api_key: key, request_id: String::new() };
    for key in [String::new(), "x".repeat(4097), " padded ".into()] {
        let err = c.rotate_credentials(rotate(key)).await.unwrap_err();
        assert_eq!(violated_fields(&err), vec!["api_key".to_string()]);
    }
    c.rotate_credentials(rotate("y".repeat(4096))).await.expect("4096 bytes is allowed");
    let gone = c
        .rotate_credentials(pb::RotateCredentialsRequest {
            name: "environments/dev/integrations/missing".into(),
            api_key: "k".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let json = c
        .create_mapping(pb::CreateMappingRequest {
            parent: rally.name.clone(),
            mapping_id: "m".into(),
            mapping: Some(pb::Mapping { field_mapping_json: "[1, 2]".into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&json), vec!["mapping.field_mapping_json".to_string()]);
    let bad_target = create_mapping(&app, &rally.name, "m", "prod", false).await.unwrap_err();
    assert_eq!(violated_fields(&bad_target), vec!["mapping.target_environment".to_string()]);
    assert_eq!(
        c.get_integration(pb::GetIntegrationRequest { name: "integrations/rally".into() }).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let bad_size = c
        .list_integrations(pb::ListIntegrationsRequest { parent: "environments/dev".into(), page_size: -1, page_token: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&bad_size), vec!["page_size".to_string(), "page_token".to_string()]);

    // Roles and scopes.
    let viewer =
        app.viewer.clone().create_snapshot(pb::CreateSnapshotRequest { parent: "environments/dev".into(), ..Default::default() }).await;
    assert_eq!(viewer.unwrap_err().code(), Code::PermissionDenied);
    let not_admin = app
        .dev_operator
        .clone()
        .deactivate_integrations(pb::DeactivateIntegrationsRequest { environment: "environments/dev".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(not_admin.code(), Code::PermissionDenied, "environment-wide steps need the admin role");
    let mut op = app.dev_admin.clone();
    let out_of_scope = op
        .deactivate_integrations(pb::DeactivateIntegrationsRequest { environment: "environments/prod".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(out_of_scope.code(), Code::PermissionDenied);
    op.deactivate_integrations(pb::DeactivateIntegrationsRequest { environment: "environments/dev".into(), ..Default::default() })
        .await
        .expect("in scope");
    let copy_out = op
        .copy_integrations(pb::CopyIntegrationsRequest {
            source: "environments/prod".into(),
            destination: "environments/dev".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(copy_out.code(), Code::PermissionDenied, "a copy needs both environments in scope");
}

pub async fn request_id_makes_retries_no_ops(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let mut c = app.admin.clone();
    let req = pb::CreateIntegrationRequest {
        parent: "environments/dev".into(),
        integration_id: "rally".into(),
        integration: Some(new_integration(true)),
        api_key: "key-one".into(),
        request_id: "req-create".into(),
    };
    let first = c.create_integration(req.clone()).await.expect("create").into_inner();
    let retry = c.create_integration(req.clone()).await.expect("retry answers like the first").into_inner();
    assert_eq!(first, retry);
    let other_key = pb::CreateIntegrationRequest { api_key: "key-two".into(), ..req.clone() };
    let reused = c.create_integration(other_key).await.unwrap_err();
    assert_eq!(violated_fields(&reused), vec!["request_id".to_string()], "the key is part of the request");

    let rotate = pb::RotateCredentialsRequest { name: first.name.clone(), api_key: "key-three".into(), request_id: "req-rotate".into() };
    let r1 = c.rotate_credentials(rotate.clone()).await.expect("rotate").into_inner();
    let r2 = c.rotate_credentials(rotate).await.expect("rotate retry").into_inner();
    assert_eq!(r1, r2);

    // A failed call records nothing: the same id works once the problem is fixed.
    let dup = pb::CreateIntegrationRequest { request_id: "req-2".into(), api_key: String::new(), ..req.clone() };
    assert_eq!(c.create_integration(dup).await.unwrap_err().code(), Code::AlreadyExists);
    let fixed = pb::CreateIntegrationRequest { integration_id: "jira".into(), request_id: "req-2".into(), api_key: String::new(), ..req };
    c.create_integration(fixed).await.expect("same id, now valid");

    let del = pb::DeleteIntegrationRequest { name: first.name.clone(), force: false, request_id: "req-del".into() };
    let d1 = c.delete_integration(del.clone()).await.expect("delete").into_inner();
    let d2 = c.delete_integration(del).await.expect("retried delete is not NOT_FOUND").into_inner();
    assert_eq!(d1, d2);
    let fence = pb::FenceEnvironmentRequest {
        environment: "environments/dev".into(),
        holder: "refreshes/r1".into(),
        reason: String::new(),
        include_resources: false,
        request_id: "req-fence".into(),
    };
    let f1 = c.fence_environment(fence.clone()).await.expect("fence").into_inner();
    let f2 = c.fence_environment(fence).await.expect("fence retry").into_inner();
    assert_eq!(f1, f2);
    assert_eq!(f1.changes.len(), 1, "the retry returns the first ChangeSet, not an empty one");
}

pub async fn concurrent_retries_and_fences_stay_consistent(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let req = pb::CreateIntegrationRequest {
        parent: "environments/dev".into(),
        integration_id: "rally".into(),
        integration: Some(new_integration(true)),
        api_key: "k".into(),
        request_id: "same-id".into(),
    };
    let creates = (0..8).map(|_| {
        let mut c = app.admin.clone();
        let r = req.clone();
        tokio::spawn(async move { c.create_integration(r).await.map(|r| r.into_inner()) })
    });
    let replies: Vec<_> =
        futures::future::join_all(creates).await.into_iter().map(|r| r.expect("task").expect("same id answers")).collect();
    assert!(replies.windows(2).all(|w| w[0] == w[1]), "one reply for one request id");

    let fences = (0..8).map(|i| {
        let mut c = app.admin.clone();
        tokio::spawn(async move {
            c.fence_environment(pb::FenceEnvironmentRequest {
                environment: "environments/dev".into(),
                holder: format!("refreshes/r{i}"),
                reason: String::new(),
                include_resources: false,
                request_id: String::new(),
            })
            .await
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(fences).await.into_iter().map(|r| r.expect("task")).collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "one holder wins");
    for o in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert!(matches!(o.code(), Code::FailedPrecondition | Code::Aborted), "{o:?}");
    }
}

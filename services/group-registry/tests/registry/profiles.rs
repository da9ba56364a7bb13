//! Copy profiles: a refresh that preserves, excludes and masks.

use ferry_proto::common::v1::{self as pc, CopyProfile, EntitySelector, MaskAction, MaskingRule};
use ferry_proto::registry::v1 as pb;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;
use crate::projects::{item, project, r};

const EMAILS: [&str; 3] = ["jane.doe@corp.example.com", "max.mustermann@corp.example.com", "ops-team@corp.example.com"];

/// Production: `main` (data sources holding e-mails, tables owned by people, a map),
/// `extra` (a service), projects over each. The sandbox: its own `sandbox-test` group and
/// project, and a `main` whose `local-*` lookups it wants to keep.
async fn arrange(app: &TestApp) {
    env(app, "prod", true).await;
    env(app, "sandbox", false).await;
    let main = group(app, "prod", "main").await;
    let extra = group(app, "prod", "extra").await;
    for (i, email) in EMAILS.iter().enumerate() {
        let payload = format!(r#"{{"contact":{{"email":"{email}","name":"Person {i}"}},"url":"https://db{i}.corp"}}"#);
        create(app, &main, entity(DATA_SOURCE, &format!("ds-{i}"), &payload)).await.expect("data source");
    }
    for (key, owner) in [("orders", "jane"), ("invoices", "jane"), ("stock", "max")] {
        create(app, &main, entity(TABLE, key, &format!(r#"{{"owner":"{owner}","columns":["id"]}}"#))).await.expect("table");
    }
    create(app, &main, entity(MAP, "regions", r#"{"eu":1}"#)).await.expect("map");
    create(app, &main, entity(LOOKUP, "local-flags", r#"{"from":"prod"}"#)).await.expect("prod lookup");
    create(app, &extra, entity(SERVICE, "billing", "{}")).await.expect("service");
    let p = project(app, "prod", "crm", &[&main]).await.expect("project");
    item(app, &p.name, "home", vec![r(TABLE, "orders")]).await;
    project(app, "prod", "ops", &[&extra]).await.expect("project");

    let own = group(app, "sandbox", "sandbox-test").await;
    create(app, &own, entity(SERVICE, "test-double", r#"{"url":"https://sbx.example"}"#)).await.expect("own service");
    create(app, &own, entity(LOOKUP, "fixtures", r#"{"rows":3}"#)).await.expect("own lookup");
    project(app, "sandbox", "own", &[&own]).await.expect("own project");
    let sandbox_main = group(app, "sandbox", "main").await;
    create(app, &sandbox_main, entity(LOOKUP, "local-flags", r#"{"from":"sandbox"}"#)).await.expect("kept lookup");
    create(app, &sandbox_main, entity(SERVICE, "scratch", "{}")).await.expect("replaced service");
}

fn profile() -> CopyProfile {
    CopyProfile {
        preserve_groups: vec!["sandbox-*".into()],
        preserve_projects: vec!["own".into()],
        preserve_entities: vec![EntitySelector { kind: LOOKUP, key_pattern: "local-*".into() }],
        exclude_groups: vec!["extra".into()],
        exclude_kinds: vec![MAP],
        masking: vec![
            MaskingRule { kind: DATA_SOURCE, pointer: "/contact/email".into(), action: MaskAction::Fake as i32, value_json: String::new() },
            MaskingRule {
                kind: DATA_SOURCE,
                pointer: "/contact/name".into(),
                action: MaskAction::Remove as i32,
                value_json: String::new(),
            },
            MaskingRule { kind: TABLE, pointer: "/owner".into(), action: MaskAction::Pseudonym as i32, value_json: String::new() },
        ],
        ..Default::default()
    }
}

fn copy(profile: Option<CopyProfile>, validate_only: bool) -> pb::CopyEnvironmentRequest {
    pb::CopyEnvironmentRequest {
        source: "environments/prod".into(),
        destination: "environments/sandbox".into(),
        request_id: String::new(),
        profile,
        validate_only,
    }
}

fn of_group<'a>(content: &'a [String], group: &str) -> Vec<&'a String> {
    content.iter().filter(|l| l.starts_with(&format!("group {group} ")) || l.starts_with(&format!("entity {group} "))).collect()
}

pub async fn a_profile_preserves_excludes_and_masks(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    arrange(&app).await;
    let mut admin = app.admin.clone();
    let before = ferry_testkit::content::environment(&mut admin, "environments/sandbox").await;

    // A preview writes nothing and says what the copy will do.
    let preview = admin.copy_environment(copy(Some(profile()), true)).await.expect("preview").into_inner();
    assert_eq!(ferry_testkit::content::environment(&mut admin, "environments/sandbox").await, before, "validate_only writes nothing");

    let done = admin.copy_environment(copy(Some(profile()), false)).await.expect("copy").into_inner();
    assert_eq!(preview, done, "the preview is what the copy did");
    let kind = |k: i32| done.by_kind.iter().find(|c| c.kind == k).copied().unwrap_or(pc::KindCopyCounts { kind: k, ..Default::default() });
    assert_eq!((kind(DATA_SOURCE).copied, kind(DATA_SOURCE).masked), (3, 3));
    assert_eq!((kind(TABLE).copied, kind(TABLE).masked), (3, 3));
    assert_eq!((kind(MAP).copied, kind(MAP).excluded), (0, 1), "an excluded kind");
    assert_eq!(kind(SERVICE).excluded, 1, "the excluded group's service");
    assert_eq!((kind(LOOKUP).copied, kind(LOOKUP).excluded, kind(LOOKUP).preserved), (0, 1, 2), "the kept local-flags wins");
    assert_eq!((done.preserved_groups, done.preserved_projects, done.excluded_projects), (1, 1, 1));
    assert_eq!((done.replaced_groups, done.replaced_entities, done.replaced_projects), (1, 1, 0));
    assert_eq!((done.groups, done.entities, done.projects, done.config_items), (0, 6, 1, 1), "main stays and takes prod's content");

    let after = ferry_testkit::content::environment(&mut admin, "environments/sandbox").await;
    let all = after.join("\n");
    for email in EMAILS {
        assert!(!all.contains(email), "{email} reached the sandbox:\n{all}");
    }
    assert!(!all.contains("corp.example") && !all.contains("Person "), "no production e-mail or name anywhere:\n{all}");
    assert!(!all.contains("kind 9 "), "no map:\n{all}");
    assert!(!all.contains("billing") && !all.contains("environments/sandbox/groups/extra"), "the excluded group is not copied");
    assert_eq!(of_group(&after, "environments/sandbox/groups/sandbox-test"), of_group(&before, "environments/sandbox/groups/sandbox-test"));
    assert!(after.iter().any(|l| l.contains("project environments/sandbox/projects/own ")), "the own project stays");
    assert!(all.contains(r#"key "local-flags" sharing 2 payload {"from":"sandbox"}"#), "the kept lookup:\n{all}");
    assert!(!all.contains("scratch"), "what was not kept is replaced");

    // Masked values keep their shape; equal values stay equal.
    let exported = export(&app, "environments/sandbox/groups/main").await;
    let payload = |k: &str| -> serde_json::Value {
        serde_json::from_str(&exported.iter().find(|e| e.key == k).expect("exported").payload_json).expect("json")
    };
    let email = payload("ds-0")["contact"]["email"].as_str().expect("an e-mail").to_owned();
    assert!(email.ends_with(".invalid") && email.split_once('@').is_some_and(|(l, _)| l.len() == "jane.doe".len()), "{email}");
    assert!(payload("ds-0")["contact"].get("name").is_none(), "removed");
    assert_eq!(payload("ds-0")["url"], "https://db0.corp", "unmasked fields stay");
    assert_eq!(payload("orders")["owner"], payload("invoices")["owner"], "equal values, equal pseudonyms");
    assert_ne!(payload("orders")["owner"], payload("stock")["owner"]);
    let prod = export(&app, "environments/prod/groups/main").await;
    for e in exported.iter().filter(|e| e.kind == DATA_SOURCE || e.kind == TABLE) {
        let source = prod.iter().find(|p| p.key == e.key).expect("in production");
        assert_ne!(e.content_hash, source.content_hash, "{}: a masked entity carries the hash of what it holds", e.key);
    }

    // The same profile again masks alike (the key is the destination's).
    admin.copy_environment(copy(Some(profile()), false)).await.expect("copy again");
    assert_eq!(
        export(&app, "environments/sandbox/groups/main").await.iter().map(|e| e.payload_json.clone()).collect::<Vec<_>>(),
        exported.iter().map(|e| e.payload_json.clone()).collect::<Vec<_>>()
    );
}

async fn export(app: &TestApp, group: &str) -> Vec<pb::Entity> {
    let mut stream = app
        .admin
        .clone()
        .export_entities(pb::ExportEntitiesRequest { parent: group.into(), kinds: vec![] })
        .await
        .expect("export")
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = stream.message().await.expect("export message") {
        out.extend(m.entities);
    }
    out
}

pub async fn a_bad_profile_is_refused_with_field_violations(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    arrange(&app).await;
    let mut admin = app.admin.clone();
    let before = ferry_testkit::content::environment(&mut admin, "environments/sandbox").await;
    let bad = CopyProfile {
        preserve_groups: vec![String::new()],
        exclude_kinds: vec![42],
        preserve_entities: vec![EntitySelector { kind: 0, key_pattern: "x".into() }],
        masking: vec![
            MaskingRule { kind: TABLE, pointer: "owner".into(), action: MaskAction::Remove as i32, value_json: String::new() },
            MaskingRule { kind: TABLE, pointer: "/owner".into(), action: MaskAction::Fixed as i32, value_json: "not json".into() },
            MaskingRule { kind: TABLE, pointer: "/owner".into(), action: 0, value_json: String::new() },
        ],
        ..Default::default()
    };
    let refused = admin.copy_environment(copy(Some(bad), false)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&refused);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "profile.exclude_kinds[0]",
            "profile.masking[0].pointer",
            "profile.masking[1].value_json",
            "profile.masking[2].action",
            "profile.preserve_entities[0].kind",
            "profile.preserve_groups[0]",
        ]
    );
    assert_eq!(ferry_testkit::content::environment(&mut admin, "environments/sandbox").await, before, "nothing written");
}

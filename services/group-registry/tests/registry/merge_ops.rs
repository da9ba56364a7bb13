//! Merge operations against a recipient (what merge-engine sends): each answered once
//! with its outcome (G11), in order where two meet on one key, and never a key twice under
//! concurrent batches (G1).

use ferry_proto::registry::v1 as pb;
use pb::merge_operation::Op;
use tonic::Code;

use crate::Backend;
use crate::bulk::{import, import_msgs, manifest};
use crate::helpers::*;

pub(crate) fn op(o: Op) -> pb::MergeOperation {
    pb::MergeOperation { op: Some(o) }
}

pub(crate) fn id_of(name: &str) -> i64 {
    name.rsplit('/').next().and_then(|s| s.parse().ok()).expect("entity id")
}

pub(crate) async fn apply(
    app: &TestApp,
    recipient: &str,
    ops: Vec<pb::MergeOperation>,
) -> Result<pb::ApplyMergeOperationsResponse, tonic::Status> {
    app.admin
        .clone()
        .apply_merge_operations(pb::ApplyMergeOperationsRequest { recipient: recipient.into(), operations: ops, request_id: String::new() })
        .await
        .map(|r| r.into_inner())
}

pub async fn merge_operations_apply_once_and_report_outcomes(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let test = group(&app, "dev", "test").await;
    let prod = group(&app, "dev", "prod").await;
    let svc = create(&app, &test, entity(SERVICE, "billing", r#"{"v":"test"}"#)).await.expect("service");
    let lookup = create(&app, &test, entity(LOOKUP, "status", "{}")).await.expect("lookup");
    let clash_src = create(&app, &test, entity(TABLE, "orders", r#"{"cols":2}"#)).await.expect("table");
    let clash_dst = create(&app, &prod, entity(TABLE, "orders", r#"{"cols":1}"#)).await.expect("table");

    let ops = vec![
        op(Op::CopyEntityId(id_of(&svc.name))),
        op(Op::LinkEntityId(id_of(&lookup.name))),
        op(Op::CopyEntityId(id_of(&clash_src.name))),
    ];
    let first = apply(&app, &prod, ops.clone()).await.expect("apply");
    assert_eq!((first.applied, first.already_present, first.conflicts), (2, 0, 1));
    let copy_id = first.results[0].entity_id;
    assert!(copy_id > 0 && copy_id != id_of(&svc.name), "a new duplicated instance");
    assert_eq!(first.results[1].entity_id, id_of(&lookup.name), "the shared instance itself is linked");
    assert_eq!(first.results[2].entity_id, id_of(&clash_dst.name), "the conflict names the recipient's entity");
    let copied = app
        .admin
        .clone()
        .get_entity(pb::GetEntityRequest { name: format!("environments/dev/entities/{copy_id}") })
        .await
        .expect("copy")
        .into_inner();
    assert_eq!((copied.payload_json.as_str(), copied.groups.clone()), (r#"{"v":"test"}"#, vec![prod.clone()]));

    // G11: the same batch again changes nothing.
    let again = apply(&app, &prod, ops).await.expect("apply again");
    assert_eq!((again.applied, again.already_present, again.conflicts), (0, 2, 1));
    assert_eq!(again.revision, first.revision, "no change, no new revision");
    assert_eq!(keys_of(&app, &prod).await.len(), 3);

    // TAKE_SOURCE style overwrite, then revert style remove and unlink.
    let over = apply(
        &app,
        &prod,
        vec![op(Op::Overwrite(pb::OverwritePayload {
            source_entity_id: id_of(&clash_src.name),
            target_entity_id: id_of(&clash_dst.name),
        }))],
    )
    .await
    .expect("overwrite");
    assert_eq!(over.applied, 1);
    let now = app.admin.clone().get_entity(pb::GetEntityRequest { name: clash_dst.name.clone() }).await.expect("get").into_inner();
    assert_eq!(now.payload_json, r#"{"cols":2}"#);
    let undo = apply(&app, &prod, vec![op(Op::RemoveEntityId(copy_id)), op(Op::UnlinkEntityId(id_of(&lookup.name)))]).await.expect("undo");
    assert_eq!(undo.applied, 2);
    assert_eq!(keys_of(&app, &prod).await, vec![(TABLE, "orders".to_string())]);
    assert_eq!(keys_of(&app, &test).await.len(), 3, "the source is untouched");
    let undo_again =
        apply(&app, &prod, vec![op(Op::RemoveEntityId(copy_id)), op(Op::UnlinkEntityId(id_of(&lookup.name)))]).await.expect("undo again");
    assert_eq!(undo_again.already_present, 2);

    // Wrong operations are refused whole.
    let bad = apply(&app, &prod, vec![op(Op::CopyEntityId(id_of(&lookup.name))), op(Op::LinkEntityId(999_999))]).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), vec!["operations[0]".to_string(), "operations[1]".to_string()]);
}

/// A batch of copies and links is written set-based; where two of its operations meet on
/// one key, the answer is still the one of applying them in order.
pub async fn operations_on_one_key_answer_in_order(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let test = group(&app, "dev", "test").await;
    let other = group(&app, "dev", "other").await;
    let a_test = create(&app, &test, entity(SERVICE, "a", r#"{"v":"test"}"#)).await.expect("a");
    let a_other = create(&app, &other, entity(SERVICE, "a", r#"{"v":"other"}"#)).await.expect("a elsewhere");
    let b = create(&app, &test, entity(SERVICE, "b", "{}")).await.expect("b");
    let portal = |sharing, payload: &str| pb::Entity { sharing, ..entity(PORTAL, "p", payload) };
    let p_shared = create(&app, &other, portal(SHARED, r#"{"s":1}"#)).await.expect("shared portal");
    let p_dup = create(&app, &test, portal(DUPLICATED, r#"{"d":1}"#)).await.expect("duplicated portal");
    let outcomes = |r: &pb::ApplyMergeOperationsResponse| r.results.iter().map(|x| x.outcome).collect::<Vec<_>>();
    let (applied, present, conflict) = (1, 2, 3);

    // Two sources under one key: the first is copied, the second conflicts with it.
    let prod = group(&app, "dev", "prod").await;
    let ops = [&a_other, &a_test, &a_test].map(|e| op(Op::CopyEntityId(id_of(&e.name)))).to_vec();
    let r = apply(&app, &prod, ops).await.expect("two sources of one key");
    assert_eq!(outcomes(&r), [applied, conflict, conflict]);
    assert_eq!(r.results[1].entity_id, r.results[0].entity_id, "the conflict names the copy just made");

    // One source twice: copied once, then found there.
    let ops = vec![op(Op::CopyEntityId(id_of(&b.name))), op(Op::CopyEntityId(id_of(&b.name)))];
    let r = apply(&app, &prod, ops).await.expect("one source twice");
    assert_eq!(outcomes(&r), [applied, present]);
    assert_eq!(keys_of(&app, &prod).await.len(), 2);

    // A link before a copy of the same key: the link wins, as it comes first.
    let live = group(&app, "dev", "live").await;
    let ops = vec![op(Op::LinkEntityId(id_of(&p_shared.name))), op(Op::CopyEntityId(id_of(&p_dup.name)))];
    let r = apply(&app, &live, ops).await.expect("link then copy");
    assert_eq!(outcomes(&r), [applied, conflict]);
    assert_eq!(r.results[1].entity_id, id_of(&p_shared.name));

    // An invalid operation after valid ones: named by its place in the batch, nothing written.
    let empty = group(&app, "dev", "empty").await;
    let ops = vec![op(Op::CopyEntityId(id_of(&b.name))), op(Op::CopyEntityId(999_999))];
    let bad = apply(&app, &empty, ops).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), vec!["operations[1]".to_string()]);
    assert!(keys_of(&app, &empty).await.is_empty());
}

pub async fn concurrent_batches_into_one_recipient_never_duplicate_keys(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let src = group(&app, "dev", "src").await;
    let dst = group(&app, "dev", "dst").await;
    // Copies and links: such batches overlap (they lock the recipient only at their end),
    // and those that lose a race on a key run again, locked, and see the winner's work.
    let entities: Vec<pb::Entity> = (0..200)
        .map(|i| entity(SERVICE, &format!("s{i:03}"), "{}"))
        .chain((0..100).map(|i| entity(LOOKUP, &format!("l{i:03}"), "{}")))
        .collect();
    import(&app, import_msgs(&src, "", entities, 300)).await.expect("import");
    let (entries, _) = manifest(&app, &src, 0).await;
    let ops: Vec<pb::MergeOperation> =
        entries.iter().map(|e| op(if e.kind == LOOKUP { Op::LinkEntityId(e.entity_id) } else { Op::CopyEntityId(e.entity_id) })).collect();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut c = app.admin.clone();
        let mut ops = ops.clone();
        ops.rotate_left(i * 37);
        let dst = dst.clone();
        tasks.push(tokio::spawn(async move {
            c.apply_merge_operations(pb::ApplyMergeOperationsRequest { recipient: dst, operations: ops, request_id: String::new() })
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut applied = 0;
    for t in tasks {
        let batch = t.await.expect("task").expect("apply");
        assert_eq!(batch.applied + batch.already_present, 300, "every operation is applied or found done: {batch:?}");
        assert_eq!(batch.conflicts, 0);
        applied += batch.applied;
    }
    assert_eq!(applied, 300, "each key is created or linked exactly once over all concurrent batches");
    assert_eq!(keys_of(&app, &dst).await.len(), 300);
}

//! An overwrite keeps what it replaced; a restore puts it back once, and only over the
//! content the overwrite gave.

use ferry_proto::registry::v1 as pb;
use pb::merge_operation::Op;
use tonic::Code;

use crate::Backend;
use crate::helpers::*;
use crate::merge_ops::{apply, id_of, op};

fn restore(entity: &str, overwritten_hash: &str) -> pb::MergeOperation {
    op(Op::Restore(pb::RestorePayload { entity_id: id_of(entity), overwritten_hash: overwritten_hash.into() }))
}

pub async fn a_restore_puts_back_what_an_overwrite_replaced_once(b: Backend) {
    let Some(app) = spawn_app(b).await else { return };
    env(&app, "dev", false).await;
    let test = group(&app, "dev", "test").await;
    let prod = group(&app, "dev", "prod").await;
    let src = create(&app, &test, entity(TABLE, "orders", r#"{"cols":2}"#)).await.expect("source");
    let dst = create(&app, &prod, entity(TABLE, "orders", r#"{"cols":1}"#)).await.expect("recipient's");
    let get = |name: String| {
        let mut admin = app.admin.clone();
        async move { admin.get_entity(pb::GetEntityRequest { name }).await.expect("get").into_inner() }
    };

    // Nothing was overwritten yet: nothing to put back.
    let none = apply(&app, &prod, vec![restore(&dst.name, &src.content_hash)]).await.expect("restore");
    assert_eq!(none.conflicts, 1);
    let overwrite = op(Op::Overwrite(pb::OverwritePayload { source_entity_id: id_of(&src.name), target_entity_id: id_of(&dst.name) }));
    assert_eq!(apply(&app, &prod, vec![overwrite]).await.expect("overwrite").applied, 1);
    assert_eq!(get(dst.name.clone()).await.content_hash, src.content_hash);

    // A hash the overwrite did not give is not this overwrite's to undo.
    let wrong = apply(&app, &prod, vec![restore(&dst.name, &dst.content_hash)]).await.expect("restore");
    assert_eq!(wrong.conflicts, 1);
    let back = apply(&app, &prod, vec![restore(&dst.name, &src.content_hash)]).await.expect("restore");
    assert_eq!((back.applied, back.results[0].entity_id), (1, id_of(&dst.name)));
    let now = get(dst.name.clone()).await;
    assert_eq!((now.payload_json.as_str(), now.content_hash.as_str()), (r#"{"cols":1}"#, dst.content_hash.as_str()));
    let again = apply(&app, &prod, vec![restore(&dst.name, &src.content_hash)]).await.expect("restore again");
    assert_eq!((again.applied, again.already_present), (0, 1), "a retry");

    // A restore without the hash is refused, naming the field.
    let bad = apply(&app, &prod, vec![restore(&dst.name, "")]).await.expect_err("no hash");
    assert_eq!((bad.code(), violated_fields(&bad)), (Code::InvalidArgument, vec!["operations[0].restore.overwritten_hash".to_string()]));
}

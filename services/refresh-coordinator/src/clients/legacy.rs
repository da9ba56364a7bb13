//! Replies recorded by coordinators before the journal (hex-encoded protobuf inside the
//! run document), decoded into the journal's types: the migration to the engine's tables
//! uses these once per stored run.

use ferry_proto::integration::v1 as ipb;
use ferry_proto::merge::v1 as mpb;
use ferry_proto::registry::v1 as rpb;
use prost::Message;
use serde_json::Value;

fn decode<M: Message + Default>(hex_text: &str) -> Result<M, String> {
    let bytes = hex::decode(hex_text).map_err(|e| format!("not hex: {e}"))?;
    M::decode(bytes.as_slice()).map_err(|e| format!("not a {}: {e}", std::any::type_name::<M>()))
}

fn json<T: serde::Serialize>(v: T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| e.to_string())
}

/// The journal result of refresh operation `op`, recorded as `hex`.
pub fn refresh_output(op: &str, hex_text: &str) -> Result<Value, String> {
    match op {
        "snapshot" => json(super::integration::snapshot(decode::<ipb::Snapshot>(hex_text)?)),
        "copy-registry" => json(super::registry::copy_result(decode::<rpb::CopyEnvironmentResponse>(hex_text)?)),
        "fences-lifted" => Ok(Value::Null),
        _ => json(super::integration::change_set(decode::<ipb::ChangeSet>(hex_text)?)),
    }
}

/// The journal result of promotion operation `op` (`plan-aN`, `apply-aN`, `merge-aN`,
/// `revert-K`), recorded as `hex`; markers (`revert-failed-K`) have none.
pub fn promotion_output(op: &str, hex_text: &str) -> Result<Value, String> {
    if op.starts_with("plan-a") {
        json(super::merge::plan_info(decode::<mpb::MergePlan>(hex_text)?))
    } else if op.starts_with("revert-failed-") || hex_text.is_empty() {
        Ok(Value::Null)
    } else {
        json(super::merge::job(decode::<mpb::Job>(hex_text)?))
    }
}

/// A promotion's project merge preview, recorded as `hex`.
pub fn promotion_preview(hex_text: &str) -> Result<Value, String> {
    if hex_text.is_empty() {
        return json(crate::domain::remote::ProjectMergePreview::default());
    }
    json(super::merge::preview(decode::<mpb::ProjectMergePlan>(hex_text)?))
}

/// A merge plan's counts, recorded as `hex`.
pub fn plan_counts(hex_text: &str) -> Result<Value, String> {
    json(super::merge::counts(decode::<mpb::MergePlanCounts>(hex_text)?))
}

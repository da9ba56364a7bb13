//! What `ferry integration reseal` did: counts per kind, and per key what it still seals.

use std::io::Write;

use ferry_proto::integration::v1 as pb;
use serde_json::json;

use crate::output;

/// What a reseal did: counts per kind, and per key what it still seals.
pub fn summary(out: &mut dyn Write, format: output::Format, r: &pb::ResealCredentialsResponse, dry_run: bool) -> std::io::Result<()> {
    let counts: Vec<String> = r.resealed.iter().map(|c| format!("{} {}", c.kind, c.count)).collect();
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for u in &r.keys_in_use {
        let each = format!("{} {}", u.kind, u.count);
        match keys.iter_mut().find(|(k, _)| *k == u.sealing_key_id) {
            Some((_, uses)) => uses.push(each),
            None => keys.push((u.sealing_key_id.clone(), vec![each])),
        }
    }
    let in_use: Vec<String> = keys.iter().map(|(k, uses)| format!("{k} ({})", uses.join(", "))).collect();
    let json = json!({
        "dry_run": dry_run,
        "sealing_key_id": r.sealing_key_id,
        "resealed": r.resealed.iter().map(|c| (c.kind.clone(), json!(c.count))).collect::<serde_json::Map<_, _>>(),
        "keys_in_use": r.keys_in_use.iter().map(|u| json!({ "sealing_key_id": u.sealing_key_id, "kind": u.kind, "count": u.count })).collect::<Vec<_>>(),
    });
    let label = if dry_run { "would reseal" } else { "resealed" };
    let pairs = [("newest key", r.sealing_key_id.clone()), (label, counts.join(", ")), ("keys in use", in_use.join("; "))];
    output::summary(out, format, &pairs, json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Format;

    #[test]
    fn reseal_prints_counts_and_keys_in_use() {
        let r = pb::ResealCredentialsResponse {
            sealing_key_id: "k2".into(),
            resealed: vec![pb::ResealedCount { kind: "integration_credentials".into(), count: 2 }],
            keys_in_use: vec![
                pb::SealingKeyUse { sealing_key_id: "k2".into(), kind: "integration_credentials".into(), count: 3 },
                pb::SealingKeyUse { sealing_key_id: "k2".into(), kind: "snapshots".into(), count: 1 },
            ],
        };
        let mut out = Vec::new();
        summary(&mut out, Format::Table, &r, true).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("would reseal") && text.contains("integration_credentials 2"), "{text}");
        assert!(text.contains("k2 (integration_credentials 3, snapshots 1)"), "{text}");
        let mut out = Vec::new();
        summary(&mut out, Format::Json, &r, false).expect("render");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["resealed"]["integration_credentials"], 2);
        assert_eq!(v["keys_in_use"][1]["kind"], "snapshots");
        assert_eq!(v["dry_run"], false);
    }
}

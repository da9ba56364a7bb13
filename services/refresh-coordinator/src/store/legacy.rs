//! Runs stored before the engine (the `refresh_runs` and `promotion_runs` tables, step
//! outputs as hex-encoded protobuf in the document) converted into the engine's: the run
//! document of its kind, its journal entries, its subjects and its abort request. Used once,
//! by the migration that creates the engine's tables; nothing is dropped or rewritten in
//! the old tables.

use serde_json::{Map, Value, json};

use crate::clients::legacy as decode;

/// One old run, converted.
pub struct Converted {
    pub body: Value,
    /// (step, op, request id, result).
    pub journal: Vec<(i32, String, String, Value)>,
    pub subjects: Vec<String>,
    pub abort_request: Option<Value>,
}

fn field(v: &Value, name: &str) -> Value {
    v.get(name).cloned().unwrap_or(Value::Null)
}

fn text(v: &Value, name: &str) -> String {
    v.get(name).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn outputs(step: &Value) -> Vec<(String, String)> {
    step.get("outputs")
        .and_then(Value::as_object)
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default()
}

/// The step fields every kind has, from an old step numbered `number`.
fn step(old: &Value, number: i32, undo_done: bool, detail: Value) -> Value {
    let mut s = Map::new();
    s.insert("number".into(), json!(number));
    for f in ["state", "attempts", "start_time", "end_time", "actor", "comment", "waiting_for", "confirmed", "log", "error"] {
        s.insert(f.into(), field(old, f));
    }
    for f in ["changes", "left_alone", "undo_changes"] {
        s.insert(f.into(), old.get(f).cloned().unwrap_or_else(|| json!([])));
    }
    if s.get("log").is_none_or(Value::is_null) {
        s.insert("log".into(), json!([]));
    }
    s.insert("undo_done".into(), json!(undo_done));
    s.insert("detail".into(), detail);
    Value::Object(s)
}

/// The run fields every kind has.
fn run(id: &str, old: &Value, steps: Vec<Value>, abort: Option<Value>, spec: Value) -> Value {
    json!({
        "id": id,
        "state": field(old, "state"),
        "steps": steps,
        "current_step": field(old, "current_step"),
        "error": field(old, "error"),
        "created_by": field(old, "created_by"),
        "abort": abort,
        "create_time": field(old, "create_time"),
        "start_time": field(old, "start_time"),
        "end_time": field(old, "end_time"),
        "interruptions": old.get("interruptions").cloned().unwrap_or_else(|| json!([])),
        "spec": spec,
    })
}

fn abort(reason: String, by: String, proceed_with_changed: bool) -> Value {
    json!({ "reason": reason, "by": by, "proceed_with_changed": proceed_with_changed })
}

/// A refresh run row: its document, and the abort asked while a driver held it (the
/// `abort_requested`, `abort_reason` and `aborted_by` columns).
pub fn refresh(id: &str, body: &str, abort_requested: bool, abort_reason: String, aborted_by: String) -> Result<Converted, String> {
    let old: Value = serde_json::from_str(body).map_err(|e| format!("refresh run {id}: {e}"))?;
    let mut journal = Vec::new();
    let mut steps = Vec::new();
    for (i, s) in old.get("steps").and_then(Value::as_array).cloned().unwrap_or_default().iter().enumerate() {
        let n = i as i32 + 1;
        let mut undone = false;
        for (op, hex) in outputs(s) {
            if op == "undone" {
                undone = true;
                continue;
            }
            let result = decode::refresh_output(&op, &hex).map_err(|e| format!("refresh run {id}, step {n}, {op}: {e}"))?;
            journal.push((n, op.clone(), format!("{id}-{n}-{op}"), result));
        }
        steps.push(step(s, n, undone, field(s, "plan")));
    }
    let run_abort = old
        .get("aborting")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .then(|| abort(text(&old, "abort_reason"), text(&old, "aborted_by"), false));
    let spec = json!({
        "source": field(&old, "source"),
        "destination": field(&old, "destination"),
        "options": field(&old, "options"),
        "plan_etag": field(&old, "plan_etag"),
        "snapshot": field(&old, "snapshot"),
    });
    let env = |f: &str| format!("environments/{}", text(&old, f));
    Ok(Converted {
        subjects: vec![env("source"), env("destination")],
        body: run(id, &old, steps, run_abort, spec),
        journal,
        abort_request: abort_requested.then(|| abort(abort_reason, aborted_by, false)),
    })
}

/// The highest round N among a merge step's `plan-aN`, `apply-aN`, `merge-aN` outputs.
fn last_round(ops: &[(String, String)]) -> usize {
    ops.iter()
        .filter_map(|(op, _)| ["plan-a", "apply-a", "merge-a"].iter().find_map(|p| op.strip_prefix(p)).and_then(|n| n.parse().ok()))
        .max()
        .unwrap_or(0)
}

/// A promotion run row: its document (the abort asked while a driver held it is in it,
/// with `abort_requested` beside).
pub fn promotion(id: &str, body: &str, abort_requested: bool) -> Result<Converted, String> {
    let old: Value = serde_json::from_str(body).map_err(|e| format!("promotion run {id}: {e}"))?;
    let mut journal = Vec::new();
    let mut steps = Vec::new();
    for (i, s) in old.get("steps").and_then(Value::as_array).cloned().unwrap_or_default().iter().enumerate() {
        let n = i as i32 + 1;
        let ops = outputs(s);
        let mut counts = Value::Null;
        for (op, hex) in &ops {
            if op == "counts" {
                counts = decode::plan_counts(hex).map_err(|e| format!("promotion run {id}, step {n}, counts: {e}"))?;
                continue;
            }
            let result = decode::promotion_output(op, hex).map_err(|e| format!("promotion run {id}, step {n}, {op}: {e}"))?;
            journal.push((n, op.clone(), format!("{id}-{n}-{op}"), result));
        }
        // Old ops were named by attempt; the engine names them by round (one more than
        // the rounds that failed): every round before the last failed, and so did the last
        // when the step is FAILED.
        let rounds = last_round(&ops);
        let failed = rounds.saturating_sub(usize::from(text(s, "state") != "Failed"));
        for r in 1..=failed {
            journal.push((n, format!("failed-a{r}"), format!("{id}-{n}-failed-a{r}"), Value::Null));
        }
        let detail = json!({
            "kind": field(s, "kind"),
            "source": field(s, "source"),
            "recipient": field(s, "recipient"),
            "merge_plan": field(s, "merge_plan"),
            "counts": counts,
            "job": field(s, "job"),
            "revert_job": field(s, "revert_job"),
        });
        steps.push(step(s, n, text(s, "state") == "Undone", detail));
    }
    let options = field(&old, "options");
    let pairs: Vec<Value> = options
        .get("group_pairs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| json!({ "source": p.get(0).cloned().unwrap_or(Value::Null), "recipient": p.get(1).cloned().unwrap_or(Value::Null) }))
        .collect();
    let mut options = options.as_object().cloned().unwrap_or_default();
    options.insert("group_pairs".into(), Value::Array(pairs));
    let proceed = old.get("proceed_with_changed").and_then(Value::as_bool).unwrap_or(false);
    let reason_by = || abort(text(&old, "abort_reason"), text(&old, "aborted_by"), proceed);
    let aborting = old.get("aborting").and_then(Value::as_bool).unwrap_or(false);
    let plan = decode::promotion_preview(&text(&old, "plan")).map_err(|e| format!("promotion run {id}, plan: {e}"))?;
    let spec = json!({ "source": field(&old, "source"), "target": field(&old, "target"), "options": options, "plan": plan });
    let project = |f: &str| {
        let p = field(&old, f);
        format!("environments/{}/projects/{}", text(&p, "env"), text(&p, "id"))
    };
    let target_env = format!("environments/{}", text(&field(&old, "target"), "env"));
    Ok(Converted {
        subjects: vec![project("source"), project("target"), target_env],
        body: run(id, &old, steps, aborting.then(reason_by), spec),
        journal,
        abort_request: (abort_requested && !aborting).then(reason_by),
    })
}

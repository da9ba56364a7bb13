//! Merge-engine plans (printed like `terraform plan`) and plan items; jobs are in
//! [`super::jobs`].

use std::fmt::Write as _;

use ferry_proto::merge::v1::{MergeOutcome, MergePlan, MergePlanCounts, MergePlanItem, MergePlanState, MergePlanType, MergeStrategy};
use serde_json::{Value, json};

use super::{label, ref_json, when, when_json};
use crate::output::Resource;
use crate::parse::{id_of, kind_label, ref_label, sharing_label};

pub fn plan_state_label(n: i32) -> String {
    label(n, MergePlanState::as_str_name, "MERGE_PLAN_STATE_")
}
pub fn strategy_label(n: i32) -> String {
    // UNSPECIFIED is treated as KEEP_RECIPIENT by the engine.
    if n == MergeStrategy::Unspecified as i32 {
        return "KEEP_RECIPIENT".to_owned();
    }
    label(n, MergeStrategy::as_str_name, "MERGE_STRATEGY_")
}
fn plan_type_label(n: i32) -> String {
    label(n, MergePlanType::as_str_name, "MERGE_PLAN_TYPE_")
}
fn outcome_label(n: i32) -> String {
    label(n, MergeOutcome::as_str_name, "MERGE_OUTCOME_")
}

fn counts_json(c: &MergePlanCounts) -> Value {
    json!({
        "creates": c.creates, "links": c.links, "skips": c.skips, "conflicts": c.conflicts,
        "missing_dependencies": c.missing_dependencies, "source_entries": c.source_entries,
    })
}

impl Resource for MergePlan {
    const HEADERS: &'static [&'static str] = &["ID", "STATE", "SOURCE", "RECIPIENT", "CREATE", "LINK", "SKIP", "CONFLICT", "MISSING"];
    fn row(&self) -> Vec<String> {
        let c = self.counts.unwrap_or_default();
        vec![
            id_of(&self.name).to_owned(),
            plan_state_label(self.state),
            self.source.clone(),
            self.recipient.clone(),
            c.creates.to_string(),
            c.links.to_string(),
            c.skips.to_string(),
            c.conflicts.to_string(),
            c.missing_dependencies.to_string(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![("plan", plan_text(self))]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "plan_type": plan_type_label(self.plan_type),
            "source": self.source,
            "recipient": self.recipient,
            "recipient_display_name": self.recipient_display_name,
            "strategy": strategy_label(self.strategy),
            "kinds": self.kinds.iter().map(|k| kind_label(*k)).collect::<Vec<_>>(),
            "keys": self.keys,
            "source_revision": self.source_revision,
            "recipient_revision": self.recipient_revision,
            "state": plan_state_label(self.state),
            "counts": self.counts.as_ref().map_or(Value::Null, counts_json),
            "job": self.job,
            "create_time": when_json(self.create_time.as_ref()),
            "expire_time": when_json(self.expire_time.as_ref()),
            "items_pruned": self.items_pruned,
            "created_by": self.created_by,
        })
    }
}

impl Resource for MergePlanItem {
    const HEADERS: &'static [&'static str] = &["OUTCOME", "KIND", "KEY", "SHARING", "MISSING"];
    fn row(&self) -> Vec<String> {
        vec![
            outcome_label(self.outcome),
            kind_label(self.kind),
            self.key.clone(),
            sharing_label(self.sharing),
            self.missing_reference.as_ref().map(ref_label).unwrap_or_default(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![("item", item_line(self))]
    }
    fn json(&self) -> Value {
        json!({
            "kind": kind_label(self.kind),
            "key": self.key,
            "outcome": outcome_label(self.outcome),
            "sharing": sharing_label(self.sharing),
            "source_entity": self.source_entity,
            "recipient_entity": self.recipient_entity,
            "source_content_hash": self.source_content_hash,
            "recipient_content_hash": self.recipient_content_hash,
            "missing_reference": self.missing_reference.as_ref().map_or(Value::Null, ref_json),
        })
    }
}

/// The symbol and verb of an outcome, like `terraform plan`'s `+`, `~`, `-`.
fn symbol(outcome: i32) -> (&'static str, &'static str) {
    match MergeOutcome::try_from(outcome) {
        Ok(MergeOutcome::Create) => ("+", "create"),
        Ok(MergeOutcome::Link) => ("~", "link"),
        Ok(MergeOutcome::Skip) => ("=", "skip"),
        Ok(MergeOutcome::Conflict) => ("!", "conflict"),
        Ok(MergeOutcome::MissingDependency) => ("?", "missing"),
        _ => ("*", "unknown"),
    }
}

/// One item: `+ create   SERVICE billing`, `? missing  TABLE orders -> LOOKUP countries`.
pub fn item_line(item: &MergePlanItem) -> String {
    let (sym, verb) = symbol(item.outcome);
    let mut line = format!("{sym} {verb:<8} {} {}", kind_label(item.kind), item.key);
    if let Some(r) = &item.missing_reference {
        let _ = write!(line, " -> {} {}", kind_label(r.kind), r.key);
    }
    line
}

/// The plan's header and one summary line per outcome with its count.
pub fn plan_text(plan: &MergePlan) -> String {
    let c = plan.counts.unwrap_or_default();
    let clone = plan.plan_type == MergePlanType::GroupClone as i32;
    let mut s = String::new();
    let what = if clone { "Clone plan" } else { "Merge plan" };
    let _ = writeln!(s, "{what} {} ({})", plan.name, plan_state_label(plan.state));
    let _ = writeln!(s, "  source:     {} (revision {})", plan.source, plan.source_revision);
    if clone {
        let _ = writeln!(s, "  recipient:  {} (new group)", plan.recipient);
    } else {
        let _ = writeln!(s, "  recipient:  {} (revision {})", plan.recipient, plan.recipient_revision);
    }
    let _ = writeln!(s, "  strategy:   {}", strategy_label(plan.strategy));
    if !plan.created_by.is_empty() {
        let _ = writeln!(s, "  created by: {}", plan.created_by);
    }
    if !plan.kinds.is_empty() || !plan.keys.is_empty() {
        let kinds = if plan.kinds.is_empty() {
            "all kinds".to_owned()
        } else {
            plan.kinds.iter().map(|k| kind_label(*k)).collect::<Vec<_>>().join(", ")
        };
        let keys = if plan.keys.is_empty() { "all keys".to_owned() } else { format!("{} keys", plan.keys.len()) };
        let _ = writeln!(s, "  selection:  {kinds}; {keys}");
    }
    let _ = writeln!(s, "  entries:    {} in the source", c.source_entries);
    let conflict_note = match MergeStrategy::try_from(plan.strategy) {
        Ok(MergeStrategy::TakeSource) => "the source's overwrite the recipient's",
        Ok(MergeStrategy::Fail) => "apply is refused while there are any",
        _ => "the recipient keeps its own",
    };
    let lines = [
        ("+", "create", c.creates, "duplicated entities copied in"),
        ("~", "link", c.links, "shared entities linked"),
        ("=", "skip", c.skips, "same key, same content"),
        ("!", "conflict", c.conflicts, conflict_note),
        ("?", "missing", c.missing_dependencies, "references that would dangle"),
    ];
    let _ = writeln!(s);
    for (sym, verb, n, note) in lines {
        let _ = writeln!(s, "  {sym} {verb:<8} {n:>8}  {note}");
    }
    s
}

/// The closing lines: the totals and what to do next.
pub fn plan_footer(plan: &MergePlan) -> String {
    let c = plan.counts.unwrap_or_default();
    let id = id_of(&plan.name);
    let mut s = format!(
        "Plan {}: {} to create, {} to link, {} unchanged, {} {}, {} missing {}.\n",
        plan.name,
        c.creates,
        c.links,
        c.skips,
        c.conflicts,
        if c.conflicts == 1 { "conflict" } else { "conflicts" },
        c.missing_dependencies,
        if c.missing_dependencies == 1 { "dependency" } else { "dependencies" },
    );
    match MergePlanState::try_from(plan.state) {
        Ok(MergePlanState::Ready) if plan.strategy == MergeStrategy::Fail as i32 && c.conflicts > 0 => {
            s.push_str("Apply will be refused: the strategy is FAIL and the plan has conflicts. Plan again with another --strategy.\n");
        }
        Ok(MergePlanState::Ready) if c.missing_dependencies > 0 => {
            let _ = writeln!(s, "To apply it anyway (references will dangle): ferry merge apply {id} --proceed-with-missing-dependencies");
        }
        Ok(MergePlanState::Ready) => {
            let _ = writeln!(s, "To apply it: ferry merge apply {id}");
        }
        Ok(MergePlanState::Stale) => s.push_str("The plan is stale: a group changed since it was made. Plan again.\n"),
        Ok(MergePlanState::Applying | MergePlanState::Applied) => {
            let _ = writeln!(s, "Applied by {}: ferry jobs watch {}", plan.job, id_of(&plan.job));
        }
        Ok(MergePlanState::Cancelled) => s.push_str("The plan was cancelled; it can no longer be applied.\n"),
        Ok(MergePlanState::Expired) => {
            let _ = writeln!(s, "The plan expired at {}; it can no longer be applied. Plan again.", when(plan.expire_time.as_ref()));
        }
        _ => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use ferry_proto::common::v1::{EntityKind, EntityRef, SharingMode};

    use super::*;

    fn item(kind: EntityKind, key: &str, outcome: MergeOutcome) -> MergePlanItem {
        MergePlanItem {
            kind: kind as i32,
            key: key.into(),
            outcome: outcome as i32,
            sharing: SharingMode::Duplicated as i32,
            ..Default::default()
        }
    }

    fn plan() -> MergePlan {
        MergePlan {
            name: "mergePlans/p1".into(),
            plan_type: MergePlanType::GroupMerge as i32,
            source: "environments/dev/groups/test".into(),
            recipient: "environments/dev/groups/prod".into(),
            strategy: MergeStrategy::KeepRecipient as i32,
            source_revision: 4,
            recipient_revision: 9,
            state: MergePlanState::Ready as i32,
            counts: Some(MergePlanCounts { creates: 1, links: 1, skips: 1, conflicts: 1, missing_dependencies: 1, source_entries: 4 }),
            ..Default::default()
        }
    }

    #[test]
    fn a_plan_prints_like_terraform_plan() {
        let mut missing = item(EntityKind::Table, "orders", MergeOutcome::MissingDependency);
        missing.missing_reference = Some(EntityRef { kind: EntityKind::Lookup as i32, key: "countries".into() });
        let items = [
            item(EntityKind::Service, "billing", MergeOutcome::Create),
            item(EntityKind::Lookup, "status", MergeOutcome::Link),
            item(EntityKind::Role, "reader", MergeOutcome::Skip),
            item(EntityKind::Map, "regions", MergeOutcome::Conflict),
            missing,
        ];
        let mut text = plan_text(&plan());
        text.push('\n');
        for i in &items {
            text.push_str(&item_line(i));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&plan_footer(&plan()));
        let expected = "\
Merge plan mergePlans/p1 (READY)
  source:     environments/dev/groups/test (revision 4)
  recipient:  environments/dev/groups/prod (revision 9)
  strategy:   KEEP_RECIPIENT
  entries:    4 in the source

  + create          1  duplicated entities copied in
  ~ link            1  shared entities linked
  = skip            1  same key, same content
  ! conflict        1  the recipient keeps its own
  ? missing         1  references that would dangle

+ create   SERVICE billing
~ link     LOOKUP status
= skip     ROLE reader
! conflict MAP regions
? missing  TABLE orders -> LOOKUP countries

Plan mergePlans/p1: 1 to create, 1 to link, 1 unchanged, 1 conflict, 1 missing dependency.
To apply it anyway (references will dangle): ferry merge apply p1 --proceed-with-missing-dependencies
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_clone_plan_names_the_new_group_and_stale_plans_say_so() {
        let mut p = plan();
        p.plan_type = MergePlanType::GroupClone as i32;
        p.state = MergePlanState::Stale as i32;
        p.kinds = vec![EntityKind::Lookup as i32];
        assert!(plan_text(&p).contains("  recipient:  environments/dev/groups/prod (new group)\n"));
        assert!(plan_text(&p).contains("  selection:  LOOKUP; all keys\n"));
        assert!(!plan_text(&p).contains("created by"), "an old plan's empty creator is left out");
        p.created_by = "ana@example.com".into();
        assert!(plan_text(&p).contains("  strategy:   KEEP_RECIPIENT\n  created by: ana@example.com\n"));
        assert_eq!(p.json()["created_by"], "ana@example.com");
        assert!(plan_footer(&p).ends_with("The plan is stale: a group changed since it was made. Plan again.\n"));
        p.state = MergePlanState::Ready as i32;
        p.counts = Some(MergePlanCounts::default());
        assert!(plan_footer(&p).ends_with("To apply it: ferry merge apply p1\n"));
    }

    #[test]
    fn unknown_strategy_prints_as_keep_recipient() {
        assert_eq!(strategy_label(0), "KEEP_RECIPIENT");
    }
}

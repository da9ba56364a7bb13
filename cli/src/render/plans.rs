//! Plans the refresh coordinator shows before a run: a refresh plan step by step, and a
//! promotion plan (the group merges, then the project's configuration).

use std::fmt::Write as _;

use ferry_proto::merge::v1::ProjectMergePlan;
use ferry_proto::refresh::v1::{CopyCounts, PlannedStep, RefreshMode, RefreshPlan};
use serde_json::{Value, json};

use super::checklist::{mode_label, title};
use super::when_json;
use crate::parse::id_of;

fn names_line(label: &str, names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| format!("{label}: {}", names.join(", ")))
}

fn copy_lines(c: &CopyCounts) -> Vec<String> {
    vec![
        format!(
            "copies {} groups, {} entities, {} projects, {} integrations, {} mappings",
            c.source_groups, c.source_entities, c.source_projects, c.source_integrations, c.source_mappings
        ),
        format!(
            "replaces {} groups, {} entities, {} projects, {} integrations, {} mappings",
            c.replaced_groups, c.replaced_entities, c.replaced_projects, c.replaced_integrations, c.replaced_mappings
        ),
    ]
}

/// What one planned step will change, as indented lines.
fn planned_step_lines(step: &PlannedStep) -> Vec<String> {
    let mut lines = step.summary.clone();
    lines.extend(names_line("integrations", &step.integrations));
    lines.extend(names_line("mappings", &step.mappings));
    lines.extend(names_line("provisioned mappings", &step.provisioned_mappings));
    lines.extend(names_line("jobs", &step.sync_jobs));
    if let Some(c) = &step.copy {
        lines.extend(copy_lines(c));
    }
    lines
}

/// The refresh plan: its nine steps, each with what it will change, and how to start it.
pub fn refresh_plan_text(plan: &RefreshPlan) -> String {
    let o = plan.options.clone().unwrap_or_default();
    let mut s = format!("Refresh plan: {} -> {}  (mode {}", id_of(&plan.source), id_of(&plan.destination), mode_label(o.mode));
    if o.suspend_credentials_instead {
        s.push_str(", suspend credentials");
    }
    if o.require_approval {
        s.push_str(", approval required");
    }
    s.push_str(")\n\n");
    for step in &plan.steps {
        let title = title(&[&step.title], step.number);
        let gate = if step.requires_confirmation { "  (waits for confirmation)" } else { "" };
        let _ = writeln!(s, "{}. {title}{gate}", step.number);
        for line in planned_step_lines(step) {
            let _ = writeln!(s, "     {line}");
        }
    }
    let mut flags = String::new();
    if o.mode == RefreshMode::External as i32 {
        flags.push_str(" --external");
    }
    if o.suspend_credentials_instead {
        flags.push_str(" --suspend-credentials");
    }
    if o.require_approval {
        flags.push_str(" --require-approval");
    }
    let _ = write!(
        s,
        "\netag: {}\nNothing changed. To run it: ferry refresh start {} {}{flags}\n",
        plan.etag,
        id_of(&plan.source),
        id_of(&plan.destination)
    );
    s
}

pub(super) fn planned_step_json(step: &PlannedStep) -> Value {
    json!({
        "number": step.number,
        "title": step.title,
        "summary": step.summary,
        "integrations": step.integrations,
        "mappings": step.mappings,
        "provisioned_mappings": step.provisioned_mappings,
        "sync_jobs": step.sync_jobs,
        "copy": step.copy.as_ref().map(|c| json!({
            "source_groups": c.source_groups, "source_entities": c.source_entities, "source_projects": c.source_projects,
            "source_integrations": c.source_integrations, "source_mappings": c.source_mappings,
            "replaced_groups": c.replaced_groups, "replaced_entities": c.replaced_entities,
            "replaced_projects": c.replaced_projects, "replaced_integrations": c.replaced_integrations,
            "replaced_mappings": c.replaced_mappings,
        })),
        "requires_confirmation": step.requires_confirmation,
    })
}

pub fn refresh_plan_json(plan: &RefreshPlan) -> Value {
    let o = plan.options.clone().unwrap_or_default();
    json!({
        "source": plan.source,
        "destination": plan.destination,
        "options": {
            "mode": mode_label(o.mode),
            "suspend_credentials_instead": o.suspend_credentials_instead,
            "require_approval": o.require_approval,
        },
        "steps": plan.steps.iter().map(planned_step_json).collect::<Vec<_>>(),
        "etag": plan.etag,
        "plan_time": when_json(plan.plan_time.as_ref()),
    })
}

/// The promotion plan: the group merges with their counts, the project merge preview.
pub fn promotion_plan_text(source: &str, target: &str, pm: Option<&ProjectMergePlan>) -> String {
    let mut s = format!("Promotion plan: {} -> {}\n\n", id_of(source), id_of(target));
    let pm = pm.cloned().unwrap_or_default();
    let _ = writeln!(s, "1. Plan");
    let mut n = 2;
    for g in &pm.group_merges {
        let pair = g.pair.clone().unwrap_or_default();
        let c = g.counts.unwrap_or_default();
        let _ = writeln!(s, "{n}. Merge group {} into {}  ({})", id_of(&pair.source), id_of(&pair.recipient), id_of(&g.merge_plan));
        let _ = writeln!(
            s,
            "     {} creates, {} links, {} skips, {} conflicts, {} missing dependencies",
            c.creates, c.links, c.skips, c.conflicts, c.missing_dependencies
        );
        n += 1;
    }
    let _ = writeln!(s, "{n}. Merge project {} into {}", id_of(source), id_of(target));
    let _ = writeln!(
        s,
        "     config items: {} create, {} replace, {} unchanged; {} missing references",
        pm.config_items_create, pm.config_items_replace, pm.config_items_unchanged, pm.missing_reference_count
    );
    s
}

pub fn promotion_plan_json(source: &str, target: &str, pm: Option<&ProjectMergePlan>) -> Value {
    let pm = pm.cloned().unwrap_or_default();
    json!({
        "source_project": source,
        "target_project": target,
        "group_merges": pm.group_merges.iter().map(|g| {
            let pair = g.pair.clone().unwrap_or_default();
            let c = g.counts.unwrap_or_default();
            json!({
                "source": pair.source, "recipient": pair.recipient, "merge_plan": g.merge_plan,
                "counts": {"creates": c.creates, "links": c.links, "skips": c.skips, "conflicts": c.conflicts,
                           "missing_dependencies": c.missing_dependencies},
            })
        }).collect::<Vec<_>>(),
        "config_items_create": pm.config_items_create,
        "config_items_replace": pm.config_items_replace,
        "config_items_unchanged": pm.config_items_unchanged,
        "missing_reference_count": pm.missing_reference_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::refresh::v1::RefreshStepKind;

    #[test]
    fn the_plan_lists_what_each_step_changes() {
        let plan = RefreshPlan {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            options: Some(ferry_proto::refresh::v1::RefreshOptions {
                mode: RefreshMode::External as i32,
                suspend_credentials_instead: false,
                require_approval: true,
                profile: None,
                lease_drain: 0,
            }),
            steps: vec![
                PlannedStep {
                    number: 2,
                    kind: RefreshStepKind::DeactivateSourceIntegrations as i32,
                    title: "Deactivate source integrations".into(),
                    integrations: vec!["environments/prod/integrations/rally".into()],
                    ..Default::default()
                },
                PlannedStep {
                    number: 5,
                    kind: RefreshStepKind::Copy as i32,
                    title: "Copy".into(),
                    copy: Some(CopyCounts { source_groups: 3, replaced_groups: 2, ..Default::default() }),
                    requires_confirmation: true,
                    ..Default::default()
                },
            ],
            etag: "e1".into(),
            ..Default::default()
        };
        let text = refresh_plan_text(&plan);
        assert!(text.starts_with("Refresh plan: prod -> sandbox  (mode EXTERNAL, approval required)"), "{text}");
        assert!(text.contains("2. Deactivate source integrations\n     integrations: environments/prod/integrations/rally\n"), "{text}");
        assert!(text.contains("5. Copy  (waits for confirmation)\n     copies 3 groups"), "{text}");
        assert!(text.contains("replaces 2 groups"), "{text}");
        assert!(text.ends_with("ferry refresh start prod sandbox --external --require-approval\n"), "{text}");
    }
}

//! The refresh run's report: the checklist as a Markdown document, the audit record that replaces
//! the article's "copy the details into a word document".

use std::fmt::Write;

use ferry_kit::audit::Event;

use crate::domain::{Mode, RefreshRun, Run, RunState, Step, StepState};

pub(crate) fn time(micros: Option<i64>) -> String {
    match micros {
        Some(m) => {
            let secs = m.div_euclid(1_000_000);
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, mo, d) = civil(days);
            format!("{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, (rem / 60) % 60, rem % 60)
        }
        None => "-".into(),
    }
}

/// Days since 1970-01-01 as (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn state(s: StepState) -> &'static str {
    match s {
        StepState::Pending => "PENDING",
        StepState::Running => "RUNNING",
        StepState::WaitingForConfirmation => "WAITING FOR CONFIRMATION",
        StepState::Succeeded => "SUCCEEDED",
        StepState::Failed => "FAILED",
        StepState::Undone => "UNDONE",
        StepState::Skipped => "SKIPPED",
    }
}

pub(crate) fn run_state(s: RunState) -> &'static str {
    match s {
        RunState::Pending => "PENDING",
        RunState::Running => "RUNNING",
        RunState::Waiting => "WAITING",
        RunState::Succeeded => "SUCCEEDED",
        RunState::Failed => "FAILED",
        RunState::Aborting => "ABORTING",
        RunState::Aborted => "ABORTED",
    }
}

pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn markdown(run: &RefreshRun, audit: &[Event]) -> String {
    let name = format!("refreshRuns/{}", run.id);
    let mut md = String::new();
    let _ = writeln!(md, "# Refresh {} → {}\n", run.spec.source, run.spec.destination);
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| Run | `{name}` |");
    let _ = writeln!(md, "| State | {} |", run_state(run.state));
    let mode = match run.spec.options.mode {
        Mode::Managed => "MANAGED (Ferry copies)",
        Mode::External => "EXTERNAL (outside refresh, confirmed by an operator)",
    };
    let _ = writeln!(md, "| Mode | {mode} |");
    let source_action = if run.spec.options.suspend_credentials_instead { "suspend credentials" } else { "deactivate" };
    let _ = writeln!(md, "| Source integrations | {source_action} |");
    let _ = writeln!(md, "| Approval required | {} |", if run.spec.options.require_approval { "yes" } else { "no" });
    let _ = writeln!(md, "| Started by | {} |", cell(&run.created_by));
    let _ = writeln!(md, "| Created | {} |", time(Some(run.create_time)));
    let _ = writeln!(md, "| Started | {} |", time(run.start_time));
    let _ = writeln!(md, "| Ended | {} |", time(run.end_time));
    let _ = writeln!(md, "| Plan etag | `{}` |", run.spec.plan_etag);
    if !run.spec.snapshot.is_empty() {
        let _ = writeln!(md, "| Destination snapshot | `{}` |", run.spec.snapshot);
    }
    run_rows(&mut md, run);
    md.push('\n');
    let sections = [(1, "Pre-refresh"), (5, "Refresh"), (6, "Post-refresh")];
    for step in &run.steps {
        let kind = step.detail.kind;
        let n = kind.number();
        if let Some((_, title)) = sections.iter().find(|(at, _)| *at == n) {
            let _ = writeln!(md, "## {title}\n");
        }
        let counts = step.detail.copy.as_ref().map(|c| {
            format!(
                "Counts: source {} groups, {} entity memberships, {} projects, {} integrations, {} mappings; replaced {} groups, {} entity memberships, {} projects, {} integrations, {} mappings",
                c.source_groups,
                c.source_entities,
                c.source_projects,
                c.source_integrations,
                c.source_mappings,
                c.replaced_groups,
                c.replaced_entities,
                c.replaced_projects,
                c.replaced_integrations,
                c.replaced_mappings
            )
        });
        step_section(&mut md, step, kind.title(), step.detail.summary.iter().cloned().chain(counts));
    }
    audit_section(&mut md, audit);
    md
}

/// Who did what to the run, from the coordinator's audit log: every call on it (refused
/// ones too), then how often the driver wrote it and for whom.
pub(crate) fn audit_section(md: &mut String, events: &[Event]) {
    let _ = writeln!(md, "## Who did what (audit log)\n");
    let (calls, driver): (Vec<&Event>, Vec<&Event>) = events.iter().partition(|e| e.method.starts_with('/'));
    if calls.is_empty() {
        let _ = writeln!(md, "No call on this run is in the audit log.");
    } else {
        let _ = writeln!(md, "| Event | Time | Who | Authenticated by | Call | Step | Outcome |\n|---|---|---|---|---|---|---|");
        for e in calls {
            let who = if e.on_behalf_of.is_empty() { e.subject.clone() } else { format!("{} for {}", e.subject, e.on_behalf_of) };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                e.sequence,
                time(Some(e.time)),
                cell(&who),
                e.credential,
                e.method.rsplit('/').next().unwrap_or_default(),
                if e.step.is_empty() { "-" } else { &e.step },
                e.outcome
            );
        }
    }
    if let (Some(first), Some(last)) = (driver.first(), driver.last()) {
        let starter = if first.on_behalf_of.is_empty() { "nobody (a schedule)" } else { &first.on_behalf_of };
        let _ = writeln!(
            md,
            "\nThe coordinator wrote the run {} times on behalf of {} (events {}–{}).",
            driver.len(),
            cell(starter),
            first.sequence,
            last.sequence
        );
    }
}

/// The rows every run's header has after its own: abort, error, interruptions.
pub(crate) fn run_rows<S, D>(md: &mut String, run: &Run<S, D>) {
    if let Some(abort) = &run.abort {
        let _ = writeln!(md, "| Aborted by | {} |", cell(&abort.by));
        let _ = writeln!(md, "| Abort reason | {} |", cell(&abort.reason));
    }
    if let Some(e) = &run.error {
        let _ = writeln!(md, "| Error | code {}: {} |", e.code, cell(&e.message));
    }
    for i in &run.interruptions {
        let at = if i.step == 0 { "between steps".to_owned() } else { format!("during step {}", i.step) };
        let _ = writeln!(
            md,
            "| Interrupted | {at}: `{}` stopped (last heard from {}); resumed {} by `{}` |",
            cell(&i.holder),
            time((i.last_heard > 0).then_some(i.last_heard)),
            time(Some(i.resumed_at)),
            cell(&i.resumed_by)
        );
    }
}

/// One step's section: title and state, actor and times, what was planned, what it
/// changed, left alone and undid, its log and error.
pub(crate) fn step_section<D>(md: &mut String, step: &Step<D>, title: &str, planned: impl Iterator<Item = String>) {
    let mark = if step.state == StepState::Succeeded { "x" } else { " " };
    let _ = writeln!(md, "### [{mark}] {}. {title} — {}\n", step.number, state(step.state));
    let _ = writeln!(
        md,
        "- Actor: {}\n- Started: {}\n- Ended: {}\n- Attempts: {}",
        if step.actor.is_empty() { "-" } else { &step.actor },
        time(step.start_time),
        time(step.end_time),
        step.attempts
    );
    if !step.comment.is_empty() {
        let _ = writeln!(md, "- Comment: {}", cell(&step.comment));
    }
    if !step.waiting_for.is_empty() {
        let _ = writeln!(md, "- Waiting for: {}", step.waiting_for);
    }
    let _ = writeln!(md, "\nPlanned:\n");
    for line in planned {
        let _ = writeln!(md, "- {line}");
    }
    if !step.changes.is_empty() {
        let _ = writeln!(md, "\nChanged:\n\n| Resource | Field | Before | After |\n|---|---|---|---|");
        for c in &step.changes {
            let _ = writeln!(md, "| `{}` | {} | {} | {} |", c.resource, c.field, cell(&c.before), cell(&c.after));
        }
    }
    if !step.left_alone.is_empty() {
        let _ = writeln!(md, "\nLeft alone:\n\n| Resource | Why |\n|---|---|");
        for l in &step.left_alone {
            let _ = writeln!(md, "| `{}` | {} |", l.resource, cell(&l.reason));
        }
    }
    if !step.undo_changes.is_empty() {
        let _ = writeln!(md, "\nUndone by the abort:\n\n| Resource | Field | Before | After |\n|---|---|---|---|");
        for c in &step.undo_changes {
            let _ = writeln!(md, "| `{}` | {} | {} | {} |", c.resource, c.field, cell(&c.before), cell(&c.after));
        }
    }
    if !step.log.is_empty() {
        let _ = writeln!(md, "\nLog:\n");
        for l in &step.log {
            let _ = writeln!(md, "- {}", cell(l));
        }
    }
    if let Some(e) = &step.error {
        let _ = writeln!(md, "\n**Error** (code {}): {}", e.code, cell(&e.message));
        for (t, s, d) in &e.violations {
            let _ = writeln!(md, "- {t} `{s}`: {}", cell(d));
        }
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_times() {
        assert_eq!(super::time(Some(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::time(Some(1_700_000_000_000_000)), "2023-11-14 22:13:20 UTC");
    }
}

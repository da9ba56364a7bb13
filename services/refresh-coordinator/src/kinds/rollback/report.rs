//! A rollback run's report, as Markdown.

use super::Rollback;
use crate::domain::RollbackRun;
use crate::engine::name_of;

/// The rollback's report, as Markdown.
pub fn markdown(run: &RollbackRun, audit: &[ferry_kit::audit::Event]) -> String {
    use std::fmt::Write;

    use crate::kinds::refresh::report::{audit_section, cell, run_rows, run_state, step_section, time};
    let p = &run.spec.plan;
    let mut md = String::new();
    let _ = writeln!(md, "# Rollback of refreshRuns/{} ({})\n", p.refresh_run, p.destination);
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| Run | `{}` |", name_of::<Rollback>(&run.id));
    let _ = writeln!(md, "| State | {} |", run_state(run.state));
    let _ = writeln!(md, "| Destination | `{}` (the source, `{}`, is not touched) |", p.destination, p.source);
    let _ = writeln!(md, "| Restores | `{}` and `{}` |", p.restore_point, p.snapshot);
    if !run.spec.kept_restore_point.is_empty() {
        let _ = writeln!(md, "| Kept before | `{}` and `{}` |", run.spec.kept_restore_point, run.spec.kept_snapshot);
    }
    let _ = writeln!(md, "| Approval required | {} |", if p.require_approval { "yes" } else { "no" });
    let _ = writeln!(md, "| Started by | {} |", cell(&run.created_by));
    let _ = writeln!(md, "| Created | {} |", time(Some(run.create_time)));
    let _ = writeln!(md, "| Started | {} |", time(run.start_time));
    let _ = writeln!(md, "| Ended | {} |", time(run.end_time));
    let _ = writeln!(md, "| Plan etag | `{}` |", p.etag);
    run_rows(&mut md, run);
    md.push('\n');
    for step in &run.steps {
        step_section(&mut md, step, step.detail.kind.title(), step.detail.summary.iter().cloned());
    }
    audit_section(&mut md, audit);
    md
}

//! Runs of every kind as a checklist: one line per step with a state mark and the title
//! the server gave, a header, the confirm hint, and the drawer that renders a run's
//! checklist live while it is watched.

use std::fmt::Write as _;

use ferry_proto::common::v1::{ErrorStatus, Progress};
use ferry_proto::refresh::v1::{PromotionRun, PromotionStep, RefreshMode, RefreshRun, RefreshStep, RunState, StepState};

use super::jobs::done_of_total;
use super::label;
use crate::parse::id_of;

pub fn run_state_label(n: i32) -> String {
    label(n, RunState::as_str_name, "RUN_STATE_")
}
pub fn step_state_label(n: i32) -> String {
    label(n, StepState::as_str_name, "STEP_STATE_")
}
pub fn mode_label(n: i32) -> String {
    // UNSPECIFIED is treated as MANAGED by the coordinator.
    if n == RefreshMode::Unspecified as i32 {
        return "MANAGED".to_owned();
    }
    label(n, RefreshMode::as_str_name, "REFRESH_MODE_")
}

/// True once a run can change no more on its own (SUCCEEDED, FAILED, ABORTED).
pub fn run_is_terminal(state: i32) -> bool {
    [RunState::Succeeded, RunState::Failed, RunState::Aborted].iter().any(|s| *s as i32 == state)
}

/// The checklist mark of a step state.
pub fn mark(state: i32) -> &'static str {
    match StepState::try_from(state) {
        Ok(StepState::Running) => "[>]",
        Ok(StepState::WaitingForConfirmation) => "[?]",
        Ok(StepState::Succeeded) => "[x]",
        Ok(StepState::Failed) => "[!]",
        Ok(StepState::Undone) => "[~]",
        Ok(StepState::Skipped) => "[-]",
        _ => "[ ]",
    }
}

/// A step's title as the server gave it ("Step N" from a server too old to say).
pub(super) fn title(given: &[&str], number: i32) -> String {
    given.iter().find(|t| !t.is_empty()).map_or_else(|| format!("Step {number}"), |t| (*t).to_owned())
}

/// `CODE: message`.
pub(super) fn error_line(e: &ErrorStatus) -> String {
    format!("{}: {}", crate::error::code_name(tonic::Code::from_i32(e.code)), e.message)
}

/// The one-line summary of a step: its error, what it waits for, its progress, or what
/// it changed (every log line that changed something; else its last line; else what it
/// will do).
pub(super) fn summary(
    state: i32,
    error: Option<&ErrorStatus>,
    waiting_for: &str,
    progress: Option<&Progress>,
    log: &[String],
    planned: &[String],
) -> String {
    match StepState::try_from(state) {
        Ok(StepState::Failed) => {
            if let Some(e) = error {
                return error_line(e);
            }
        }
        Ok(StepState::WaitingForConfirmation) => {
            return format!("waiting for {}", if waiting_for.is_empty() { "confirmation" } else { waiting_for });
        }
        Ok(StepState::Running) => {
            if let Some(p) = progress.filter(|p| p.total > 0 || p.done > 0 || !p.phase.is_empty()) {
                let mut s = done_of_total(p);
                if !p.phase.is_empty() {
                    let _ = write!(s, " {}", p.phase);
                }
                return s;
            }
        }
        _ => {}
    }
    let changed: Vec<&str> = log.iter().map(String::as_str).filter(|l| !l.ends_with("nothing to change")).collect();
    if !changed.is_empty() {
        return changed.join("; ");
    }
    log.last().or_else(|| planned.first()).cloned().unwrap_or_default()
}

/// One checklist line: mark, number, title and (when there is one) the summary.
pub(super) fn checklist_line(state: i32, number: i32, title: &str, summary: &str) -> String {
    let mut s = format!("{} {number}. {title}", mark(state));
    if !summary.is_empty() {
        let _ = write!(s, "  {}", summary.replace(['\n', '\r'], " "));
    }
    s
}

/// A refresh step as one checklist line: `[x] 2. Deactivate source integrations  …`.
pub fn refresh_step_line(step: &RefreshStep) -> String {
    let title = title(&[&step.title, step.plan.as_ref().map_or("", |p| p.title.as_str())], step.number);
    let planned = step.plan.as_ref().map(|p| p.summary.as_slice()).unwrap_or_default();
    let summary = summary(step.state, step.error.as_ref(), &step.waiting_for, step.progress.as_ref(), &step.log, planned);
    checklist_line(step.state, step.number, &title, &summary)
}

/// A promotion step as one checklist line.
pub fn promotion_step_line(step: &PromotionStep) -> String {
    let summary = summary(step.state, step.error.as_ref(), &step.waiting_for, step.progress.as_ref(), &step.log, &[]);
    checklist_line(step.state, step.number, &title(&[&step.title], step.number), &summary)
}

/// The header of a refresh run's checklist: `refreshRuns/r1  prod -> sandbox  RUNNING`.
pub fn refresh_header(run: &RefreshRun) -> String {
    format!("{}  {} -> {}  {}", run.name, id_of(&run.source), id_of(&run.destination), run_state_label(run.state))
}

/// The header of a promotion run's checklist.
pub fn promotion_header(run: &PromotionRun) -> String {
    format!("{}  {} -> {}  {}", run.name, id_of(&run.source_project), id_of(&run.target_project), run_state_label(run.state))
}

/// The command that confirms the step a run waits on, when it waits.
pub fn confirm_hint(what: &str, name: &str, state: i32, waiting_step: Option<i32>) -> Option<String> {
    if state != RunState::Waiting as i32 {
        return None;
    }
    let step = waiting_step.map(|n| format!(" --step {n}")).unwrap_or_default();
    Some(format!("waiting for confirmation: ferry {what} confirm {}{step}", id_of(name)))
}

/// What a watched run looks like in one snapshot, for the [`Checklist`] drawer.
pub struct Frame {
    pub header: String,
    pub run_state: i32,
    /// (state, line) per step.
    pub steps: Vec<(i32, String)>,
    /// The confirm command, while the run waits.
    pub footer: Option<String>,
}

impl Frame {
    pub fn refresh(run: &RefreshRun) -> Self {
        let waiting = run.steps.iter().find(|s| s.state == StepState::WaitingForConfirmation as i32).map(|s| s.number);
        Self {
            header: refresh_header(run),
            run_state: run.state,
            steps: run.steps.iter().map(|s| (s.state, refresh_step_line(s))).collect(),
            footer: confirm_hint("refresh", &run.name, run.state, waiting),
        }
    }
    pub fn promotion(run: &PromotionRun) -> Self {
        let waiting = run.steps.iter().find(|s| s.state == StepState::WaitingForConfirmation as i32).map(|s| s.number);
        Self {
            header: promotion_header(run),
            run_state: run.state,
            steps: run.steps.iter().map(|s| (s.state, promotion_step_line(s))).collect(),
            footer: confirm_hint("promote", &run.name, run.state, waiting),
        }
    }
}

/// Decides what each run snapshot writes: on a terminal the whole checklist, redrawn in
/// place over the previous one (ANSI cursor-up); otherwise one line per transition (the
/// header when the run's state changes, a step line when its step's state changes, the
/// confirm command when the run starts waiting).
pub struct Checklist {
    tty: bool,
    drawn: usize,
    run_state: Option<i32>,
    steps: Vec<i32>,
    footer: Option<String>,
}

impl Checklist {
    pub fn new(tty: bool) -> Self {
        Self { tty, drawn: 0, run_state: None, steps: Vec::new(), footer: None }
    }

    /// The text to write for this snapshot, if any.
    pub fn frame(&mut self, f: &Frame) -> Option<String> {
        let mut s = String::new();
        if self.tty {
            if self.drawn > 0 {
                let _ = write!(s, "\x1b[{}A", self.drawn);
            }
            let lines: Vec<&str> =
                std::iter::once(f.header.as_str()).chain(f.steps.iter().map(|(_, l)| l.as_str())).chain(f.footer.as_deref()).collect();
            for line in &lines {
                let _ = writeln!(s, "\r{line}\x1b[K");
            }
            // Clear what a longer previous block (a footer now gone) left below.
            s.push_str("\x1b[J");
            self.drawn = lines.len();
            return Some(s);
        }
        if self.run_state != Some(f.run_state) {
            let _ = writeln!(s, "{}", f.header);
            self.run_state = Some(f.run_state);
        }
        for (i, (state, line)) in f.steps.iter().enumerate() {
            let before = self.steps.get(i).copied().unwrap_or(StepState::Pending as i32);
            if before != *state {
                let _ = writeln!(s, "{line}");
            }
        }
        self.steps = f.steps.iter().map(|(state, _)| *state).collect();
        if f.footer != self.footer {
            if let Some(footer) = &f.footer {
                let _ = writeln!(s, "{footer}");
            }
            self.footer.clone_from(&f.footer);
        }
        (!s.is_empty()).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::refresh::v1::{PlannedStep, PromotionStepKind, RefreshStepKind};

    /// Titles as the server gives them.
    const TITLES: [&str; 9] = [
        "Check",
        "Deactivate source integrations",
        "Pause jobs",
        "Snapshot destination",
        "Copy",
        "Disable source mappings",
        "Restore destination mappings",
        "Reactivate source integrations",
        "Resume jobs",
    ];

    fn step(number: i32, kind: RefreshStepKind, state: StepState) -> RefreshStep {
        let title = TITLES[number as usize - 1].into();
        RefreshStep { number, kind: kind as i32, state: state as i32, title, ..Default::default() }
    }

    fn run(state: RunState, states: [StepState; 9]) -> RefreshRun {
        let kinds = [
            RefreshStepKind::Check,
            RefreshStepKind::DeactivateSourceIntegrations,
            RefreshStepKind::PauseJobs,
            RefreshStepKind::SnapshotDestination,
            RefreshStepKind::Copy,
            RefreshStepKind::DisableSourceMappings,
            RefreshStepKind::RestoreDestinationMappings,
            RefreshStepKind::ReactivateSourceIntegrations,
            RefreshStepKind::ResumeJobs,
        ];
        let steps = (1..).zip(kinds).zip(states).map(|((n, k), st)| step(n, k, st)).collect();
        RefreshRun {
            name: "refreshRuns/r1".into(),
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            state: state as i32,
            steps,
            ..Default::default()
        }
    }

    #[test]
    fn every_state_has_its_mark() {
        assert_eq!(mark(StepState::Pending as i32), "[ ]");
        assert_eq!(mark(StepState::Running as i32), "[>]");
        assert_eq!(mark(StepState::WaitingForConfirmation as i32), "[?]");
        assert_eq!(mark(StepState::Succeeded as i32), "[x]");
        assert_eq!(mark(StepState::Failed as i32), "[!]");
        assert_eq!(mark(StepState::Undone as i32), "[~]");
        assert_eq!(mark(StepState::Skipped as i32), "[-]");
    }

    #[test]
    fn the_checklist_has_a_line_per_step_with_mark_and_summary() {
        use StepState::{Failed, Pending, Skipped, Succeeded, Undone};
        let mut r = run(RunState::Failed, [Succeeded, Undone, Skipped, Succeeded, Failed, Pending, Pending, Pending, Pending]);
        r.steps[0].log = vec!["checks passed".into(), "approved by ann".into()];
        r.steps[1].title = String::new();
        r.steps[1].plan = Some(PlannedStep { title: "Deactivate prod integrations".into(), ..Default::default() });
        r.steps[2].title = String::new();
        r.steps[4].error = Some(ErrorStatus { code: tonic::Code::Unavailable as i32, message: "registry down".into(), violations: vec![] });
        r.steps[5].plan = Some(PlannedStep { summary: vec!["disables 2 mappings".into()], ..Default::default() });
        let f = Frame::refresh(&r);
        assert_eq!(f.header, "refreshRuns/r1  prod -> sandbox  FAILED");
        let lines: Vec<&str> = f.steps.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            lines,
            [
                "[x] 1. Check  checks passed; approved by ann",
                "[~] 2. Deactivate prod integrations",
                "[-] 3. Step 3",
                "[x] 4. Snapshot destination",
                "[!] 5. Copy  UNAVAILABLE: registry down",
                "[ ] 6. Disable source mappings  disables 2 mappings",
                "[ ] 7. Restore destination mappings",
                "[ ] 8. Reactivate source integrations",
                "[ ] 9. Resume jobs",
            ]
        );
        assert_eq!(f.footer, None);
    }

    #[test]
    fn a_waiting_run_names_the_confirm_command_and_running_steps_show_progress() {
        use StepState::{Pending, Running, Succeeded, WaitingForConfirmation};
        let mut r =
            run(RunState::Waiting, [WaitingForConfirmation, Pending, Pending, Pending, Pending, Pending, Pending, Pending, Pending]);
        r.steps[0].waiting_for = "approval".into();
        let f = Frame::refresh(&r);
        assert_eq!(f.steps[0].1, "[?] 1. Check  waiting for approval");
        assert_eq!(f.footer.as_deref(), Some("waiting for confirmation: ferry refresh confirm r1 --step 1"));
        let mut r = run(RunState::Running, [Succeeded, Succeeded, Succeeded, Succeeded, Running, Pending, Pending, Pending, Pending]);
        r.steps[4].progress = Some(Progress { done: 40, total: 100, phase: "entities".into(), ..Default::default() });
        assert_eq!(Frame::refresh(&r).steps[4].1, "[>] 5. Copy  40/100 entities");
    }

    #[test]
    fn off_a_terminal_each_transition_is_one_line() {
        use StepState::{Pending, Running, Succeeded, WaitingForConfirmation};
        let p = Pending;
        let mut c = Checklist::new(false);
        let first = c.frame(&Frame::refresh(&run(RunState::Running, [Running, p, p, p, p, p, p, p, p]))).unwrap_or_default();
        assert_eq!(first, "refreshRuns/r1  prod -> sandbox  RUNNING\n[>] 1. Check\n");
        assert_eq!(c.frame(&Frame::refresh(&run(RunState::Running, [Running, p, p, p, p, p, p, p, p]))), None, "nothing changed");
        let waiting =
            c.frame(&Frame::refresh(&run(RunState::Waiting, [WaitingForConfirmation, p, p, p, p, p, p, p, p]))).unwrap_or_default();
        assert_eq!(
            waiting,
            "refreshRuns/r1  prod -> sandbox  WAITING\n[?] 1. Check  waiting for confirmation\n\
             waiting for confirmation: ferry refresh confirm r1 --step 1\n"
        );
        let next = c.frame(&Frame::refresh(&run(RunState::Running, [Succeeded, Running, p, p, p, p, p, p, p]))).unwrap_or_default();
        assert_eq!(next, "refreshRuns/r1  prod -> sandbox  RUNNING\n[x] 1. Check\n[>] 2. Deactivate source integrations\n");
    }

    #[test]
    fn on_a_terminal_the_block_is_redrawn_in_place() {
        use StepState::{Pending, Running, Succeeded};
        let p = Pending;
        let mut c = Checklist::new(true);
        let first = c.frame(&Frame::refresh(&run(RunState::Running, [Running, p, p, p, p, p, p, p, p]))).unwrap_or_default();
        assert!(first.starts_with("\rrefreshRuns/r1"), "the first block moves nothing up: {first:?}");
        assert_eq!(first.matches('\n').count(), 10);
        let second = c.frame(&Frame::refresh(&run(RunState::Running, [Succeeded, Running, p, p, p, p, p, p, p]))).unwrap_or_default();
        assert!(second.starts_with("\x1b[10A\r"), "{second:?}");
        assert!(second.contains("\r[x] 1. Check\x1b[K\n"), "{second:?}");
        assert!(c.frame(&Frame::refresh(&run(RunState::Running, [Succeeded, Running, p, p, p, p, p, p, p]))).is_some());
    }

    #[test]
    fn promotion_steps_show_the_titles_the_server_gave() {
        let r = PromotionRun {
            name: "promotionRuns/p1".into(),
            source_project: "environments/dev/projects/test".into(),
            target_project: "environments/dev/projects/prod".into(),
            state: RunState::Running as i32,
            steps: vec![
                PromotionStep {
                    number: 1,
                    kind: PromotionStepKind::Plan as i32,
                    title: "Plan".into(),
                    state: StepState::Succeeded as i32,
                    ..Default::default()
                },
                PromotionStep {
                    number: 2,
                    kind: PromotionStepKind::MergeGroup as i32,
                    state: StepState::Running as i32,
                    source: "environments/dev/groups/core-test".into(),
                    recipient: "environments/dev/groups/core".into(),
                    title: "Merge group core-test into core".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let f = Frame::promotion(&r);
        assert_eq!(f.header, "promotionRuns/p1  test -> prod  RUNNING");
        assert_eq!(f.steps[0].1, "[x] 1. Plan");
        assert_eq!(f.steps[1].1, "[>] 2. Merge group core-test into core");
    }

    #[test]
    fn a_step_summary_names_every_change_not_just_the_last_call() {
        let log = vec!["pause: changed 1 resource".to_string(), "pause: nothing to change".to_string()];
        let s = summary(StepState::Succeeded as i32, None, "", None, &log, &[]);
        assert_eq!(s, "pause: changed 1 resource");
        let idle = vec!["pause: nothing to change".to_string()];
        assert_eq!(summary(StepState::Succeeded as i32, None, "", None, &idle, &[]), "pause: nothing to change");
    }
}

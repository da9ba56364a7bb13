//! Following a merge-engine job: a live one-line progress bar on stderr while it runs,
//! then the finished job on stdout, and a non-zero exit when it FAILED or was CANCELLED.
//!
//! On a terminal the bar redraws in place (`\r`); otherwise (a log, CI) a line is printed
//! only when the state or phase changes.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use ferry_proto::common::v1::Progress;
use ferry_proto::merge::v1::{GetJobRequest, Job, JobState, WatchJobRequest};
use futures::StreamExt;

use crate::client::Session;
use crate::error::{Hint, job_status};
use crate::output;
use crate::parse::id_of;
use crate::render::jobs::{done_of_total, is_terminal, job_state_label};

/// Width of the bar between the brackets.
const BAR_WIDTH: usize = 24;

/// `[#########...............]`: filled in proportion to done/total (empty while unknown).
pub fn bar(p: &Progress, width: usize) -> String {
    let filled = if p.total > 0 {
        let ratio = (p.done.max(0) as f64 / p.total as f64).clamp(0.0, 1.0);
        // Truncation is what we want: a cell is filled once fully earned.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = (ratio * width as f64) as usize;
        n.min(width)
    } else {
        0
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// Items per second, short: `950/s`, `12.5k/s`, `1.2M/s`.
pub fn rate(per_second: f64) -> String {
    let r = if per_second.is_finite() { per_second.max(0.0) } else { 0.0 };
    if r >= 1_000_000.0 {
        format!("{:.1}M/s", r / 1_000_000.0)
    } else if r >= 1_000.0 {
        format!("{:.1}k/s", r / 1_000.0)
    } else if r >= 10.0 || r == 0.0 {
        format!("{r:.0}/s")
    } else {
        format!("{r:.1}/s")
    }
}

/// The one-line status of a job:
/// `jobs/7 RUNNING [######..................] 250/1000  25%  1.2k/s  applying`.
pub fn line(job: &Job) -> String {
    let p = job.progress.clone().unwrap_or_default();
    let pct = if p.total > 0 { format!("{:>3}%", (p.done.max(0).saturating_mul(100) / p.total).min(100)) } else { "  -%".to_owned() };
    let mut s = format!(
        "{} {} {} {}  {}  {}",
        job.name,
        job_state_label(job.state),
        bar(&p, BAR_WIDTH),
        done_of_total(&p),
        pct,
        rate(p.rate_per_second)
    );
    if !p.phase.is_empty() {
        s.push_str("  ");
        s.push_str(&p.phase);
    }
    if job.cancel_requested && !is_terminal(job.state) {
        s.push_str("  (cancelling)");
    }
    s
}

/// Decides what each job snapshot writes on stderr.
pub struct Drawer {
    tty: bool,
    last: Option<(i32, String)>,
}

impl Drawer {
    pub fn new(tty: bool) -> Self {
        Self { tty, last: None }
    }

    /// The text to write for this snapshot, if any.
    pub fn frame(&mut self, job: &Job) -> Option<String> {
        if self.tty {
            // Back to column 0, the line, then clear what a longer previous line left.
            return Some(format!("\r{}\x1b[K", line(job)));
        }
        let phase = job.progress.as_ref().map(|p| p.phase.clone()).unwrap_or_default();
        let key = (job.state, phase);
        if self.last.as_ref() == Some(&key) {
            return None;
        }
        self.last = Some(key);
        Some(format!("{}\n", line(job)))
    }

    /// What ends the progress display: the newline a redrawn line still needs.
    pub fn finish(&self) -> Option<&'static str> {
        self.tty.then_some("\n")
    }
}

/// Prints a job that was just started, or follows it to the end unless `no_wait`.
pub async fn follow(s: &Session, job: Job, no_wait: bool, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    if no_wait {
        output::one(out, s.format, &job)?;
        return Ok(());
    }
    watch(s, job.name, out).await
}

/// Watches a job to its end (drawing progress on stderr), prints it, and fails unless it
/// SUCCEEDED.
pub async fn watch(s: &Session, name: String, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let mut client = s.merge()?;
    let mut stream = match client.watch_job(WatchJobRequest { name: name.clone() }).await {
        Ok(r) => r.into_inner(),
        Err(e) => return Err(anyhow::Error::new(e).context(Hint(format!("look at the job with: ferry jobs get {}", id_of(&name))))),
    };
    let stderr = std::io::stderr();
    let mut drawer = Drawer::new(stderr.is_terminal());
    let mut last: Option<Job> = None;
    while let Some(next) = stream.next().await {
        let job = match next {
            Ok(job) => job,
            Err(e) => {
                if let Some(end) = drawer.finish() {
                    let _ = stderr.lock().write_all(end.as_bytes());
                }
                return Err(anyhow::Error::new(e).context(Hint(format!("the job goes on: ferry jobs watch {}", id_of(&name)))));
            }
        };
        if let Some(text) = drawer.frame(&job) {
            let mut err = stderr.lock();
            // Progress is best effort: a closed stderr must not fail the command.
            let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
        }
        let done = is_terminal(job.state);
        last = Some(job);
        if done {
            break;
        }
    }
    if let Some(end) = drawer.finish() {
        let _ = stderr.lock().write_all(end.as_bytes());
    }
    // The stream ends after a terminal snapshot; if it ended early, ask once.
    let job = match last {
        Some(job) if is_terminal(job.state) => job,
        _ => client.get_job(GetJobRequest { name: name.clone() }).await?.into_inner(),
    };
    output::one(out, s.format, &job)?;
    outcome(&job)
}

/// Ok for a SUCCEEDED job, the job's error (as a gRPC status) when it FAILED or was
/// CANCELLED, and an error when it has not finished.
pub fn outcome(job: &Job) -> anyhow::Result<()> {
    let state = job_state_label(job.state);
    match JobState::try_from(job.state) {
        Ok(JobState::Succeeded) => Ok(()),
        Ok(JobState::Failed | JobState::Cancelled) => {
            let status = match &job.error {
                Some(e) => job_status(e),
                None => tonic::Status::new(tonic::Code::Cancelled, format!("job {state} without an error recorded")),
            };
            Err(anyhow::Error::new(status)).with_context(|| format!("job {} {state}", job.name))
        }
        _ => anyhow::bail!("job {} is still {state}; the watch stream ended early: ferry jobs watch {}", job.name, id_of(&job.name)),
    }
}

#[cfg(test)]
mod tests {
    use ferry_proto::common::v1::ErrorStatus;

    use super::*;

    fn job(state: JobState, done: i64, total: i64, rate: f64, phase: &str) -> Job {
        Job {
            name: "jobs/7".into(),
            state: state as i32,
            progress: Some(Progress { done, total, rate_per_second: rate, phase: phase.into() }),
            ..Default::default()
        }
    }

    #[test]
    fn the_bar_fills_in_proportion_and_never_overflows() {
        let p = |done, total| Progress { done, total, ..Default::default() };
        assert_eq!(bar(&p(0, 10), 10), "[..........]");
        assert_eq!(bar(&p(5, 10), 10), "[#####.....]");
        assert_eq!(bar(&p(10, 10), 10), "[##########]");
        assert_eq!(bar(&p(15, 10), 10), "[##########]");
        assert_eq!(bar(&p(-3, 10), 10), "[..........]");
        assert_eq!(bar(&p(5, 0), 10), "[..........]", "total unknown");
    }

    #[test]
    fn rates_are_short() {
        assert_eq!(rate(0.0), "0/s");
        assert_eq!(rate(2.25), "2.2/s");
        assert_eq!(rate(950.4), "950/s");
        assert_eq!(rate(12_500.0), "12.5k/s");
        assert_eq!(rate(1_250_000.0), "1.2M/s");
        assert_eq!(rate(f64::NAN), "0/s");
    }

    #[test]
    fn the_line_shows_done_total_rate_and_phase() {
        let text = line(&job(JobState::Running, 250, 1000, 1234.0, "applying"));
        assert_eq!(text, "jobs/7 RUNNING [######..................] 250/1000   25%  1.2k/s  applying");
        let queued = line(&job(JobState::Queued, 0, 0, 0.0, ""));
        assert_eq!(queued, "jobs/7 QUEUED [........................] 0/?    -%  0/s");
    }

    #[test]
    fn off_a_terminal_a_line_is_printed_per_phase_change() {
        let mut d = Drawer::new(false);
        assert!(d.frame(&job(JobState::Running, 1, 10, 1.0, "planning")).is_some());
        assert!(d.frame(&job(JobState::Running, 5, 10, 1.0, "planning")).is_none());
        assert!(d.frame(&job(JobState::Running, 6, 10, 1.0, "applying")).is_some_and(|t| t.ends_with("applying\n")));
        assert!(d.frame(&job(JobState::Succeeded, 10, 10, 1.0, "applying")).is_some());
        assert_eq!(d.finish(), None);
        let mut tty = Drawer::new(true);
        let frame = tty.frame(&job(JobState::Running, 5, 10, 1.0, "applying")).unwrap_or_default();
        assert!(frame.starts_with('\r') && frame.ends_with("\x1b[K") && !frame.contains('\n'), "{frame:?}");
        assert!(tty.frame(&job(JobState::Running, 5, 10, 1.0, "applying")).is_some(), "a terminal redraws every snapshot");
        assert_eq!(tty.finish(), Some("\n"));
    }

    #[test]
    fn failed_and_cancelled_jobs_are_errors_with_their_status() {
        assert!(outcome(&job(JobState::Succeeded, 1, 1, 0.0, "")).is_ok());
        let mut failed = job(JobState::Failed, 1, 2, 0.0, "");
        failed.error = Some(ErrorStatus { code: tonic::Code::Aborted as i32, message: "stale plan".into(), violations: vec![] });
        let e = outcome(&failed).expect_err("failed");
        assert_eq!(crate::status_of(&e).map(tonic::Status::code), Some(tonic::Code::Aborted));
        assert!(crate::render_error(&e).starts_with("error: job jobs/7 FAILED: ABORTED: stale plan"));
        let cancelled = job(JobState::Cancelled, 1, 2, 0.0, "");
        assert_eq!(crate::status_of(&outcome(&cancelled).expect_err("cancelled")).map(tonic::Status::code), Some(tonic::Code::Cancelled));
        assert!(outcome(&job(JobState::Running, 1, 2, 0.0, "")).is_err());
    }
}

//! `ferry refresh`: refresh runs (the nine-step checklist), planned, started, watched live,
//! confirmed, retried, aborted and reported.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::{Args, Subcommand};
use ferry_proto::refresh::v1 as pb;
use futures::{Stream, StreamExt};

use crate::client::{ClientArgs, Session, all_pages};
use crate::error::{Exit, Hint, job_status};
use crate::output::{self, Format};
use crate::parse::{id_of, names};
use crate::render::refresh::{Checklist, Frame, refresh_plan_json, refresh_plan_text, run_is_terminal, run_state_label};

/// Refresh runs: copy one environment over a non-production one through the nine-step
/// checklist (fence, deactivate, pause, snapshot, copy, disable, restore, reactivate,
/// resume), durable and undoable.
#[derive(Debug, Args)]
pub struct RefreshArgs {
    #[command(subcommand)]
    command: RefreshCommand,
    #[command(flatten)]
    client: ClientArgs,
}

/// How the refresh is done.
#[derive(Debug, Args)]
pub(crate) struct OptionArgs {
    /// An outside refresh copies the data; step 5 waits for `ferry refresh confirm`.
    #[arg(long)]
    external: bool,
    /// Step 2 suspends the source integrations' credentials instead of deactivating them.
    #[arg(long)]
    suspend_credentials: bool,
    /// Step 1 waits for `ferry refresh confirm` before anything changes.
    #[arg(long)]
    require_approval: bool,
}

impl OptionArgs {
    pub(crate) fn options(&self) -> pb::RefreshOptions {
        let mode = if self.external { pb::RefreshMode::External } else { pb::RefreshMode::Managed };
        pb::RefreshOptions {
            mode: mode as i32,
            suspend_credentials_instead: self.suspend_credentials,
            require_approval: self.require_approval,
        }
    }
}

#[derive(Debug, Subcommand)]
enum RefreshCommand {
    /// Print the nine steps and what each will change now. Nothing changes.
    Plan {
        /// The environment copied from.
        source_env: String,
        /// The NON_PRODUCTION environment refreshed.
        dest_env: String,
        #[command(flatten)]
        options: OptionArgs,
    },
    /// Start a refresh run and watch its checklist to the end (exit non-zero when it ends
    /// FAILED or ABORTED).
    Start {
        /// The environment copied from.
        source_env: String,
        /// The NON_PRODUCTION environment refreshed.
        dest_env: String,
        #[command(flatten)]
        options: OptionArgs,
        /// Refuse to start when the plan changed since this etag (from `ferry refresh plan`).
        #[arg(long)]
        plan_etag: Option<String>,
        /// Print the run as soon as it started instead of watching it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Render a run's checklist live until it ends; exits non-zero when it ends FAILED or
    /// ABORTED.
    Watch {
        /// Run id or refreshRuns/… name.
        run: String,
    },
    /// Show one run with its checklist.
    Get {
        /// Run id or refreshRuns/… name.
        run: String,
    },
    /// List runs, newest first.
    List {
        /// Only runs whose source or destination is this environment.
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Confirm the step the run waits on (the approval gate, or the end of an external
    /// refresh); the run continues.
    Confirm {
        /// Run id or refreshRuns/… name.
        run: String,
        /// The waiting step's number (default: the step the run waits on now).
        #[arg(long)]
        step: Option<i32>,
        /// Recorded on the step.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Resume a FAILED run from its failed step.
    Retry {
        /// Run id or refreshRuns/… name.
        run: String,
        /// Print the run instead of watching it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Abort a run: undo its completed steps in reverse, lift the fences, release the locks.
    Abort {
        /// Run id or refreshRuns/… name.
        run: String,
        /// Why, recorded on the run.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Print the run's report (Markdown) as it is.
    Report {
        /// Run id or refreshRuns/… name.
        run: String,
    },
    /// Scheduled refreshes: started by the coordinator at the times of a cron expression.
    #[command(subcommand)]
    Schedule(super::schedule::ScheduleCommand),
}

pub async fn run(args: RefreshArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        RefreshCommand::Plan { source_env, dest_env, options } => {
            let req = pb::PlanRefreshRequest {
                source: names::env(&source_env),
                destination: names::env(&dest_env),
                options: Some(options.options()),
            };
            let plan = s.refresh()?.plan_refresh(req).await?.into_inner();
            match s.format {
                Format::Table => write!(out, "{}", refresh_plan_text(&plan))?,
                Format::Json => output::json(out, &refresh_plan_json(&plan))?,
            }
        }
        RefreshCommand::Start { source_env, dest_env, options, plan_etag, no_wait } => {
            let req = pb::StartRefreshRequest {
                source: names::env(&source_env),
                destination: names::env(&dest_env),
                options: Some(options.options()),
                plan_etag: plan_etag.unwrap_or_default(),
                request_id: s.request_id(),
            };
            let run = s.refresh()?.start_refresh(req).await?.into_inner();
            follow(&s, run, no_wait, out).await?;
        }
        RefreshCommand::Watch { run } => watch(&s, names::refresh_run(&run), out).await?,
        RefreshCommand::Get { run } => {
            let run = s.refresh()?.get_refresh_run(pb::GetRefreshRunRequest { name: names::refresh_run(&run) }).await?.into_inner();
            output::one(out, s.format, &run)?;
        }
        RefreshCommand::List { environment, limit } => {
            let client = s.refresh()?;
            let environment = environment.map(|e| names::env(&e)).unwrap_or_default();
            let runs = all_pages(limit, |page_size, page_token| {
                let mut c = client.clone();
                let req = pb::ListRefreshRunsRequest { page_size, page_token, states: Vec::new(), environment: environment.clone() };
                async move {
                    let r = c.list_refresh_runs(req).await?.into_inner();
                    Ok((r.refresh_runs, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &runs)?;
        }
        RefreshCommand::Confirm { run, step, comment } => {
            let name = names::refresh_run(&run);
            let mut client = s.refresh()?;
            let step = match step {
                Some(n) => n,
                None => {
                    let run = client.get_refresh_run(pb::GetRefreshRunRequest { name: name.clone() }).await?.into_inner();
                    waiting_step(run.steps.iter().map(|st| (st.number, st.state)), &run.name, run.state)?
                }
            };
            let req = pb::ConfirmRefreshStepRequest {
                name,
                step,
                actor: String::new(),
                comment: comment.unwrap_or_default(),
                request_id: s.request_id(),
            };
            let run = client.confirm_refresh_step(req).await?.into_inner();
            output::one(out, s.format, &run)?;
        }
        RefreshCommand::Retry { run, no_wait } => {
            let req = pb::RetryRefreshRunRequest { name: names::refresh_run(&run), request_id: s.request_id() };
            let run = s.refresh()?.retry_refresh_run(req).await?.into_inner();
            follow(&s, run, no_wait, out).await?;
        }
        RefreshCommand::Abort { run, reason } => {
            let req = pb::AbortRefreshRunRequest {
                name: names::refresh_run(&run),
                reason: reason.unwrap_or_default(),
                request_id: s.request_id(),
            };
            let run = s.refresh()?.abort_refresh_run(req).await?.into_inner();
            output::one(out, s.format, &run)?;
        }
        RefreshCommand::Schedule(command) => super::schedule::run(&s, command, out).await?,
        RefreshCommand::Report { run } => {
            let name = format!("{}/report", names::refresh_run(&run));
            let report = s.refresh()?.get_refresh_report(pb::GetRefreshReportRequest { name }).await?.into_inner();
            write!(out, "{}", report.markdown)?;
            if !report.markdown.ends_with('\n') {
                writeln!(out)?;
            }
        }
    }
    Ok(())
}

/// The number of the step a run waits on, or an error saying the run does not wait.
pub(crate) fn waiting_step(steps: impl Iterator<Item = (i32, i32)>, name: &str, state: i32) -> anyhow::Result<i32> {
    let mut steps = steps;
    steps
        .find(|(_, st)| *st == pb::StepState::WaitingForConfirmation as i32)
        .map(|(n, _)| n)
        .with_context(|| format!("{name} is {} and waits for no confirmation", run_state_label(state)))
}

/// Prints a run that was just started (or retried), or watches it unless `no_wait`.
async fn follow(s: &Session, run: pb::RefreshRun, no_wait: bool, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    if no_wait {
        output::one(out, s.format, &run)?;
        return Ok(());
    }
    watch(s, run.name, out).await
}

/// Renders a run's checklist on stderr until it ends, prints it, and fails when it ends
/// FAILED or ABORTED.
async fn watch(s: &Session, name: String, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let mut client = s.refresh()?;
    let stream = match client.watch_refresh_run(pb::WatchRefreshRunRequest { name: name.clone() }).await {
        Ok(r) => r.into_inner(),
        Err(e) => return Err(anyhow::Error::new(e).context(Hint(format!("look at the run with: ferry refresh get {}", id_of(&name))))),
    };
    let last = draw(stream, |r: &pb::RefreshRun| (Frame::refresh(r), r.state), &format!("ferry refresh watch {}", id_of(&name))).await?;
    let run = match last {
        Some(run) if run_is_terminal(run.state) => run,
        _ => client.get_refresh_run(pb::GetRefreshRunRequest { name: name.clone() }).await?.into_inner(),
    };
    output::one(out, s.format, &run)?;
    outcome(&run.name, run.state, run.error.as_ref(), &run.abort_reason, "refresh")
}

/// Draws every snapshot of a run stream on stderr as a checklist until a terminal state;
/// returns the last snapshot.
pub(crate) async fn draw<T, S>(mut stream: S, frame: impl Fn(&T) -> (Frame, i32), again: &str) -> anyhow::Result<Option<T>>
where
    S: Stream<Item = Result<T, tonic::Status>> + Unpin,
{
    let stderr = std::io::stderr();
    let mut checklist = Checklist::new(stderr.is_terminal());
    let mut last = None;
    while let Some(next) = stream.next().await {
        let run = next.map_err(|e| anyhow::Error::new(e).context(Hint(format!("the run goes on: {again}"))))?;
        let (f, state) = frame(&run);
        if let Some(text) = checklist.frame(&f) {
            let mut err = stderr.lock();
            // The checklist is best effort: a closed stderr must not fail the command.
            let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
        }
        last = Some(run);
        if run_is_terminal(state) {
            break;
        }
    }
    Ok(last)
}

/// Ok unless the run ended FAILED (its error, as a gRPC status) or ABORTED; an error too
/// when it has not ended.
pub(crate) fn outcome(
    name: &str,
    state: i32,
    error: Option<&ferry_proto::common::v1::ErrorStatus>,
    abort_reason: &str,
    what: &str,
) -> anyhow::Result<()> {
    let label = run_state_label(state);
    match pb::RunState::try_from(state) {
        Ok(pb::RunState::Succeeded) => Ok(()),
        Ok(pb::RunState::Failed) => {
            let status = match error {
                Some(e) => job_status(e),
                None => tonic::Status::new(tonic::Code::Aborted, "run FAILED without an error recorded"),
            };
            Err(anyhow::Error::new(status))
                .context(Hint(format!(
                    "retry it with: ferry {what} retry {id}, or undo it with: ferry {what} abort {id}",
                    id = id_of(name)
                )))
                .with_context(|| format!("{name} {label}"))
        }
        Ok(pb::RunState::Aborted) => {
            let why = if abort_reason.is_empty() { String::new() } else { format!(": {abort_reason}") };
            Err(anyhow::Error::new(Exit { code: 1, message: format!("{name} ABORTED{why}") }))
        }
        _ => anyhow::bail!("{name} is still {label}; the watch stream ended early: ferry {what} watch {}", id_of(name)),
    }
}

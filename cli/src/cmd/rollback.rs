//! `ferry refresh rollback RUN` (plan, then with `--yes` start and watch) and `ferry
//! rollback …`: rollback runs watched, shown, listed, confirmed, retried, aborted and
//! reported like every run.

use std::io::Write;

use clap::{Args, Subcommand};
use ferry_proto::refresh::v1 as pb;

use super::runs::{follow, waiting_step, watch};
use crate::client::{ClientArgs, Session, all_pages};
use crate::output::{self, Format};
use crate::parse::names;
use crate::render::rollback::{rollback_plan_json, rollback_plan_text};

/// How `ferry refresh rollback` starts a rollback.
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The SUCCEEDED refresh run rolled back (id or refreshRuns/… name).
    run: String,
    /// Step 1 waits for `ferry rollback confirm` before anything changes.
    #[arg(long)]
    require_approval: bool,
    /// Refuse to start when the plan changed since this etag (printed by the plan).
    #[arg(long)]
    plan_etag: Option<String>,
    /// Start the rollback; without it the plan is printed and nothing changes.
    #[arg(long)]
    yes: bool,
    /// Print the run as soon as it started instead of watching it.
    #[arg(long)]
    no_wait: bool,
}

/// Rollback runs: a SUCCEEDED refresh undone within its window (started with
/// `ferry refresh rollback RUN`).
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(subcommand)]
    command: RollbackCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum RollbackCommand {
    /// Render a run's checklist live until it ends; exits non-zero when it ends FAILED or
    /// ABORTED.
    Watch {
        /// Run id or rollbackRuns/… name.
        run: String,
    },
    /// Show one run with its checklist.
    Get {
        /// Run id or rollbackRuns/… name.
        run: String,
    },
    /// List runs, newest first.
    List {
        /// Only rollbacks of this destination environment.
        #[arg(long = "env", value_name = "ENV")]
        environment: Option<String>,
        /// Only rollbacks of this refresh run (id or refreshRuns/… name).
        #[arg(long = "refresh-run", value_name = "RUN", conflicts_with = "environment")]
        refresh_run: Option<String>,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Confirm the approval gate of step 1; the run continues.
    Confirm {
        /// Run id or rollbackRuns/… name.
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
        /// Run id or rollbackRuns/… name.
        run: String,
        /// Print the run instead of watching it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Abort a run: the destination gets back what it held before the rollback.
    Abort {
        /// Run id or rollbackRuns/… name.
        run: String,
        /// Why, recorded on the run.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Print the run's report (Markdown) as it is.
    Report {
        /// Run id or rollbackRuns/… name.
        run: String,
    },
}

/// `ferry refresh rollback RUN`: the plan, or with `--yes` the run, watched.
pub(crate) async fn start(s: &Session, a: StartArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let refresh_run = names::refresh_run(&a.run);
    let options = Some(pb::RollbackOptions { require_approval: a.require_approval });
    if !a.yes {
        let plan = s.refresh()?.plan_rollback(pb::PlanRollbackRequest { refresh_run, options }).await?.into_inner();
        match s.format {
            Format::Table => write!(out, "{}", rollback_plan_text(&plan))?,
            Format::Json => output::json(out, &rollback_plan_json(&plan))?,
        }
        return Ok(());
    }
    let req = pb::StartRollbackRequest { refresh_run, options, plan_etag: a.plan_etag.unwrap_or_default(), request_id: s.request_id() };
    let run = s.refresh()?.start_rollback(req).await?.into_inner();
    follow(s, run, a.no_wait, out).await
}

pub async fn run(args: RollbackArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        RollbackCommand::Watch { run } => watch::<pb::RollbackRun>(&s, names::rollback_run(&run), out).await?,
        RollbackCommand::Get { run } => {
            let run = s.refresh()?.get_rollback_run(pb::GetRollbackRunRequest { name: names::rollback_run(&run) }).await?.into_inner();
            output::one(out, s.format, &run)?;
        }
        RollbackCommand::List { environment, refresh_run, limit } => {
            let client = s.refresh()?;
            let environment = environment.map(|e| names::env(&e)).unwrap_or_default();
            let refresh_run = refresh_run.map(|r| names::refresh_run(&r)).unwrap_or_default();
            let runs = all_pages(limit, |page_size, page_token| {
                let mut c = client.clone();
                let req = pb::ListRollbackRunsRequest {
                    page_size,
                    page_token,
                    states: Vec::new(),
                    environment: environment.clone(),
                    refresh_run: refresh_run.clone(),
                };
                async move {
                    let r = c.list_rollback_runs(req).await?.into_inner();
                    Ok((r.rollback_runs, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &runs)?;
        }
        RollbackCommand::Confirm { run, step, comment } => {
            let name = names::rollback_run(&run);
            let mut client = s.refresh()?;
            let step = match step {
                Some(n) => n,
                None => waiting_step(&client.get_rollback_run(pb::GetRollbackRunRequest { name: name.clone() }).await?.into_inner())?,
            };
            let req = pb::ConfirmRollbackStepRequest {
                name,
                step,
                actor: String::new(),
                comment: comment.unwrap_or_default(),
                request_id: s.request_id(),
            };
            output::one(out, s.format, &client.confirm_rollback_step(req).await?.into_inner())?;
        }
        RollbackCommand::Retry { run, no_wait } => {
            let req = pb::RetryRollbackRunRequest { name: names::rollback_run(&run), request_id: s.request_id() };
            let run = s.refresh()?.retry_rollback_run(req).await?.into_inner();
            follow(&s, run, no_wait, out).await?;
        }
        RollbackCommand::Abort { run, reason } => {
            let req = pb::AbortRollbackRunRequest {
                name: names::rollback_run(&run),
                reason: reason.unwrap_or_default(),
                request_id: s.request_id(),
            };
            output::one(out, s.format, &s.refresh()?.abort_rollback_run(req).await?.into_inner())?;
        }
        RollbackCommand::Report { run } => {
            let name = format!("{}/report", names::rollback_run(&run));
            let report = s.refresh()?.get_rollback_report(pb::GetRollbackReportRequest { name }).await?.into_inner();
            write!(out, "{}", report.markdown)?;
            if !report.markdown.ends_with('\n') {
                writeln!(out)?;
            }
        }
    }
    Ok(())
}

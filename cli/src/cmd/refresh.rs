//! `ferry refresh`: refresh runs (the nine-step checklist), planned, started, watched live,
//! confirmed, retried, aborted and reported.

use std::io::Write;

use clap::{Args, Subcommand};
use ferry_proto::refresh::v1 as pb;

use super::runs::{follow, waiting_step, watch};
use crate::client::{ClientArgs, Session, all_pages};
use crate::output::{self, Format};
use crate::parse::names;
use crate::render::plans::{refresh_plan_json, refresh_plan_text};

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
    /// A refresh profile (JSON file): what the destination keeps, what the source leaves
    /// out, which payload fields are masked (see the README).
    #[arg(long, value_name = "FILE")]
    profile: Option<std::path::PathBuf>,
    /// Step 3 revokes the sync leases left and goes on, instead of waiting until no sync
    /// is in flight (a runtime then learns at its next renewal).
    #[arg(long)]
    no_lease_wait: bool,
}

impl OptionArgs {
    pub(crate) fn options(&self) -> anyhow::Result<pb::RefreshOptions> {
        use anyhow::Context;
        let mode = if self.external { pb::RefreshMode::External } else { pb::RefreshMode::Managed };
        let profile = match &self.profile {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                Some(crate::parse::profile(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?)
            }
            None => None,
        };
        Ok(pb::RefreshOptions {
            mode: mode as i32,
            suspend_credentials_instead: self.suspend_credentials,
            require_approval: self.require_approval,
            profile,
            lease_drain: if self.no_lease_wait { pb::LeaseDrain::Revoke } else { pb::LeaseDrain::Wait } as i32,
        })
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
    /// Roll a SUCCEEDED refresh back within its window: prints the plan (what comes back,
    /// what is discarded); with --yes starts the rollback run and watches it.
    Rollback(super::rollback::StartArgs),
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
                options: Some(options.options()?),
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
                options: Some(options.options()?),
                plan_etag: plan_etag.unwrap_or_default(),
                request_id: s.request_id(),
            };
            let run = s.refresh()?.start_refresh(req).await?.into_inner();
            follow(&s, run, no_wait, out).await?;
        }
        RefreshCommand::Watch { run } => watch::<pb::RefreshRun>(&s, names::refresh_run(&run), out).await?,
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
                    waiting_step(&run)?
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
        RefreshCommand::Rollback(a) => super::rollback::start(&s, a, out).await?,
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

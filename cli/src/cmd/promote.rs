//! `ferry promote`: promotion runs (merge a project's groups, then the project), planned,
//! started, watched live as a checklist, confirmed, retried and aborted.

use std::io::Write;

use clap::{Args, Subcommand};
use ferry_proto::refresh::v1 as pb;

use super::merge::Strategy;
use super::runs::{follow, waiting_step, watch};
use crate::client::{ClientArgs, Session, all_pages};
use crate::output::{self, Format};
use crate::parse::names;
use crate::render::plans::{promotion_plan_json, promotion_plan_text};

/// Promotion runs: promote a project (e.g. test) into another (e.g. prod) of the same
/// environment: one group merge per group pair, then the project merge.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(subcommand)]
    command: PromoteCommand,
    #[command(flatten)]
    client: ClientArgs,
}

/// The projects promoted.
#[derive(Debug, Args)]
struct Projects {
    /// Environment id (both projects live in it).
    env: String,
    /// The project promoted from.
    source_project: String,
    /// The project promoted into.
    target_project: String,
    /// How group merge conflicts are resolved.
    #[arg(long, value_enum, default_value_t)]
    strategy: Strategy,
    /// Apply the group merges even though some references will dangle.
    #[arg(long)]
    proceed_with_missing_dependencies: bool,
}

impl Projects {
    fn names(&self) -> (String, String) {
        (names::project(&self.env, &self.source_project), names::project(&self.env, &self.target_project))
    }
    fn options(&self, require_approval: bool) -> pb::PromotionOptions {
        pb::PromotionOptions {
            strategy: ferry_proto::merge::v1::MergeStrategy::from(self.strategy) as i32,
            group_pairs: Vec::new(),
            require_approval,
            proceed_with_missing_dependencies: self.proceed_with_missing_dependencies,
        }
    }
}

#[derive(Debug, Subcommand)]
enum PromoteCommand {
    /// Plan the promotion: one group merge plan per group pair (with counts) and the
    /// project merge preview. Nothing is applied.
    Plan {
        #[command(flatten)]
        projects: Projects,
    },
    /// Start a promotion run and watch its checklist to the end (exit non-zero when it
    /// ends FAILED or ABORTED).
    Start {
        #[command(flatten)]
        projects: Projects,
        /// The PLAN step waits for `ferry promote confirm`.
        #[arg(long)]
        require_approval: bool,
        /// Print the run as soon as it started instead of watching it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Render a run's checklist live until it ends; exits non-zero when it ends FAILED or
    /// ABORTED.
    Watch {
        /// Run id or promotionRuns/… name.
        run: String,
    },
    /// Show one run with its checklist.
    Get {
        /// Run id or promotionRuns/… name.
        run: String,
    },
    /// List runs, newest first.
    List {
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Confirm the approval gate of the PLAN step; the run continues.
    Confirm {
        /// Run id or promotionRuns/… name.
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
        /// Run id or promotionRuns/… name.
        run: String,
        /// Print the run instead of watching it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Abort a run: cancel a running merge job, revert the applied group merges in
    /// reverse. Refused once the project merge started.
    Abort {
        /// Run id or promotionRuns/… name.
        run: String,
        /// Why, recorded on the run.
        #[arg(long)]
        reason: Option<String>,
        /// Also remove merged entities changed since the merge.
        #[arg(long)]
        proceed_with_changed: bool,
    },
}

pub async fn run(args: PromoteArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        PromoteCommand::Plan { projects } => {
            let (source_project, target_project) = projects.names();
            let req = pb::PlanPromotionRequest {
                source_project,
                target_project,
                options: Some(projects.options(false)),
                request_id: s.request_id(),
            };
            let plan = s.refresh()?.plan_promotion(req).await?.into_inner();
            match s.format {
                Format::Table => {
                    write!(out, "{}", promotion_plan_text(&plan.source_project, &plan.target_project, plan.project_merge.as_ref()))?;
                    writeln!(
                        out,
                        "\nNothing applied. To run it: ferry promote start {} {} {}",
                        projects.env, projects.source_project, projects.target_project
                    )?;
                }
                Format::Json => {
                    output::json(out, &promotion_plan_json(&plan.source_project, &plan.target_project, plan.project_merge.as_ref()))?
                }
            }
        }
        PromoteCommand::Start { projects, require_approval, no_wait } => {
            let (source_project, target_project) = projects.names();
            let req = pb::StartPromotionRequest {
                source_project,
                target_project,
                options: Some(projects.options(require_approval)),
                merge_plans: Vec::new(),
                request_id: s.request_id(),
            };
            let run = s.refresh()?.start_promotion(req).await?.into_inner();
            follow(&s, run, no_wait, out).await?;
        }
        PromoteCommand::Watch { run } => watch::<pb::PromotionRun>(&s, names::promotion_run(&run), out).await?,
        PromoteCommand::Get { run } => {
            let run = s.refresh()?.get_promotion_run(pb::GetPromotionRunRequest { name: names::promotion_run(&run) }).await?.into_inner();
            output::one(out, s.format, &run)?;
        }
        PromoteCommand::List { limit } => {
            let client = s.refresh()?;
            let runs = all_pages(limit, |page_size, page_token| {
                let mut c = client.clone();
                let req = pb::ListPromotionRunsRequest { page_size, page_token, ..Default::default() };
                async move {
                    let r = c.list_promotion_runs(req).await?.into_inner();
                    Ok((r.promotion_runs, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &runs)?;
        }
        PromoteCommand::Confirm { run, step, comment } => {
            let name = names::promotion_run(&run);
            let mut client = s.refresh()?;
            let step = match step {
                Some(n) => n,
                None => {
                    let run = client.get_promotion_run(pb::GetPromotionRunRequest { name: name.clone() }).await?.into_inner();
                    waiting_step(&run)?
                }
            };
            let req = pb::ConfirmPromotionStepRequest {
                name,
                step,
                actor: String::new(),
                comment: comment.unwrap_or_default(),
                request_id: s.request_id(),
            };
            let run = client.confirm_promotion_step(req).await?.into_inner();
            output::one(out, s.format, &run)?;
        }
        PromoteCommand::Retry { run, no_wait } => {
            let req = pb::RetryPromotionRunRequest { name: names::promotion_run(&run), request_id: s.request_id() };
            let run = s.refresh()?.retry_promotion_run(req).await?.into_inner();
            follow(&s, run, no_wait, out).await?;
        }
        PromoteCommand::Abort { run, reason, proceed_with_changed } => {
            let req = pb::AbortPromotionRunRequest {
                name: names::promotion_run(&run),
                reason: reason.unwrap_or_default(),
                proceed_with_changed,
                request_id: s.request_id(),
            };
            let run = s.refresh()?.abort_promotion_run(req).await?.into_inner();
            output::one(out, s.format, &run)?;
        }
    }
    Ok(())
}

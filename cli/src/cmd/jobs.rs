//! `ferry jobs`: the merge engine's jobs (applies, clones, project merges, reverts).

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use ferry_proto::merge::v1 as pb;

use crate::client::{ClientArgs, Session, all_pages};
use crate::output;
use crate::parse::names;
use crate::progress;

/// Merge-engine jobs: every apply, clone, project merge and revert runs as one. (Not to be
/// confused with `ferry job`, the integration sync jobs that talk to external systems.)
#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    command: JobsCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum State {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<State> for pb::JobState {
    fn from(s: State) -> Self {
        match s {
            State::Queued => Self::Queued,
            State::Running => Self::Running,
            State::Succeeded => Self::Succeeded,
            State::Failed => Self::Failed,
            State::Cancelled => Self::Cancelled,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    ApplyMerge,
    CloneGroup,
    CloneProject,
    MergeProject,
    RevertMerge,
}

impl From<Kind> for pb::JobKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::ApplyMerge => Self::ApplyMerge,
            Kind::CloneGroup => Self::CloneGroup,
            Kind::CloneProject => Self::CloneProject,
            Kind::MergeProject => Self::MergeProject,
            Kind::RevertMerge => Self::RevertMerge,
        }
    }
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state (repeatable).
        #[arg(long = "state", value_enum, value_name = "STATE")]
        states: Vec<State>,
        /// Only jobs of this kind (repeatable).
        #[arg(long = "kind", value_enum, value_name = "KIND")]
        kinds: Vec<Kind>,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Show one job: state, progress, result or error.
    Get {
        /// Job id or jobs/… name.
        job: String,
    },
    /// Follow a job to its end with a progress bar on stderr; exits non-zero unless it
    /// succeeds.
    Watch {
        /// Job id or jobs/… name.
        job: String,
    },
    /// Cancel a queued or running job. A running job stops after its current batch;
    /// batches already applied stay applied (undo them with `ferry merge revert`).
    Cancel {
        /// Job id or jobs/… name.
        job: String,
    },
}

pub async fn run(args: JobsArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        JobsCommand::List { states, kinds, limit } => {
            let client = s.merge()?;
            let states: Vec<i32> = states.into_iter().map(|st| pb::JobState::from(st) as i32).collect();
            let kinds: Vec<i32> = kinds.into_iter().map(|k| pb::JobKind::from(k) as i32).collect();
            let jobs = all_pages(limit, |page_size, page_token| {
                let mut c = client.clone();
                let req = pb::ListJobsRequest { page_size, page_token, states: states.clone(), kinds: kinds.clone() };
                async move {
                    let r = c.list_jobs(req).await?.into_inner();
                    Ok((r.jobs, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &jobs)?;
        }
        JobsCommand::Get { job } => {
            let job = s.merge()?.get_job(pb::GetJobRequest { name: names::job(&job) }).await?.into_inner();
            output::one(out, s.format, &job)?;
        }
        JobsCommand::Watch { job } => progress::watch(&s, names::job(&job), out).await?,
        JobsCommand::Cancel { job } => {
            let req = pb::CancelJobRequest { name: names::job(&job), request_id: s.request_id() };
            let job = s.merge()?.cancel_job(req).await?.into_inner();
            output::one(out, s.format, &job)?;
        }
    }
    Ok(())
}

//! `ferry job`: integration-control's sync jobs (processes that talk to external systems).

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use ferry_proto::integration::v1 as pb;
use serde_json::json;

use crate::client::{ClientArgs, Session, all_pages};
use crate::output;
use crate::parse::names;

/// Integration sync jobs: scheduled processes that may talk to external systems, RUNNING
/// or PAUSED (and by whom). (Not to be confused with `ferry jobs`, the merge engine's
/// clone and merge jobs.)
#[derive(Debug, Args)]
pub struct SyncJobArgs {
    #[command(subcommand)]
    command: SyncJobCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum State {
    Running,
    Paused,
}

impl From<State> for pb::SyncJobState {
    fn from(s: State) -> Self {
        match s {
            State::Running => Self::Running,
            State::Paused => Self::Paused,
        }
    }
}

#[derive(Debug, Subcommand)]
enum SyncJobCommand {
    /// Create a sync job, RUNNING unless --paused.
    Create {
        /// Environment id.
        env: String,
        /// The job id: lowercase letters, digits and '-', starting with a letter.
        id: String,
        /// A 5-field cron expression (UTC), e.g. '0 2 * * *'.
        #[arg(long)]
        schedule: String,
        /// The id of the integration it uses (same environment); makes it external.
        /// (`--integration` is the integration-control URL.)
        #[arg(long = "integration-id", value_name = "INTEGRATION")]
        integration: Option<String>,
        /// It talks to an external system, so a refresh pauses it (the default; implied
        /// by --integration-id).
        #[arg(long, conflicts_with = "internal")]
        external: bool,
        /// It talks to nothing outside: a refresh leaves it running. Without this flag a
        /// job is taken for external, the safe choice.
        #[arg(long, conflicts_with = "integration")]
        internal: bool,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
        /// A name for people.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Show one sync job.
    Get {
        /// Environment id.
        env: String,
        /// Sync job id.
        id: String,
    },
    /// List an environment's sync jobs.
    List {
        /// Environment id.
        env: String,
        /// Only jobs in this state.
        #[arg(long, value_enum)]
        state: Option<State>,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Pause a sync job, recording you as who paused it.
    Pause {
        /// Environment id.
        env: String,
        /// Sync job id.
        id: String,
        /// Why, for whoever finds it paused.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused sync job.
    Resume {
        /// Environment id.
        env: String,
        /// Sync job id.
        id: String,
    },
    /// Delete a sync job.
    Delete {
        /// Environment id.
        env: String,
        /// Sync job id.
        id: String,
    },
}

pub async fn run(args: SyncJobArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    let mut c = s.integration()?;
    let job = match args.command {
        SyncJobCommand::Create { env, id, schedule, integration, external, internal, paused, display_name } => {
            let state = if paused { pb::SyncJobState::Paused } else { pb::SyncJobState::Running };
            let req = pb::CreateSyncJobRequest {
                parent: names::env(&env),
                sync_job_id: id,
                sync_job: Some(pb::SyncJob {
                    display_name: display_name.unwrap_or_default(),
                    // Unset unless a flag says: the service's default (external) decides.
                    external: if internal { Some(false) } else { external.then_some(true) },
                    integration: integration.map(|i| names::integration(&env, &i)).unwrap_or_default(),
                    schedule,
                    state: state as i32,
                    ..Default::default()
                }),
                request_id: s.request_id(),
            };
            c.create_sync_job(req).await?.into_inner()
        }
        SyncJobCommand::Get { env, id } => c.get_sync_job(pb::GetSyncJobRequest { name: names::sync_job(&env, &id) }).await?.into_inner(),
        SyncJobCommand::List { env, state, limit } => {
            let parent = names::env(&env);
            let state = state.map_or(pb::SyncJobState::Unspecified, pb::SyncJobState::from) as i32;
            let list = all_pages(limit, |page_size, page_token| {
                let mut c = c.clone();
                let req = pb::ListSyncJobsRequest { parent: parent.clone(), page_size, page_token, state };
                async move {
                    let r = c.list_sync_jobs(req).await?.into_inner();
                    Ok((r.sync_jobs, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &list)?;
            return Ok(());
        }
        SyncJobCommand::Pause { env, id, reason } => {
            let req = pb::PauseSyncJobRequest {
                name: names::sync_job(&env, &id),
                reason: reason.unwrap_or_default(),
                request_id: s.request_id(),
            };
            c.pause_sync_job(req).await?.into_inner()
        }
        SyncJobCommand::Resume { env, id } => {
            let req = pb::ResumeSyncJobRequest { name: names::sync_job(&env, &id), request_id: s.request_id() };
            c.resume_sync_job(req).await?.into_inner()
        }
        SyncJobCommand::Delete { env, id } => {
            let name = names::sync_job(&env, &id);
            c.delete_sync_job(pb::DeleteSyncJobRequest { name: name.clone(), request_id: s.request_id() }).await?;
            output::summary(out, s.format, &[("deleted", name.clone())], json!({ "name": name }))?;
            return Ok(());
        }
    };
    output::one(out, s.format, &job)?;
    Ok(())
}

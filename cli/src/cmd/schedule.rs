//! `ferry refresh schedule`: refreshes started by the coordinator at the times of a cron
//! expression (created, shown, listed, changed, paused, resumed, deleted, undeleted).

use std::io::Write;

use clap::Subcommand;
use ferry_proto::refresh::v1 as pb;

use super::refresh::OptionArgs;
use crate::client::{Session, all_pages};
use crate::output;
use crate::parse::names;

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule: refresh DEST_ENV from SOURCE_ENV at the times of CRON.
    Create {
        /// The schedule's id (lowercase letters, digits, '-').
        id: String,
        /// The environment copied from.
        source_env: String,
        /// The NON_PRODUCTION environment refreshed.
        dest_env: String,
        /// Five fields: minute hour day-of-month month day-of-week ("0 3 * * MON").
        #[arg(long)]
        cron: String,
        /// The IANA time zone CRON is read in ("Europe/Berlin"); default UTC.
        #[arg(long = "tz", value_name = "ZONE")]
        time_zone: Option<String>,
        #[command(flatten)]
        options: OptionArgs,
    },
    /// Show a schedule: next and last run times, the last run or why it was skipped.
    Get {
        /// Schedule id or refreshSchedules/… name.
        id: String,
    },
    /// List schedules by id.
    List {
        /// Also the deleted ones.
        #[arg(long)]
        deleted: bool,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Change what or when a schedule refreshes (only the flags given change).
    Update {
        /// Schedule id or refreshSchedules/… name.
        id: String,
        #[arg(long = "source", value_name = "ENV")]
        source_env: Option<String>,
        #[arg(long = "dest", value_name = "ENV")]
        dest_env: Option<String>,
        #[arg(long)]
        cron: Option<String>,
        #[arg(long = "tz", value_name = "ZONE")]
        time_zone: Option<String>,
        /// Replace the refresh options with the ones given (--external,
        /// --suspend-credentials, --require-approval).
        #[arg(long)]
        set_options: bool,
        #[command(flatten)]
        options: OptionArgs,
        /// Refuse when the schedule changed since this etag.
        #[arg(long)]
        etag: Option<String>,
    },
    /// Start no more runs until resumed.
    Pause { id: String },
    /// Run again from the first due time after now.
    Resume { id: String },
    /// Delete a schedule (undo with `undelete`); runs it started stay.
    Delete { id: String },
    /// Bring a deleted schedule back as it was.
    Undelete { id: String },
}

pub async fn run(s: &Session, command: ScheduleCommand, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let mut client = s.refresh()?;
    let schedule = match command {
        ScheduleCommand::Create { id, source_env, dest_env, cron, time_zone, options } => {
            let schedule = pb::RefreshSchedule {
                source: names::env(&source_env),
                destination: names::env(&dest_env),
                options: Some(options.options()?),
                cron,
                time_zone: time_zone.unwrap_or_default(),
                ..Default::default()
            };
            let req = pb::CreateRefreshScheduleRequest { schedule_id: id, schedule: Some(schedule), request_id: s.request_id() };
            client.create_refresh_schedule(req).await?.into_inner()
        }
        ScheduleCommand::Get { id } => {
            client.get_refresh_schedule(pb::GetRefreshScheduleRequest { name: names::refresh_schedule(&id) }).await?.into_inner()
        }
        ScheduleCommand::List { deleted, limit } => {
            let schedules = all_pages(limit, |page_size, page_token| {
                let mut c = client.clone();
                let req = pb::ListRefreshSchedulesRequest { page_size, page_token, show_deleted: deleted };
                async move {
                    let r = c.list_refresh_schedules(req).await?.into_inner();
                    Ok((r.refresh_schedules, r.next_page_token))
                }
            })
            .await?;
            return Ok(output::many(out, s.format, &schedules)?);
        }
        ScheduleCommand::Update { id, source_env, dest_env, cron, time_zone, set_options, options, etag } => {
            let mut paths = Vec::new();
            let mut schedule = pb::RefreshSchedule { name: names::refresh_schedule(&id), ..Default::default() };
            if let Some(e) = source_env {
                schedule.source = names::env(&e);
                paths.push("source");
            }
            if let Some(e) = dest_env {
                schedule.destination = names::env(&e);
                paths.push("destination");
            }
            if let Some(c) = cron {
                schedule.cron = c;
                paths.push("cron");
            }
            if let Some(z) = time_zone {
                schedule.time_zone = z;
                paths.push("time_zone");
            }
            if set_options {
                schedule.options = Some(options.options()?);
                paths.push("options");
            }
            anyhow::ensure!(!paths.is_empty(), "nothing to change: give --source, --dest, --cron, --tz or --set-options");
            let req = pb::UpdateRefreshScheduleRequest {
                schedule: Some(schedule),
                update_mask: Some(prost_types::FieldMask { paths: paths.into_iter().map(str::to_owned).collect() }),
                etag: etag.unwrap_or_default(),
                request_id: s.request_id(),
            };
            client.update_refresh_schedule(req).await?.into_inner()
        }
        ScheduleCommand::Pause { id } => {
            let req = pb::PauseRefreshScheduleRequest { name: names::refresh_schedule(&id), request_id: s.request_id() };
            client.pause_refresh_schedule(req).await?.into_inner()
        }
        ScheduleCommand::Resume { id } => {
            let req = pb::ResumeRefreshScheduleRequest { name: names::refresh_schedule(&id), request_id: s.request_id() };
            client.resume_refresh_schedule(req).await?.into_inner()
        }
        ScheduleCommand::Delete { id } => {
            let req = pb::DeleteRefreshScheduleRequest { name: names::refresh_schedule(&id), request_id: s.request_id() };
            client.delete_refresh_schedule(req).await?.into_inner()
        }
        ScheduleCommand::Undelete { id } => {
            let req = pb::UndeleteRefreshScheduleRequest { name: names::refresh_schedule(&id), request_id: s.request_id() };
            client.undelete_refresh_schedule(req).await?.into_inner()
        }
    };
    Ok(output::one(out, s.format, &schedule)?)
}

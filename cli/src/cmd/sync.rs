//! `ferry sync check`: the fencing decision integration runtimes ask for before a sync.

use std::io::Write;

use clap::{Args, Subcommand};
use ferry_proto::integration::v1 as pb;

use crate::client::{ClientArgs, Session};
use crate::error::Exit;
use crate::output::{self, Format};
use crate::parse::names;
use crate::render::integration::{decision_json, decision_text};

/// Exit status of `ferry sync check` when the sync is denied.
pub const DENIED_EXIT: u8 = 3;

/// Sync authorisation: would a mapping be allowed to sync now?
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(subcommand)]
    command: SyncCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum SyncCommand {
    /// Print ALLOWED, or DENIED with every failing check (environment fenced, production
    /// mapping in a sandbox, bound elsewhere, inactive, credentials suspended, job paused,
    /// …). Exits 0 when allowed, 3 when denied, 1 on errors.
    Check {
        /// The mapping: ENV/INTEGRATION/MAPPING or its full name.
        #[arg(value_parser = names::mapping_path)]
        mapping: String,
        /// The sync job asking (an id in the mapping's environment, or a full name).
        #[arg(long)]
        job: Option<String>,
    },
}

/// 0 when the sync is allowed, [`DENIED_EXIT`] when denied.
pub fn exit_status(r: &pb::AuthorizeSyncResponse) -> u8 {
    if r.allowed { 0 } else { DENIED_EXIT }
}

pub async fn run(args: SyncArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        SyncCommand::Check { mapping, job } => {
            // environments/{env}/integrations/…: jobs are named in the same environment.
            let env = mapping.split('/').nth(1).unwrap_or_default().to_owned();
            let req =
                pb::AuthorizeSyncRequest { mapping: mapping.clone(), job: job.map(|j| names::sync_job(&env, &j)).unwrap_or_default() };
            let r = s.integration()?.authorize_sync(req).await?.into_inner();
            match s.format {
                Format::Table => write!(out, "{}", decision_text(&mapping, &r))?,
                Format::Json => output::json(out, &decision_json(&mapping, &r))?,
            }
            let code = exit_status(&r);
            if code != 0 {
                // The output already says why; exit quietly with the status.
                out.flush()?;
                return Err(Exit { code, message: String::new() }.into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_exits_0_and_denied_exits_3() {
        let allowed = pb::AuthorizeSyncResponse { allowed: true, ..Default::default() };
        let denied = pb::AuthorizeSyncResponse {
            allowed: false,
            reason: pb::SyncDenyReason::MappingInactive as i32,
            reasons: vec![pb::SyncDenyReason::MappingInactive as i32],
            message: String::new(),
        };
        assert_eq!((exit_status(&allowed), exit_status(&denied)), (0, 3));
        let e: anyhow::Error = Exit { code: exit_status(&denied), message: String::new() }.into();
        assert_eq!(crate::exit_code(&e), 3);
        assert_eq!(crate::render_error(&e), "", "the DENIED output already explains it");
        assert_eq!(crate::exit_code(&anyhow::Error::new(tonic::Status::not_found("no mapping"))), 1, "errors are not denials");
    }
}

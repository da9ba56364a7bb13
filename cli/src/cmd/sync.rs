//! `ferry sync check`: the fencing decision integration runtimes ask for before a sync;
//! `ferry sync exec` (`sync_exec.rs`): a command run under a sync lease; `ferry sync
//! leases`: an environment's leases.

use std::io::Write;

use clap::{Args, Subcommand};
use ferry_proto::integration::v1 as pb;

use crate::client::{ClientArgs, Session, all_pages};
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
    /// Run COMMAND while holding a sync lease on the mapping: the API key reaches it only
    /// when the sync is allowed (in FERRY_SYNC_API_KEY, or a 0600 file with --key-file),
    /// the lease is renewed while it runs, and it is stopped (SIGTERM, then SIGKILL after
    /// --grace-secs) when a renewal is refused. Exits with the command's status; 3 when
    /// the lease was never granted, 124 when the command was stopped.
    Exec(super::sync_exec::ExecArgs),
    /// An environment's sync leases: who holds them, since when, until when.
    Leases {
        /// The environment.
        env: String,
        /// Every lease still kept, ended ones too.
        #[arg(long)]
        all: bool,
        /// The leases whose syncs may still run (outstanding, or revoked and not yet heard).
        #[arg(long, conflicts_with = "all")]
        in_flight: bool,
    },
    /// Revoke every outstanding sync lease of an environment (admin).
    Revoke {
        /// The environment.
        env: String,
        /// Why, recorded on each lease.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// 0 when the sync is allowed, [`DENIED_EXIT`] when denied.
pub fn exit_status(r: &pb::AuthorizeSyncResponse) -> u8 {
    if r.allowed { 0 } else { DENIED_EXIT }
}

pub async fn run(args: SyncArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        SyncCommand::Exec(a) => return super::sync_exec::run(&s, a).await,
        SyncCommand::Leases { env, all, in_flight } => {
            let (parent, ic) = (names::env(&env), s.integration()?);
            let leases: Vec<pb::SyncLease> = all_pages(None, |page_size, page_token| {
                let (mut ic, parent) = (ic.clone(), parent.clone());
                async move {
                    let req = pb::ListSyncLeasesRequest { parent, page_size, page_token, show_ended: all, in_flight };
                    let r = ic.list_sync_leases(req).await?.into_inner();
                    Ok((r.sync_leases, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &leases)?;
        }
        SyncCommand::Revoke { env, reason } => {
            let req = pb::RevokeSyncLeasesRequest { parent: names::env(&env), reason, request_id: s.request_id() };
            let revoked = s.integration()?.revoke_sync_leases(req).await?.into_inner().revoked;
            match s.format {
                Format::Table => writeln!(
                    out,
                    "revoked {} sync lease(s){}",
                    revoked.len(),
                    revoked.iter().map(|n| format!("\n  {n}")).collect::<String>()
                )?,
                Format::Json => output::json(out, &serde_json::json!({ "revoked": revoked }))?,
            }
        }
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

//! `ferry snapshot`: snapshots of an environment's integrations, mappings and sync jobs.

use std::io::Write;

use clap::{Args, Subcommand};
use ferry_proto::integration::v1 as pb;

use crate::client::{ClientArgs, Session, all_pages};
use crate::output::{self, Format};
use crate::parse::names;
use crate::render::integration::{change_set_json, change_set_text};

/// Snapshots: an environment's integrations (credentials still sealed), mappings and sync
/// jobs, with a checksum; restore recreates exactly what was snapshotted.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    command: SnapshotCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// Snapshot an environment now.
    Create {
        /// Environment id.
        env: String,
        /// The snapshot id [default: assigned].
        #[arg(long)]
        id: Option<String>,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// Show one snapshot: counts and checksum, and with --full what it holds.
    Get {
        /// Environment id.
        env: String,
        /// Snapshot id.
        id: String,
        /// Also list the integrations (fingerprints, never keys), mappings and jobs held.
        #[arg(long)]
        full: bool,
    },
    /// List an environment's snapshots, newest first.
    List {
        /// Environment id.
        env: String,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Restore a snapshot into its environment: every resource in it (or only those named)
    /// is recreated as snapshotted; others are left alone. Prints what changed.
    Restore {
        /// Environment id (must be the snapshot's).
        env: String,
        /// Snapshot id.
        id: String,
        /// Only this integration, mapping or sync job, by full name (repeatable). Naming a
        /// mapping does not restore its integration: name both.
        #[arg(long = "resource", value_name = "NAME")]
        resources: Vec<String>,
    },
}

pub async fn run(args: SnapshotArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    let mut c = s.integration()?;
    match args.command {
        SnapshotCommand::Create { env, id, description } => {
            let req = pb::CreateSnapshotRequest {
                parent: names::env(&env),
                snapshot_id: id.unwrap_or_default(),
                description: description.unwrap_or_default(),
                request_id: s.request_id(),
            };
            let snap = c.create_snapshot(req).await?.into_inner();
            output::one(out, s.format, &snap)?;
        }
        SnapshotCommand::Get { env, id, full } => {
            let view = if full { pb::SnapshotView::Full } else { pb::SnapshotView::Basic };
            let req = pb::GetSnapshotRequest { name: names::snapshot(&env, &id), view: view as i32 };
            let snap = c.get_snapshot(req).await?.into_inner();
            output::one(out, s.format, &snap)?;
        }
        SnapshotCommand::List { env, limit } => {
            let parent = names::env(&env);
            let list = all_pages(limit, |page_size, page_token| {
                let mut c = c.clone();
                let req = pb::ListSnapshotsRequest { parent: parent.clone(), page_size, page_token };
                async move {
                    let r = c.list_snapshots(req).await?.into_inner();
                    Ok((r.snapshots, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &list)?;
        }
        SnapshotCommand::Restore { env, id, resources } => {
            let req = pb::RestoreSnapshotRequest {
                name: names::snapshot(&env, &id),
                environment: names::env(&env),
                resources,
                request_id: s.request_id(),
            };
            let changes = c.restore_snapshot(req).await?.into_inner();
            match s.format {
                Format::Table => write!(out, "{}", change_set_text(&changes))?,
                Format::Json => output::json(out, &change_set_json(&changes))?,
            }
        }
    }
    Ok(())
}

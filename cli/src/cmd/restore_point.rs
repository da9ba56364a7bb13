//! `ferry restore-point`: registry restore points, an environment's whole content kept
//! (groups, entities, links, projects, configuration items) and given back on demand.

use std::io::Write;

use clap::{Args, Subcommand};
use ferry_proto::registry::v1 as pb;

use crate::client::{ClientArgs, Session, all_pages};
use crate::output::{self, Format};
use crate::parse::names;
use crate::render::restore_point::{restored_json, restored_text};

/// Restore points of an environment's registry content. A refresh takes one of its
/// destination before the copy; an abort restores it. They expire after the registry's
/// retention (7 days by default).
#[derive(Debug, Args)]
pub struct RestorePointArgs {
    #[command(subcommand)]
    command: RestorePointCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum RestorePointCommand {
    /// Keep an environment's content now.
    Create {
        /// Environment id.
        env: String,
        /// The restore point id: lowercase letters, digits and '-', starting with a letter.
        id: String,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// Show one restore point: what it holds, when it expires.
    Get {
        /// Environment id.
        env: String,
        /// Restore point id.
        id: String,
    },
    /// List an environment's restore points, by id.
    List {
        /// Environment id.
        env: String,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Delete a restore point for good.
    Delete {
        /// Environment id.
        env: String,
        /// Restore point id.
        id: String,
    },
    /// Replace the environment's content with the restore point's (needs the admin role).
    /// Entity ids are new; every group's revision moves forward.
    Restore {
        /// Environment id.
        env: String,
        /// Restore point id.
        id: String,
        /// Confirm that the environment's current content is replaced.
        #[arg(long)]
        yes: bool,
    },
}

fn name(env: &str, id: &str) -> String {
    format!("{}/restorePoints/{id}", names::env(env))
}

pub async fn run(args: RestorePointArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    let mut c = s.client();
    match args.command {
        RestorePointCommand::Create { env, id, description } => {
            let req = pb::CreateRestorePointRequest {
                parent: names::env(&env),
                restore_point_id: id,
                restore_point: Some(pb::RestorePoint { description: description.unwrap_or_default(), ..Default::default() }),
                request_id: s.request_id(),
            };
            output::one(out, s.format, &c.create_restore_point(req).await?.into_inner())?;
        }
        RestorePointCommand::Get { env, id } => {
            let point = c.get_restore_point(pb::GetRestorePointRequest { name: name(&env, &id) }).await?.into_inner();
            output::one(out, s.format, &point)?;
        }
        RestorePointCommand::List { env, limit } => {
            let parent = names::env(&env);
            let list = all_pages(limit, |page_size, page_token| {
                let mut c = c.clone();
                let req = pb::ListRestorePointsRequest { parent: parent.clone(), page_size, page_token };
                async move {
                    let r = c.list_restore_points(req).await?.into_inner();
                    Ok((r.restore_points, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &list)?;
        }
        RestorePointCommand::Delete { env, id } => {
            let n = name(&env, &id);
            c.delete_restore_point(pb::DeleteRestorePointRequest { name: n.clone(), request_id: s.request_id() }).await?;
            match s.format {
                Format::Table => writeln!(out, "deleted {n}")?,
                Format::Json => output::json(out, &serde_json::json!({ "deleted": n }))?,
            }
        }
        RestorePointCommand::Restore { env, id, yes } => {
            if !yes {
                anyhow::bail!("restoring replaces everything environments/{env} holds now; run again with --yes to do it");
            }
            let req = pb::RestoreEnvironmentRequest { restore_point: name(&env, &id), request_id: s.request_id() };
            let r = c.restore_environment(req).await?.into_inner();
            match s.format {
                Format::Table => write!(out, "{}", restored_text(&r))?,
                Format::Json => output::json(out, &restored_json(&r))?,
            }
        }
    }
    Ok(())
}

//! `ferry group`: groups of entities in an environment, and cloning them (merge engine).

use std::io::Write;

use clap::{Args, Subcommand};
use ferry_proto::merge::v1 as merge;
use ferry_proto::registry::v1 as pb;
use serde_json::json;

use crate::client::{ClientArgs, Session, all_pages};
use crate::output;
use crate::parse::names;
use crate::progress;

/// Groups: sets of entities, unique by (kind, key), that merge and clone by key.
#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    command: GroupCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// Create an empty group.
    Create {
        /// Environment id.
        env: String,
        /// The group id: lowercase letters, digits and '-', starting with a letter.
        id: String,
        /// A name for people.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Show one group with its entity count and revision.
    Get {
        /// Environment id.
        env: String,
        /// Group id.
        group: String,
    },
    /// List the groups of an environment.
    List {
        /// Environment id.
        env: String,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Clone a group into a new one (merge engine job, watched): duplicated entities are
    /// copied, shared ones linked.
    Clone {
        /// Environment id.
        env: String,
        /// The group cloned.
        source: String,
        /// The new group's id.
        new_id: String,
        /// A name for people.
        #[arg(long)]
        display_name: Option<String>,
        /// Print the job as soon as it is queued instead of watching it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Delete a group. A group holding entities needs --force; one used by a project is
    /// always refused.
    Delete {
        /// Environment id.
        env: String,
        /// Group id.
        group: String,
        /// Also delete its duplicated entities and unlink its shared ones.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(args: GroupArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        GroupCommand::Create { env, id, display_name } => {
            let req = pb::CreateGroupRequest {
                parent: names::env(&env),
                group_id: id,
                group: Some(pb::Group { display_name: display_name.unwrap_or_default(), ..Default::default() }),
                request_id: s.request_id(),
            };
            let group = s.client().create_group(req).await?.into_inner();
            output::one(out, s.format, &group)?;
        }
        GroupCommand::Get { env, group } => {
            let req = pb::GetGroupRequest { name: names::group(&env, &group), ..Default::default() };
            let group = s.client().get_group(req).await?.into_inner();
            output::one(out, s.format, &group)?;
        }
        GroupCommand::List { env, limit } => {
            let parent = names::env(&env);
            let groups = all_pages(limit, |page_size, page_token| {
                let mut c = s.client();
                let parent = parent.clone();
                async move {
                    let r = c.list_groups(pb::ListGroupsRequest { parent, page_size, page_token }).await?.into_inner();
                    Ok((r.groups, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &groups)?;
        }
        GroupCommand::Clone { env, source, new_id, display_name, no_wait } => {
            let req = merge::CloneGroupRequest {
                source: names::group(&env, &source),
                group_id: new_id,
                display_name: display_name.unwrap_or_default(),
                request_id: s.request_id(),
            };
            let job = s.merge()?.clone_group(req).await?.into_inner();
            progress::follow(&s, job, no_wait, out).await?;
        }
        GroupCommand::Delete { env, group, force } => {
            let name = names::group(&env, &group);
            let req = pb::DeleteGroupRequest { name: name.clone(), force, request_id: s.request_id() };
            let r = s.client().delete_group(req).await?.into_inner();
            output::summary(
                out,
                s.format,
                &[
                    ("deleted", name.clone()),
                    ("deleted entities", r.deleted_entities.to_string()),
                    ("unlinked entities", r.unlinked_entities.to_string()),
                ],
                json!({
                    "name": name,
                    "deleted_entities": r.deleted_entities,
                    "unlinked_entities": r.unlinked_entities,
                }),
            )?;
        }
    }
    Ok(())
}

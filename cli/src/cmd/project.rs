//! `ferry project`: projects, their configuration items and reference resolution; cloning
//! and merging them (merge engine).

use std::io::Write;
use std::sync::atomic::{AtomicI64, Ordering};

use clap::{Args, Subcommand};
use ferry_proto::common::v1::EntityRef;
use ferry_proto::merge::v1 as merge;
use ferry_proto::registry::v1 as pb;
use serde_json::json;

use crate::client::{ClientArgs, Session, all_pages};
use crate::cmd::merge::Strategy;
use crate::error::{Hint, missing_dependencies, status_of};
use crate::output::{self, Format, Resource};
use crate::parse::{self, names};
use crate::progress;

/// Projects: configuration that references entities by (kind, key) through the project's
/// groups.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    #[command(subcommand)]
    command: ProjectCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum ProjectCommand {
    /// Create a project over one or more groups.
    Create {
        /// Environment id.
        env: String,
        /// The project id: lowercase letters, digits and '-', starting with a letter.
        id: String,
        /// A group the project resolves through, in order (repeatable, at least one).
        #[arg(long = "group", value_name = "GROUP", required = true)]
        groups: Vec<String>,
        /// A name for people.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Show one project.
    Get {
        /// Environment id.
        env: String,
        /// Project id.
        project: String,
    },
    /// List the projects of an environment.
    List {
        /// Environment id.
        env: String,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Delete a project and its configuration items.
    Delete {
        /// Environment id.
        env: String,
        /// Project id.
        project: String,
    },
    /// Clone a project (merge engine job, watched): the copy gets the groups you name and
    /// its configuration resolves against them.
    Clone {
        /// Environment id.
        env: String,
        /// The project cloned.
        source: String,
        /// The new project's id.
        new_id: String,
        /// A group the new project resolves through, in order (repeatable, at least one).
        #[arg(long = "group", value_name = "GROUP", required = true)]
        groups: Vec<String>,
        /// A name for people.
        #[arg(long)]
        display_name: Option<String>,
        /// Print the job as soon as it is queued instead of watching it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Merge project SOURCE into RECIPIENT (merge engine job, watched): delivers its config
    /// items. Refused, naming each missing (kind, key) and the group merge that supplies it,
    /// when the recipient's groups lack an entity they reference — unless
    /// --merge-groups-first.
    Merge {
        /// Environment id.
        env: String,
        /// The project merged from.
        source: String,
        /// The project merged into.
        recipient: String,
        /// Merge each source group into the recipient's corresponding group first (groups
        /// pair by position), in the same job.
        #[arg(long)]
        merge_groups_first: bool,
        /// How conflicts in those group merges are resolved.
        #[arg(long, value_enum, default_value_t)]
        strategy: Strategy,
        /// Let those group merges leave references dangling.
        #[arg(long)]
        proceed_with_missing_dependencies: bool,
        /// Print the job as soon as it is queued instead of watching it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Configuration items of a project.
    #[command(subcommand)]
    Item(ItemCommand),
    /// Resolve every reference of a project's configuration through its groups.
    Resolve {
        /// Environment id.
        env: String,
        /// Project id.
        project: String,
        /// Only show references that do not resolve.
        #[arg(long)]
        missing_only: bool,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
enum ItemCommand {
    /// Add a configuration item.
    Add {
        /// Environment id.
        env: String,
        /// Project id.
        project: String,
        /// The item id: lowercase letters, digits and '-', starting with a letter.
        item: String,
        /// The item's value, a JSON document.
        #[arg(long, value_name = "JSON")]
        value: String,
        /// An entity the item uses, as KIND:KEY (repeatable).
        #[arg(long = "ref", value_name = "KIND:KEY", value_parser = parse::entity_ref)]
        refs: Vec<EntityRef>,
    },
    /// List a project's configuration items.
    List {
        /// Environment id.
        env: String,
        /// Project id.
        project: String,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Delete a configuration item.
    Delete {
        /// Environment id.
        env: String,
        /// Project id.
        project: String,
        /// Item id.
        item: String,
    },
}

pub async fn run(args: ProjectArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        ProjectCommand::Create { env, id, groups, display_name } => {
            let req = pb::CreateProjectRequest {
                parent: names::env(&env),
                project_id: id,
                project: Some(pb::Project {
                    display_name: display_name.unwrap_or_default(),
                    groups: groups.iter().map(|g| names::group(&env, g)).collect(),
                    ..Default::default()
                }),
                request_id: s.request_id(),
            };
            let p = s.client().create_project(req).await?.into_inner();
            output::one(out, s.format, &p)?;
        }
        ProjectCommand::Get { env, project } => {
            let name = names::project(&env, &project);
            let p = s.client().get_project(pb::GetProjectRequest { name }).await?;
            output::one(out, s.format, p.get_ref())?;
        }
        ProjectCommand::List { env, limit } => {
            let parent = names::env(&env);
            let projects = all_pages(limit, |page_size, page_token| {
                let mut c = s.client();
                let req = pb::ListProjectsRequest { parent: parent.clone(), page_size, page_token };
                async move {
                    let r = c.list_projects(req).await?.into_inner();
                    Ok((r.projects, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &projects)?;
        }
        ProjectCommand::Delete { env, project } => {
            let name = names::project(&env, &project);
            let req = pb::DeleteProjectRequest { name: name.clone(), request_id: s.request_id() };
            let r = s.client().delete_project(req).await?.into_inner();
            output::summary(
                out,
                s.format,
                &[("deleted", name.clone()), ("deleted config items", r.deleted_config_items.to_string())],
                json!({ "name": name, "deleted_config_items": r.deleted_config_items }),
            )?;
        }
        ProjectCommand::Clone { env, source, new_id, groups, display_name, no_wait } => {
            let req = merge::CloneProjectRequest {
                source: names::project(&env, &source),
                project_id: new_id,
                display_name: display_name.unwrap_or_default(),
                groups: groups.iter().map(|g| names::group(&env, g)).collect(),
                request_id: s.request_id(),
            };
            let job = s.merge()?.clone_project(req).await?.into_inner();
            progress::follow(&s, job, no_wait, out).await?;
        }
        ProjectCommand::Merge { env, source, recipient, merge_groups_first, strategy, proceed_with_missing_dependencies, no_wait } => {
            let req = merge::MergeProjectRequest {
                source: names::project(&env, &source),
                recipient: names::project(&env, &recipient),
                merge_groups_first,
                strategy: merge::MergeStrategy::from(strategy) as i32,
                group_pairs: Vec::new(),
                group_merge_plans: Vec::new(),
                proceed_with_missing_dependencies,
                request_id: s.request_id(),
            };
            let result = async {
                let job = s.merge()?.merge_project(req).await?.into_inner();
                progress::follow(&s, job, no_wait, out).await
            }
            .await;
            result.map_err(|e| missing_hint(e, &env, &source, &recipient, merge_groups_first))?;
        }
        ProjectCommand::Item(item) => run_item(&s, item, out).await?,
        ProjectCommand::Resolve { env, project, missing_only, limit } => {
            resolve(&s, names::project(&env, &project), missing_only, limit, out).await?
        }
    }
    Ok(())
}

/// A refused project merge lists each missing (kind, key) and the group merge that supplies
/// it (the error renders them); this adds how to get them delivered in the same run.
fn missing_hint(e: anyhow::Error, env: &str, source: &str, recipient: &str, merged_groups: bool) -> anyhow::Error {
    let missing = status_of(&e).map_or(0, |st| missing_dependencies(st).len());
    if missing == 0 || merged_groups {
        return e;
    }
    e.context(Hint(format!(
        "{missing} missing; to merge the groups first, in the same job: ferry project merge {env} {source} {recipient} --merge-groups-first"
    )))
}

async fn run_item(s: &Session, cmd: ItemCommand, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    match cmd {
        ItemCommand::Add { env, project, item, value, refs } => {
            let req = pb::CreateConfigItemRequest {
                parent: names::project(&env, &project),
                config_item_id: item,
                config_item: Some(pb::ConfigItem {
                    value_json: parse::json_document(&value, "--value")?,
                    references: refs,
                    ..Default::default()
                }),
                request_id: s.request_id(),
            };
            let c = s.client().create_config_item(req).await?.into_inner();
            output::one(out, s.format, &c)?;
        }
        ItemCommand::List { env, project, limit } => {
            let parent = names::project(&env, &project);
            let items = all_pages(limit, |page_size, page_token| {
                let mut c = s.client();
                let req = pb::ListConfigItemsRequest { parent: parent.clone(), page_size, page_token };
                async move {
                    let r = c.list_config_items(req).await?.into_inner();
                    Ok((r.config_items, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &items)?;
        }
        ItemCommand::Delete { env, project, item } => {
            let name = names::config_item(&env, &project, &item);
            let req = pb::DeleteConfigItemRequest { name: name.clone(), request_id: s.request_id() };
            s.client().delete_config_item(req).await?;
            output::summary(out, s.format, &[("deleted", name.clone())], json!({ "name": name }))?;
        }
    }
    Ok(())
}

async fn resolve(s: &Session, name: String, missing_only: bool, limit: Option<usize>, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let missing = AtomicI64::new(0);
    let resolutions = all_pages(limit, |page_size, page_token| {
        let mut c = s.client();
        let req = pb::ResolveProjectRequest { name: name.clone(), page_size, page_token, missing_only };
        let missing = &missing;
        async move {
            let r = c.resolve_project(req).await?.into_inner();
            missing.store(r.missing_count, Ordering::Relaxed);
            Ok((r.resolutions, r.next_page_token))
        }
    })
    .await?;
    let missing = missing.into_inner();
    match s.format {
        Format::Table => {
            output::many(out, Format::Table, &resolutions)?;
            writeln!(out, "\n{missing} missing")?;
        }
        Format::Json => output::json(
            out,
            &json!({
                "resolutions": resolutions.iter().map(Resource::json).collect::<Vec<_>>(),
                "missing_count": missing,
            }),
        )?,
    }
    Ok(())
}

//! `ferry mapping`: mappings of an integration, the environment they are for and bound to.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use ferry_proto::integration::v1 as pb;
use serde_json::json;

use crate::client::{ClientArgs, Session, all_pages};
use crate::output;
use crate::parse::{self, names};

/// Mappings: an integration's field-mapping configuration for one environment. Provision a
/// sandbox's mapping in production inactive (--target-env sandbox) and activate it after a
/// refresh.
#[derive(Debug, Args)]
pub struct MappingArgs {
    #[command(subcommand)]
    command: MappingCommand,
    #[command(flatten)]
    client: ClientArgs,
}

/// A mapping's id within its integration.
#[derive(Debug, Args)]
struct MappingName {
    /// Environment id.
    env: String,
    /// Integration id.
    integration: String,
    /// Mapping id.
    id: String,
}

impl MappingName {
    fn name(&self) -> String {
        names::mapping(&self.env, &self.integration, &self.id)
    }
}

#[derive(Debug, Subcommand)]
enum MappingCommand {
    /// Create a mapping, inactive unless --active, bound to the environment it lives in.
    Create {
        #[command(flatten)]
        at: MappingName,
        /// The environment the mapping is for [default: the one it lives in]. One for
        /// another environment must be created inactive.
        #[arg(long, value_name = "ENV")]
        target_env: Option<String>,
        /// The field mapping, a JSON object [default: {}].
        #[arg(long, value_name = "JSON", conflicts_with = "field_mapping_file")]
        field_mapping: Option<String>,
        /// Read the field mapping from a file ('-' for standard input).
        #[arg(long, value_name = "FILE")]
        field_mapping_file: Option<PathBuf>,
        /// A name for people.
        #[arg(long)]
        display_name: Option<String>,
        /// Create it active.
        #[arg(long)]
        active: bool,
    },
    /// Show one mapping.
    Get {
        #[command(flatten)]
        at: MappingName,
    },
    /// List an integration's mappings, or (without INTEGRATION) all of an environment's.
    List {
        /// Environment id.
        env: String,
        /// Integration id [default: every integration].
        integration: Option<String>,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Activate a mapping. A fenced one, or one bound to another environment, needs
    /// --rebind.
    Activate {
        #[command(flatten)]
        at: MappingName,
        /// Bind it to the environment it lives in and lift its and its integration's fence.
        #[arg(long)]
        rebind: bool,
    },
    /// Deactivate a mapping.
    Deactivate {
        #[command(flatten)]
        at: MappingName,
    },
    /// Delete a mapping.
    Delete {
        #[command(flatten)]
        at: MappingName,
    },
}

pub async fn run(args: MappingArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    let mut c = s.integration()?;
    let mapping = match args.command {
        MappingCommand::Create { at, target_env, field_mapping, field_mapping_file, display_name, active } => {
            let fields = parse::json_from(field_mapping.as_deref(), field_mapping_file.as_deref(), "the field mapping")?
                .unwrap_or_else(|| "{}".to_owned());
            let is_object = serde_json::from_str::<serde_json::Value>(&fields).map(|v| v.is_object()).context("the field mapping")?;
            anyhow::ensure!(is_object, "the field mapping must be a JSON object");
            let req = pb::CreateMappingRequest {
                parent: names::integration(&at.env, &at.integration),
                mapping_id: at.id,
                mapping: Some(pb::Mapping {
                    display_name: display_name.unwrap_or_default(),
                    target_environment: target_env.map(|e| names::env(&e)).unwrap_or_default(),
                    active,
                    field_mapping_json: fields,
                    ..Default::default()
                }),
                request_id: s.request_id(),
            };
            c.create_mapping(req).await?.into_inner()
        }
        MappingCommand::Get { at } => c.get_mapping(pb::GetMappingRequest { name: at.name() }).await?.into_inner(),
        MappingCommand::List { env, integration, limit } => {
            let parent = names::integration(&env, integration.as_deref().unwrap_or("-"));
            let list = all_pages(limit, |page_size, page_token| {
                let mut c = c.clone();
                let req = pb::ListMappingsRequest { parent: parent.clone(), page_size, page_token };
                async move {
                    let r = c.list_mappings(req).await?.into_inner();
                    Ok((r.mappings, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &list)?;
            return Ok(());
        }
        MappingCommand::Activate { at, rebind } => {
            let req = pb::ActivateMappingRequest { name: at.name(), rebind, request_id: s.request_id() };
            c.activate_mapping(req).await?.into_inner()
        }
        MappingCommand::Deactivate { at } => {
            let req = pb::DeactivateMappingRequest { name: at.name(), request_id: s.request_id() };
            c.deactivate_mapping(req).await?.into_inner()
        }
        MappingCommand::Delete { at } => {
            let name = at.name();
            c.delete_mapping(pb::DeleteMappingRequest { name: name.clone(), request_id: s.request_id() }).await?;
            output::summary(out, s.format, &[("deleted", name.clone())], json!({ "name": name }))?;
            return Ok(());
        }
    };
    output::one(out, s.format, &mapping)?;
    Ok(())
}

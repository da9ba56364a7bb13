//! `ferry entity`: entities, their links to groups, and JSONL import/export.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use ferry_proto::common::v1::{EntityKind, EntityRef, SharingMode};
use ferry_proto::registry::v1 as pb;
use serde_json::json;

use crate::client::{ClientArgs, Session, all_pages};
use crate::cmd::jsonl;
use crate::output;
use crate::parse::{self, names};

/// Entities: keyed configuration (kind, key, payload), duplicated per group or shared.
#[derive(Debug, Args)]
pub struct EntityArgs {
    #[command(subcommand)]
    command: EntityCommand,
    #[command(flatten)]
    client: ClientArgs,
}

/// A JSON payload, inline or from a file.
#[derive(Debug, Args)]
struct Payload {
    /// The payload, a JSON document.
    #[arg(long, value_name = "JSON", conflicts_with = "payload_file")]
    payload: Option<String>,
    /// Read the payload from a file ('-' for standard input).
    #[arg(long, value_name = "FILE")]
    payload_file: Option<PathBuf>,
}

impl Payload {
    fn read(&self) -> anyhow::Result<Option<String>> {
        parse::json_from(self.payload.as_deref(), self.payload_file.as_deref(), "the payload")
    }
}

#[derive(Debug, Subcommand)]
enum EntityCommand {
    /// Create an entity in a group.
    Create {
        /// Environment id.
        env: String,
        /// Group id.
        group: String,
        /// Kind: data-source, lookup, custom-action, role, theme, portal, service, table
        /// or map (any case).
        #[arg(long, value_parser = parse::kind)]
        kind: EntityKind,
        /// The key field, unique per kind within a group.
        #[arg(long)]
        key: String,
        /// shared or duplicated [default: the kind's; portal must choose].
        #[arg(long, value_parser = parse::sharing)]
        sharing: Option<SharingMode>,
        #[command(flatten)]
        payload: Payload,
        /// An entity this one uses, as KIND:KEY (repeatable).
        #[arg(long = "ref", value_name = "KIND:KEY", value_parser = parse::entity_ref)]
        refs: Vec<EntityRef>,
    },
    /// Show one entity with its payload, by id (`get prod 12`) or by its key field in a
    /// group (`get prod test lookup:countries`).
    Get {
        /// Environment id.
        env: String,
        /// Entity id (a number) or full name; or, followed by KIND:KEY, a group id.
        id_or_group: String,
        /// The key field, as KIND:KEY: the entity the group holds under that key (its own
        /// or a shared one linked to it).
        #[arg(value_name = "KIND:KEY", value_parser = parse::entity_ref)]
        key: Option<EntityRef>,
    },
    /// List a group's entities, ordered by (kind, key).
    List {
        /// Environment id.
        env: String,
        /// Group id.
        group: String,
        /// Only this kind (repeatable).
        #[arg(long, value_parser = parse::kind)]
        kind: Vec<EntityKind>,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Replace an entity's payload and/or references (kind, key and sharing are fixed).
    Update {
        /// Environment id.
        env: String,
        /// Entity id (a number) or full name.
        id: String,
        #[command(flatten)]
        payload: Payload,
        /// The new references, as KIND:KEY (repeatable; replaces all of them).
        #[arg(long = "ref", value_name = "KIND:KEY", value_parser = parse::entity_ref)]
        refs: Vec<EntityRef>,
        /// Remove every reference.
        #[arg(long, conflicts_with = "refs")]
        clear_refs: bool,
    },
    /// Delete an entity. A duplicated one leaves its group; a shared one is deleted from
    /// every group it is linked to, which needs --confirm-all-groups.
    Delete {
        /// Environment id.
        env: String,
        /// Entity id (a number) or full name.
        id: String,
        /// Confirm deleting a shared entity from all its groups.
        #[arg(long)]
        confirm_all_groups: bool,
    },
    /// Link a shared entity to another group of its environment.
    Link {
        /// Environment id.
        env: String,
        /// Entity id (a number) or full name.
        id: String,
        /// Group id to link it to.
        group: String,
    },
    /// Remove one link of a shared entity (its last link cannot be removed: delete it).
    Unlink {
        /// Environment id.
        env: String,
        /// Entity id (a number) or full name.
        id: String,
        /// Group id to unlink it from.
        group: String,
    },
    /// Import entities into a group from JSONL, all or nothing.
    ///
    /// One JSON object per line: {"kind": "lookup", "key": "k", "sharing": "shared",
    /// "payload": {...}, "references": ["table:t" or {"kind": ..., "key": ...}]};
    /// sharing, payload and references are optional. `ferry entity export` writes
    /// this format.
    Import {
        /// Environment id.
        env: String,
        /// Group id.
        group: String,
        /// The JSONL file ('-' for standard input).
        file: PathBuf,
    },
    /// Write a group's entities as JSONL to standard output, ordered by (kind, key).
    Export {
        /// Environment id.
        env: String,
        /// Group id.
        group: String,
        /// Only this kind (repeatable).
        #[arg(long, value_parser = parse::kind)]
        kind: Vec<EntityKind>,
    },
}

pub async fn run(args: EntityArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    match args.command {
        EntityCommand::Create { env, group, kind, key, sharing, payload, refs } => {
            let req = pb::CreateEntityRequest {
                parent: names::group(&env, &group),
                entity: Some(pb::Entity {
                    kind: kind as i32,
                    key,
                    sharing: sharing.map_or(0, |m| m as i32),
                    payload_json: payload.read()?.unwrap_or_default(),
                    references: refs,
                    ..Default::default()
                }),
                request_id: s.request_id(),
            };
            let e = s.client().create_entity(req).await?.into_inner();
            output::one(out, s.format, &e)?;
        }
        EntityCommand::Get { env, id_or_group, key: None } => {
            let name = names::entity(&env, &id_or_group);
            let e = s.client().get_entity(pb::GetEntityRequest { name }).await?;
            output::one(out, s.format, e.get_ref())?;
        }
        EntityCommand::Get { env, id_or_group, key: Some(r) } => {
            let req = pb::LookupEntityRequest { group: names::group(&env, &id_or_group), kind: r.kind, key: r.key };
            let e = s.client().lookup_entity(req).await?;
            output::one(out, s.format, e.get_ref())?;
        }
        EntityCommand::List { env, group, kind, limit } => {
            let parent = names::group(&env, &group);
            let kinds: Vec<i32> = kind.iter().map(|k| *k as i32).collect();
            let entities = all_pages(limit, |page_size, page_token| {
                let mut c = s.client();
                let req = pb::ListEntitiesRequest { parent: parent.clone(), page_size, page_token, kinds: kinds.clone() };
                async move {
                    let r = c.list_entities(req).await?.into_inner();
                    Ok((r.entities, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &entities)?;
        }
        EntityCommand::Update { env, id, payload, refs, clear_refs } => {
            let payload = payload.read()?;
            let mut paths = Vec::new();
            if payload.is_some() {
                paths.push("payload_json".to_owned());
            }
            if !refs.is_empty() || clear_refs {
                paths.push("references".to_owned());
            }
            anyhow::ensure!(!paths.is_empty(), "nothing to update: pass --payload, --payload-file, --ref or --clear-refs");
            let req = pb::UpdateEntityRequest {
                entity: Some(pb::Entity {
                    name: names::entity(&env, &id),
                    payload_json: payload.unwrap_or_default(),
                    references: refs,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
                request_id: s.request_id(),
            };
            let e = s.client().update_entity(req).await?.into_inner();
            output::one(out, s.format, &e)?;
        }
        EntityCommand::Delete { env, id, confirm_all_groups } => {
            let name = names::entity(&env, &id);
            let req = pb::DeleteEntityRequest { name: name.clone(), confirm_all_groups, request_id: s.request_id() };
            let r = match s.client().delete_entity(req).await {
                Ok(r) => r.into_inner(),
                Err(status) if status.code() == tonic::Code::FailedPrecondition && !confirm_all_groups => {
                    return Err(anyhow::Error::new(status)
                        .context("a shared entity leaves every group it is linked to (pass --confirm-all-groups)"));
                }
                Err(status) => return Err(status.into()),
            };
            output::summary(
                out,
                s.format,
                &[("deleted", name.clone()), ("removed from", r.affected_groups.join(", "))],
                json!({ "name": name, "affected_groups": r.affected_groups }),
            )?;
        }
        EntityCommand::Link { env, id, group } => {
            let req =
                pb::LinkEntityRequest { name: names::entity(&env, &id), group: names::group(&env, &group), request_id: s.request_id() };
            let e = s.client().link_entity(req).await?.into_inner();
            output::one(out, s.format, &e)?;
        }
        EntityCommand::Unlink { env, id, group } => {
            let req =
                pb::UnlinkEntityRequest { name: names::entity(&env, &id), group: names::group(&env, &group), request_id: s.request_id() };
            let e = s.client().unlink_entity(req).await?.into_inner();
            output::one(out, s.format, &e)?;
        }
        EntityCommand::Import { env, group, file } => {
            jsonl::import(&s, names::group(&env, &group), &file, out).await?;
        }
        EntityCommand::Export { env, group, kind } => {
            let kinds = kind.iter().map(|k| *k as i32).collect();
            jsonl::export(&s, names::group(&env, &group), kinds, out).await?;
        }
    }
    Ok(())
}

//! `ferry integration`: integrations to external systems and their credentials.
//!
//! An API key is read from a file or standard input, never from a flag (flags end up in
//! shell history and process lists), and never printed: replies carry its fingerprint.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use ferry_proto::integration::v1 as pb;
use prost_types::FieldMask;
use serde_json::json;

use crate::client::{ClientArgs, Session, all_pages};
use crate::output;
use crate::parse::names;

/// Integrations: connections to external systems (rally, jira, …) with sealed credentials.
#[derive(Debug, Args)]
pub struct IntegrationArgs {
    #[command(subcommand)]
    command: IntegrationCommand,
    #[command(flatten)]
    client: ClientArgs,
}

/// An API key: write-only. Its `Debug` does not show it.
pub struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    /// The key from the text of a file or of standard input: surrounding whitespace (the
    /// final newline) dropped; it must be one non-empty line.
    #[cfg(test)]
    pub fn from_text(text: &str, from: &str) -> anyhow::Result<Self> {
        secret_from_text(text, from, "API key").map(Self)
    }

    fn read(file: Option<&Path>, stdin: bool) -> anyhow::Result<Option<Self>> {
        Ok(read_secret(file, stdin, "API key")?.map(Self))
    }

    fn into_inner(self) -> String {
        self.0
    }
}

/// A secret (`what`: "API key", "webhook secret") from the text of a file or of standard
/// input: surrounding whitespace (the final newline) dropped; one non-empty line.
pub(crate) fn secret_from_text(text: &str, from: &str, what: &str) -> anyhow::Result<String> {
    let key = text.trim();
    anyhow::ensure!(!key.is_empty(), "the {what} from {from} is empty");
    anyhow::ensure!(!key.contains(['\n', '\r']), "the {what} from {from} spans several lines; put only the {what} in it");
    Ok(key.to_owned())
}

/// A secret read from `file`, or standard input when `stdin`, never from a flag.
pub(crate) fn read_secret(file: Option<&Path>, stdin: bool, what: &str) -> anyhow::Result<Option<String>> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the {what} file {}", path.display()))?;
        return secret_from_text(&text, &path.display().to_string(), what).map(Some);
    }
    if stdin {
        let text = std::io::read_to_string(std::io::stdin()).with_context(|| format!("reading the {what} from standard input"))?;
        return secret_from_text(&text, "standard input", what).map(Some);
    }
    Ok(None)
}

/// Optional credentials for a new integration.
#[derive(Debug, Args)]
#[group(multiple = false)]
struct NewKey {
    /// Read the API key from this file (never echoed; replies show its fingerprint).
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// Read the API key from standard input.
    #[arg(long)]
    api_key_stdin: bool,
}

/// The replacement key of a rotation.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct RotatedKey {
    /// Read the new API key from this file (never echoed; replies show its fingerprint).
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// Read the new API key from standard input.
    #[arg(long)]
    api_key_stdin: bool,
}

#[derive(Debug, Subcommand)]
enum IntegrationCommand {
    /// Create an integration, inactive unless --active; with a key its credentials are
    /// ACTIVE, otherwise NONE.
    Create {
        /// Environment id.
        env: String,
        /// The integration id: lowercase letters, digits and '-', starting with a letter.
        id: String,
        /// The external system, lowercase: rally, jira, generic, …
        #[arg(long)]
        system: String,
        /// Absolute http(s) URL of the external system.
        #[arg(long)]
        base_url: String,
        /// A name for people.
        #[arg(long)]
        display_name: Option<String>,
        /// Create it active.
        #[arg(long)]
        active: bool,
        #[command(flatten)]
        key: NewKey,
    },
    /// Show one integration (credential state and fingerprint, never the key).
    Get {
        /// Environment id.
        env: String,
        /// Integration id.
        id: String,
    },
    /// List an environment's integrations.
    List {
        /// Environment id.
        env: String,
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Change the display name, base URL or active flag (only the ones given).
    Update {
        /// Environment id.
        env: String,
        /// Integration id.
        id: String,
        /// A name for people.
        #[arg(long)]
        display_name: Option<String>,
        /// Absolute http(s) URL of the external system.
        #[arg(long)]
        base_url: Option<String>,
        /// Activate (true) or deactivate (false).
        #[arg(long, value_name = "true|false")]
        active: Option<bool>,
    },
    /// Delete an integration. One with mappings needs --force; one used by sync jobs is
    /// always refused.
    Delete {
        /// Environment id.
        env: String,
        /// Integration id.
        id: String,
        /// Also delete its mappings.
        #[arg(long)]
        force: bool,
    },
    /// Replace the API key; credentials become ACTIVE with a new fingerprint.
    Rotate {
        /// Environment id.
        env: String,
        /// Integration id.
        id: String,
        #[command(flatten)]
        key: RotatedKey,
    },
    /// Suspend the credentials: kept sealed, withheld from runtimes (syncs are denied).
    Suspend {
        /// Environment id.
        env: String,
        /// Integration id.
        id: String,
    },
    /// Restore suspended credentials (same key, same fingerprint).
    Restore {
        /// Environment id.
        env: String,
        /// Integration id.
        id: String,
    },
    /// Re-encrypt every sealed value (credentials, snapshots) under the newest sealing key
    /// and show which keys are still in use: remove a key from the key file only once
    /// none is. Admin, every environment.
    Reseal {
        /// Change nothing: show what would be resealed and the keys in use.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(args: IntegrationArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let s = Session::connect(&args.client)?;
    let mut c = s.integration()?;
    let reply = match args.command {
        IntegrationCommand::Create { env, id, system, base_url, display_name, active, key } => {
            let api_key = ApiKey::read(key.api_key_file.as_deref(), key.api_key_stdin)?;
            let req = pb::CreateIntegrationRequest {
                parent: names::env(&env),
                integration_id: id,
                integration: Some(pb::Integration {
                    display_name: display_name.unwrap_or_default(),
                    external_system: system,
                    base_url,
                    active,
                    ..Default::default()
                }),
                api_key: api_key.map(ApiKey::into_inner).unwrap_or_default(),
                request_id: s.request_id(),
            };
            c.create_integration(req).await?.into_inner()
        }
        IntegrationCommand::Get { env, id } => {
            c.get_integration(pb::GetIntegrationRequest { name: names::integration(&env, &id) }).await?.into_inner()
        }
        IntegrationCommand::List { env, limit } => {
            let parent = names::env(&env);
            let list = all_pages(limit, |page_size, page_token| {
                let mut c = c.clone();
                let req = pb::ListIntegrationsRequest { parent: parent.clone(), page_size, page_token };
                async move {
                    let r = c.list_integrations(req).await?.into_inner();
                    Ok((r.integrations, r.next_page_token))
                }
            })
            .await?;
            output::many(out, s.format, &list)?;
            return Ok(());
        }
        IntegrationCommand::Update { env, id, display_name, base_url, active } => {
            // An empty mask would mean "all three", blanking what was not given.
            let mut paths = Vec::new();
            let mut integration = pb::Integration { name: names::integration(&env, &id), ..Default::default() };
            if let Some(d) = display_name {
                integration.display_name = d;
                paths.push("display_name".to_owned());
            }
            if let Some(u) = base_url {
                integration.base_url = u;
                paths.push("base_url".to_owned());
            }
            if let Some(a) = active {
                integration.active = a;
                paths.push("active".to_owned());
            }
            anyhow::ensure!(!paths.is_empty(), "nothing to update: give --display-name, --base-url or --active");
            let req = pb::UpdateIntegrationRequest {
                integration: Some(integration),
                update_mask: Some(FieldMask { paths }),
                request_id: s.request_id(),
            };
            c.update_integration(req).await?.into_inner()
        }
        IntegrationCommand::Delete { env, id, force } => {
            let name = names::integration(&env, &id);
            let req = pb::DeleteIntegrationRequest { name: name.clone(), force, request_id: s.request_id() };
            let r = c.delete_integration(req).await?.into_inner();
            output::summary(
                out,
                s.format,
                &[("deleted", name.clone()), ("deleted mappings", r.deleted_mappings.to_string())],
                json!({ "name": name, "deleted_mappings": r.deleted_mappings }),
            )?;
            return Ok(());
        }
        IntegrationCommand::Rotate { env, id, key } => {
            let api_key = ApiKey::read(key.api_key_file.as_deref(), key.api_key_stdin)?
                .context("give the new key with --api-key-file FILE or --api-key-stdin")?;
            let req = pb::RotateCredentialsRequest {
                name: names::integration(&env, &id),
                api_key: api_key.into_inner(),
                request_id: s.request_id(),
            };
            c.rotate_credentials(req).await?.into_inner()
        }
        IntegrationCommand::Suspend { env, id } => {
            let req = pb::SuspendCredentialsRequest { name: names::integration(&env, &id), request_id: s.request_id() };
            c.suspend_credentials(req).await?.into_inner()
        }
        IntegrationCommand::Restore { env, id } => {
            let req = pb::RestoreCredentialsRequest { name: names::integration(&env, &id), request_id: s.request_id() };
            c.restore_credentials(req).await?.into_inner()
        }
        IntegrationCommand::Reseal { dry_run } => {
            let req =
                pb::ResealCredentialsRequest { validate_only: dry_run, request_id: if dry_run { String::new() } else { s.request_id() } };
            let r = c.reseal_credentials(req).await?.into_inner();
            crate::render::reseal::summary(out, s.format, &r, dry_run)?;
            return Ok(());
        }
    };
    output::one(out, s.format, &reply)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::output::{Format, Resource};

    const KEY: &str = "sk-live-0123456789abcdef";

    #[test]
    fn the_key_is_never_a_plain_flag() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["ferry", "integration", "create", "dev", "rally", "--system", "rally", "--base-url", "https://r.example"];
            argv.extend(extra);
            crate::Cli::try_parse_from(argv)
        };
        assert!(parse(&["--api-key", KEY]).is_err());
        assert!(parse(&["--api-key-file", "k.txt"]).is_ok());
        assert!(parse(&["--api-key-file", "k.txt", "--api-key-stdin"]).is_err(), "one source only");
        assert!(crate::Cli::try_parse_from(["ferry", "integration", "rotate", "dev", "rally"]).is_err(), "rotate needs a key");
    }

    #[test]
    fn the_key_is_read_trimmed_and_never_shown() {
        let key = ApiKey::from_text(&format!("{KEY}\n"), "k.txt").expect("a key");
        assert!(!format!("{key:?}").contains(KEY));
        assert!(ApiKey::from_text(" \n", "k.txt").is_err());
        let e = ApiKey::from_text(&format!("{KEY}\nsecond"), "k.txt").expect_err("two lines");
        assert!(!crate::render_error(&e).contains(KEY), "errors never quote the key");
        assert_eq!(key.into_inner(), KEY);
    }

    #[test]
    fn rendered_integrations_carry_the_fingerprint_not_the_key() {
        let i = pb::Integration {
            name: "environments/dev/integrations/rally".into(),
            external_system: "rally".into(),
            base_url: "https://r.example".into(),
            credential_state: pb::CredentialState::Active as i32,
            credential_fingerprint: "3f2a9c0d11e4b7a8".into(),
            ..Default::default()
        };
        for format in [Format::Table, Format::Json] {
            let mut out = Vec::new();
            output::one(&mut out, format, &i).expect("render");
            output::many(&mut out, format, std::slice::from_ref(&i)).expect("render");
            let text = String::from_utf8(out).expect("utf-8");
            assert!(text.contains("3f2a9c0d11e4b7a8") && !text.contains(KEY), "{text}");
        }
        assert!(!i.json().to_string().contains(KEY));
    }

    #[test]
    fn reseal_takes_dry_run() {
        assert!(crate::Cli::try_parse_from(["ferry", "integration", "reseal", "--dry-run"]).is_ok());
        assert!(crate::Cli::try_parse_from(["ferry", "integration", "reseal", "dev"]).is_err());
    }
}

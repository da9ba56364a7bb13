//! The connection every registry command shares: flags, token lookup, the generated client
//! with the bearer-token interceptor, request ids and paging.

use std::future::Future;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferry_kit::client::ClientInterceptor;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::output::Format;

/// Where the token is looked for when neither `--token` nor `--token-file` is given
/// (what `ferry up` writes with its default data folder).
pub const DEFAULT_TOKEN_FILE: &str = ".ferry/admin.token";

/// Largest message sent or accepted; the registry accepts 64 MiB.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Most items asked for in one page.
const MAX_PAGE: usize = 1000;

/// Connection and output flags of every registry command.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection and output")]
pub struct ClientArgs {
    /// group-registry URL.
    #[arg(long, env = "FERRY_REGISTRY_URL", default_value = "http://127.0.0.1:50051", global = true)]
    pub registry: String,
    /// Bearer token (default: the contents of --token-file).
    #[arg(long, env = "FERRY_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// File holding the bearer token [default: .ferry/admin.token when it exists].
    #[arg(long, env = "FERRY_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// Output: aligned columns (table) or JSON (json).
    #[arg(short, long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
    /// request_id of a mutation, to retry it safely with the same id (default: a fresh
    /// random id).
    #[arg(long, global = true)]
    pub request_id: Option<String>,
}

/// The generated registry client with the bearer token and trace context on every call.
pub type Registry = RegistryServiceClient<InterceptedService<Channel, ClientInterceptor>>;

/// What a registry command works with.
pub struct Session {
    pub registry: Registry,
    pub format: Format,
    request_id: Option<String>,
}

impl Session {
    /// A lazily connecting client: nothing is dialled before the first call.
    pub fn connect(args: &ClientArgs) -> anyhow::Result<Self> {
        let token = token(args)?;
        let channel = ferry_kit::client::channel(&args.registry)?;
        let interceptor = ClientInterceptor::new(token.as_deref())?;
        let registry = RegistryServiceClient::with_interceptor(channel, interceptor)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self { registry, format: args.output, request_id: args.request_id.clone() })
    }

    /// The request id of this command's mutation: `--request-id`, or a fresh one.
    pub fn request_id(&self) -> String {
        self.request_id.clone().unwrap_or_else(crate::parse::request_id)
    }

    /// A client for one call (clones share the connection).
    pub fn client(&self) -> Registry {
        self.registry.clone()
    }
}

/// `--token`, else the token file; `None` only when the default file does not exist.
fn token(args: &ClientArgs) -> anyhow::Result<Option<String>> {
    if let Some(t) = args.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_owned()));
    }
    let (path, explicit) = match &args.token_file {
        Some(p) => (p.as_path(), true),
        None => (Path::new(DEFAULT_TOKEN_FILE), false),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let t = text.trim();
            anyhow::ensure!(!t.is_empty(), "token file {} is empty", path.display());
            Ok(Some(t.to_owned()))
        }
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading token file {}", path.display())),
    }
}

/// Follows `next_page_token` until the end, or until `limit` items.
///
/// `fetch(page_size, page_token)` makes one call and returns the page and the next token.
pub async fn all_pages<T, F, Fut>(limit: Option<usize>, mut fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(i32, String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let want = limit.map_or(MAX_PAGE, |l| l.saturating_sub(items.len()).min(MAX_PAGE));
        if want == 0 {
            break;
        }
        let size = i32::try_from(want).unwrap_or(i32::MAX);
        let (page, next) = fetch(size, std::mem::take(&mut token)).await?;
        items.extend(page);
        if next.is_empty() {
            break;
        }
        token = next;
    }
    if let Some(l) = limit {
        items.truncate(l);
    }
    Ok(items)
}

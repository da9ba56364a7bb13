//! The connection every client command shares: flags, token lookup, the generated clients
//! (registry, merge engine, integration control, refresh coordinator) with the bearer-token interceptor,
//! request ids and paging.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use ferry_kit::client::{ClientInterceptor, ClientTls, channel_with};
use ferry_proto::audit::v1::audit_service_client::AuditServiceClient;
use ferry_proto::integration::v1::integration_service_client::IntegrationServiceClient;
use ferry_proto::merge::v1::merge_service_client::MergeServiceClient;
use ferry_proto::refresh::v1::refresh_service_client::RefreshServiceClient;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::output::Format;

/// Where the token is looked for when neither `--token` nor `--token-file` is given
/// (what `ferry up` writes with its default data folder).
pub const DEFAULT_TOKEN_FILE: &str = ".ferry/admin.token";

/// Largest message sent or accepted; the registry accepts 64 MiB.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Connection and output flags of every client command.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connection and output")]
pub struct ClientArgs {
    /// group-registry URL.
    #[arg(long, env = "FERRY_REGISTRY_URL", default_value = "http://127.0.0.1:50051", global = true)]
    pub registry: String,
    /// merge-engine URL (merge, clone and jobs commands).
    #[arg(long = "merge", value_name = "URL", env = "FERRY_MERGE_URL", default_value = "http://127.0.0.1:50052", global = true)]
    pub merge_url: String,
    /// integration-control URL (integration, mapping, job, snapshot and sync commands).
    // The id differs from the flag: commands have their own `integration` arguments.
    #[arg(
        long = "integration",
        value_name = "URL",
        env = "FERRY_INTEGRATION_URL",
        default_value = "http://127.0.0.1:50053",
        global = true
    )]
    pub integration_url: String,
    /// refresh-coordinator URL (refresh and promote commands).
    #[arg(long = "refresh", value_name = "URL", env = "FERRY_REFRESH_URL", default_value = "http://127.0.0.1:50054", global = true)]
    pub refresh_url: String,
    /// Bearer token (default: the contents of --token-file).
    #[arg(long, env = "FERRY_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// File holding the bearer token [default: .ferry/admin.token when it exists].
    #[arg(long, env = "FERRY_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// PEM CA bundle that signed the services' certificates (needed for `https://` URLs).
    #[arg(long, env = "FERRY_TLS_CA_FILE", value_name = "PEM", global = true)]
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate, for services that require mutual TLS (with --tls-key-file).
    #[arg(long, env = "FERRY_TLS_CERT_FILE", value_name = "PEM", global = true)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long, env = "FERRY_TLS_KEY_FILE", value_name = "PEM", global = true)]
    pub tls_key_file: Option<PathBuf>,
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

/// The generated merge-engine client, with the same interceptor.
pub type Merge = MergeServiceClient<InterceptedService<Channel, ClientInterceptor>>;

/// The generated integration-control client, with the same interceptor.
pub type Integration = IntegrationServiceClient<InterceptedService<Channel, ClientInterceptor>>;

/// The generated refresh-coordinator client, with the same interceptor.
pub type Refresh = RefreshServiceClient<InterceptedService<Channel, ClientInterceptor>>;

/// The generated audit client of one service, with the same interceptor.
pub type Audit = AuditServiceClient<InterceptedService<Channel, ClientInterceptor>>;

/// The four services, each with its own audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    Registry,
    Merge,
    Integration,
    Refresh,
}

impl Service {
    pub const ALL: [Service; 4] = [Service::Registry, Service::Merge, Service::Integration, Service::Refresh];

    /// The service's name in its events.
    pub fn name(self) -> &'static str {
        match self {
            Service::Registry => "group-registry",
            Service::Merge => "merge-engine",
            Service::Integration => "integration-control",
            Service::Refresh => "refresh-coordinator",
        }
    }
}

/// What a client command works with.
pub struct Session {
    pub registry: Registry,
    pub format: Format,
    request_id: Option<String>,
    interceptor: ClientInterceptor,
    tls: ClientTls,
    registry_url: String,
    merge_url: String,
    integration_url: String,
    refresh_url: String,
    merge: OnceLock<Merge>,
    integration: OnceLock<Integration>,
    refresh: OnceLock<Refresh>,
}

impl Session {
    /// A lazily connecting client: nothing is dialled before the first call, and the merge
    /// and integration clients are not even built before a command asks for them.
    pub fn connect(args: &ClientArgs) -> anyhow::Result<Self> {
        let token = token(args)?;
        let tls = ClientTls::load(args.tls_ca_file.as_deref(), args.tls_cert_file.as_deref(), args.tls_key_file.as_deref())?;
        let channel = channel_with(&args.registry, &tls).with_context(|| format!("--registry {}", args.registry))?;
        let interceptor = ClientInterceptor::new(token.as_deref())?;
        let registry = RegistryServiceClient::with_interceptor(channel, interceptor.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            registry,
            format: args.output,
            request_id: args.request_id.clone(),
            interceptor,
            tls,
            registry_url: args.registry.clone(),
            merge_url: args.merge_url.clone(),
            integration_url: args.integration_url.clone(),
            refresh_url: args.refresh_url.clone(),
            merge: OnceLock::new(),
            integration: OnceLock::new(),
            refresh: OnceLock::new(),
        })
    }

    /// The request id of this command's mutation: `--request-id`, or a fresh one.
    pub fn request_id(&self) -> String {
        self.request_id.clone().unwrap_or_else(crate::parse::request_id)
    }

    /// A client for one call (clones share the connection).
    pub fn client(&self) -> Registry {
        self.registry.clone()
    }

    /// A merge-engine client (`--merge`), created on first use.
    pub fn merge(&self) -> anyhow::Result<Merge> {
        if let Some(c) = self.merge.get() {
            return Ok(c.clone());
        }
        let channel = channel_with(&self.merge_url, &self.tls).with_context(|| format!("--merge {}", self.merge_url))?;
        let client = MergeServiceClient::with_interceptor(channel, self.interceptor.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(self.merge.get_or_init(|| client).clone())
    }

    /// An integration-control client (`--integration`), created on first use.
    pub fn integration(&self) -> anyhow::Result<Integration> {
        if let Some(c) = self.integration.get() {
            return Ok(c.clone());
        }
        let channel = channel_with(&self.integration_url, &self.tls).with_context(|| format!("--integration {}", self.integration_url))?;
        let client = IntegrationServiceClient::with_interceptor(channel, self.interceptor.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(self.integration.get_or_init(|| client).clone())
    }

    /// A refresh-coordinator client (`--refresh`), created on first use.
    pub fn refresh(&self) -> anyhow::Result<Refresh> {
        if let Some(c) = self.refresh.get() {
            return Ok(c.clone());
        }
        let channel = channel_with(&self.refresh_url, &self.tls).with_context(|| format!("--refresh {}", self.refresh_url))?;
        let client = RefreshServiceClient::with_interceptor(channel, self.interceptor.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(self.refresh.get_or_init(|| client).clone())
    }
}

impl Session {
    /// The audit client of `service`, at its URL (`--registry`, `--merge`, …).
    pub fn audit(&self, service: Service) -> anyhow::Result<Audit> {
        let (flag, url) = match service {
            Service::Registry => ("--registry", &self.registry_url),
            Service::Merge => ("--merge", &self.merge_url),
            Service::Integration => ("--integration", &self.integration_url),
            Service::Refresh => ("--refresh", &self.refresh_url),
        };
        let channel = channel_with(url, &self.tls).with_context(|| format!("{flag} {url}"))?;
        Ok(AuditServiceClient::with_interceptor(channel, self.interceptor.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES))
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

/// Follows `next_page_token` until the end, or until `limit` items (see
/// `ferry_kit::client::all_pages`).
pub async fn all_pages<T, F, Fut>(limit: Option<usize>, fetch: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(i32, String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), tonic::Status>>,
{
    Ok(ferry_kit::client::all_pages(limit, fetch).await?)
}

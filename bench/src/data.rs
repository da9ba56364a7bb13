//! Databases, the in-process registry, and the data set: a source and a recipient group of
//! N entities each, half the keys in both, a realistic mix of kinds (copies and links both
//! happen), payloads of about 500 bytes, one in seven overlapping keys with other content.

use anyhow::Context;
use ferry_kit::client::{ClientInterceptor, channel};
use ferry_kit::config::CommonArgs;
use ferry_proto::registry::v1 as pb;
use ferry_proto::registry::v1::registry_service_client::RegistryServiceClient;
use sea_orm::{ConnectionTrait, Database};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Client = RegistryServiceClient<InterceptedService<Channel, ClientInterceptor>>;

pub const ENV: &str = "environments/bench";
pub const SOURCE: &str = "environments/bench/groups/source";
pub const RECIPIENT: &str = "environments/bench/groups/recipient";
pub const CLONE: &str = "environments/bench/groups/clone";

pub struct Databases {
    admin: String,
    pub services_registry: String,
    pub merge: String,
    pub raw_registry: String,
}

impl Databases {
    const NAMES: [&'static str; 3] = ["ferry_bench_registry", "ferry_bench_merge", "ferry_bench_raw"];

    pub async fn create(admin: &str) -> anyhow::Result<Self> {
        let [services_registry, merge, raw_registry] = fresh_databases(admin, Self::NAMES).await?;
        Ok(Self { admin: admin.to_owned(), services_registry, merge, raw_registry })
    }

    pub async fn drop_all(&self) {
        drop_databases(&self.admin, Self::NAMES).await;
    }

    /// Vacuums the loaded registry database, as autovacuum does within a minute or so of a
    /// bulk load: it sets the visibility map, which lets PostgreSQL answer probes from a
    /// covering index alone. Both runs start from this state.
    pub async fn vacuum(&self) -> anyhow::Result<()> {
        let db = Database::connect(&self.services_registry).await.context("connecting to the registry database")?;
        db.execute_unprepared("VACUUM (ANALYZE)").await?;
        db.close().await?;
        Ok(())
    }

    /// Makes the raw SQL's registry database a file copy of the services' one (`CREATE
    /// DATABASE … TEMPLATE`): the same rows, pages, statistics and visibility map, without
    /// loading the data a second time. Nothing may be connected to the services' database.
    pub async fn copy_for_raw(&self) -> anyhow::Result<()> {
        let [services, raw] = [Self::NAMES[0], Self::NAMES[2]];
        let db = Database::connect(&self.admin).await.context("connecting to --database-url")?;
        db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {raw} WITH (FORCE)")).await?;
        db.execute_unprepared(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{services}'")).await?;
        db.execute_unprepared(&format!("CREATE DATABASE {raw} TEMPLATE {services} STRATEGY FILE_COPY")).await?;
        db.close().await?;
        Ok(())
    }
}

/// Drops and creates each database `names[i]` on the server of `admin` (a PostgreSQL URL
/// whose user may create databases); returns their URLs.
pub async fn fresh_databases<const N: usize>(admin: &str, names: [&str; N]) -> anyhow::Result<[String; N]> {
    let db = Database::connect(admin).await.context("connecting to --database-url")?;
    for name in names {
        db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
        db.execute_unprepared(&format!("CREATE DATABASE {name}")).await?;
    }
    db.close().await?;
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).context("database url has no database part")?;
    Ok(names.map(|n| format!("{base}/{n}")))
}

/// Drops the databases `names` on the server of `admin` (cleanup: a failure is reported,
/// not fatal).
pub async fn drop_databases(admin: &str, names: impl IntoIterator<Item = &str>) {
    let db = match Database::connect(admin).await {
        Ok(db) => db,
        Err(e) => return eprintln!("cleanup: connecting to --database-url: {e}"),
    };
    for name in names {
        if let Err(e) = db.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await {
            eprintln!("cleanup: dropping database {name}: {e}");
        }
    }
}

pub struct Registry {
    pub url: String,
    pub client: Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ferry_kit::Error>>,
}

impl Registry {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The registry in-process on loopback without authentication.
/// Its background pruner waits a day between passes: a bench times pruning itself.
pub async fn start_registry(database_url: &str) -> anyhow::Result<Registry> {
    let common = CommonArgs { no_auth: true, shutdown_grace_secs: 1, prune_interval_secs: 86_400, ..CommonArgs::default() };
    start_registry_with(database_url, common, None).await
}

/// The registry in-process on loopback with `common`; the returned client presents `token`.
pub async fn start_registry_with(database_url: &str, common: CommonArgs, token: Option<&str>) -> anyhow::Result<Registry> {
    let config = group_registry::Config::new("127.0.0.1:0".parse()?, database_url.to_owned(), common);
    let server = group_registry::build(&config).await?;
    let url = format!("http://{}", server.local_addr());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = rx.await;
    }));
    let client = RegistryServiceClient::with_interceptor(channel(&url)?, ClientInterceptor::new(token)?)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    Ok(Registry { url, client, stop, task })
}

/// Kinds by `i % 10`: four duplicated (copies), six shared (links).
const KINDS: [i32; 10] = [7, 8, 9, 7, 2, 1, 4, 5, 3, 2];

pub fn entity(i: usize, side: &str) -> pb::Entity {
    let kind = KINDS[i % 10];
    // Overlapping keys: most have the same content on both sides (skips), one in seven not.
    let variant = if i.is_multiple_of(7) { side } else { "same" };
    let filler = "x".repeat(420);
    pb::Entity {
        kind,
        key: format!("entity-{i:09}"),
        payload_json: format!(r#"{{"id":{i},"variant":"{variant}","settings":{{"enabled":true,"retries":3}},"note":"{filler}"}}"#),
        ..Default::default()
    }
}

/// Entities one import call carries at most: a call is one transaction and must end within
/// the server's request timeout (300 s), so 10M entities go in ten calls.
const PER_IMPORT: usize = 1_000_000;

pub async fn import(client: &Client, group: &str, range: std::ops::Range<usize>, side: &'static str) -> anyhow::Result<()> {
    let all: Vec<usize> = range.collect();
    for part in all.chunks(PER_IMPORT) {
        let group = group.to_owned();
        let msgs = tokio_stream::iter(
            part.chunks(5000)
                .enumerate()
                .map(move |(n, chunk)| pb::ImportEntitiesRequest {
                    parent: if n == 0 { group.clone() } else { String::new() },
                    entities: chunk.iter().map(|i| entity(*i, side)).collect(),
                    request_id: String::new(),
                })
                .collect::<Vec<_>>(),
        );
        client.clone().import_entities(msgs).await.context("import")?;
    }
    Ok(())
}

/// Creates the environment and groups and imports the data; `with_recipient` adds the
/// recipient group (a merge), otherwise only the source is loaded (a clone).
pub async fn load(registry: &Registry, n: usize, with_recipient: bool) -> anyhow::Result<()> {
    let mut c = registry.client.clone();
    c.create_environment(pb::CreateEnvironmentRequest {
        environment_id: "bench".into(),
        environment: Some(pb::Environment { tier: 2, ..Default::default() }),
        request_id: String::new(),
    })
    .await?;
    for (id, range, side) in [("source", 0..n, "source"), ("recipient", n / 2..n / 2 + n, "recipient")] {
        if id == "recipient" && !with_recipient {
            continue;
        }
        c.create_group(pb::CreateGroupRequest { parent: ENV.into(), group_id: id.into(), ..Default::default() }).await?;
        import(&registry.client, &format!("{ENV}/groups/{id}"), range, side).await?;
    }
    Ok(())
}

/// The recipient's entity count after the work (printed so a run can be checked).
pub async fn verify(registry: &Registry, workload: crate::Workload) -> anyhow::Result<i64> {
    let name = match workload {
        crate::Workload::Merge => RECIPIENT,
        crate::Workload::Clone => CLONE,
    };
    Ok(registry.client.clone().get_group(pb::GetGroupRequest { name: name.into(), ..Default::default() }).await?.into_inner().entity_count)
}

//! The registry as production runs it (authentication on, a tokens file, and with `jwt`
//! JWTs too, checked against a JWKS file) and a realistic data set: two environments, four groups each, N entities of the merge bench's kinds
//! and payloads spread over the groups.

use std::io::Write;

use anyhow::Context;
use ferry_kit::config::CommonArgs;
use ferry_proto::registry::v1 as pb;
use rand::Rng;

use crate::data::{self, Registry};

const ENVIRONMENTS: [(&str, i32); 2] = [("prod", 1), ("test", 2)];
const GROUPS: [&str; 4] = ["crm", "billing", "portal", "reporting"];

/// The seeded registry and what the load picks from.
pub struct Seeded {
    /// Its client presents the admin token (seeding creates environments).
    pub registry: Registry,
    /// An operator token: what the load presents, as an ordinary writer would.
    pub operator_token: String,
    /// With `jwt`: an operator's JWT (RS256, an hour), the same rights as `operator_token`.
    pub operator_jwt: Option<String>,
    pub groups: Vec<String>,
    /// Names of every seeded entity (`environments/{env}/entities/{id}`).
    pub entities: Vec<String>,
    /// Holds the tokens file and the SQLite database; removed on drop.
    _dir: tempfile::TempDir,
}

fn token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the registry on `database_url` (a SQLite file in a fresh temporary folder when
/// `None`), accepting JWTs too with `jwt`, and loads `n` entities through its API (not
/// timed).
pub async fn seed(database_url: Option<&str>, n: usize, jwt: bool) -> anyhow::Result<Seeded> {
    let dir = tempfile::tempdir().context("temporary folder")?;
    let (admin, operator) = (token(), token());
    let tokens_file = dir.path().join("tokens");
    let mut f = std::fs::File::create(&tokens_file)?;
    writeln!(f, "{admin} admin *\n{operator} operator *")?;
    let url = match database_url {
        Some(u) => u.to_owned(),
        None => format!("sqlite://{}", dir.path().join("registry.db").display()),
    };
    let mut common = CommonArgs { tokens_file: Some(tokens_file), shutdown_grace_secs: 1, ..CommonArgs::default() };
    let operator_jwt = jwt.then(|| jwt_issuer(dir.path(), &mut common)).transpose()?;
    let registry = data::start_registry_with(&url, common, Some(&admin)).await?;
    let mut c = registry.client.clone();
    let mut groups = Vec::new();
    for (env, tier) in ENVIRONMENTS {
        c.create_environment(pb::CreateEnvironmentRequest {
            environment_id: env.into(),
            environment: Some(pb::Environment { tier, ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .with_context(|| format!("creating environment {env}"))?;
        for g in GROUPS {
            let parent = format!("environments/{env}");
            c.create_group(pb::CreateGroupRequest { parent, group_id: g.into(), ..Default::default() }).await?;
            groups.push(format!("environments/{env}/groups/{g}"));
        }
    }
    let per = n.div_ceil(groups.len());
    let mut entities = Vec::with_capacity(n);
    for (i, group) in groups.iter().enumerate() {
        let range = (i * per).min(n)..((i + 1) * per).min(n);
        if !range.is_empty() {
            data::import(&registry.client, group, range, "load").await?;
        }
        entities.extend(list_names(&registry.client, group).await?);
    }
    anyhow::ensure!(entities.len() == n, "seeded {} entities, expected {n}", entities.len());
    Ok(Seeded { registry, operator_token: operator, operator_jwt, groups, entities, _dir: dir })
}

/// Sets the registry's JWT flags to a test issuer's JWKS file in `dir`; an operator's
/// token of that issuer.
fn jwt_issuer(dir: &std::path::Path, common: &mut CommonArgs) -> anyhow::Result<String> {
    use ferry_testkit::jwt::{SigningKey, claims, jwks};
    const ISSUER: &str = "https://issuer.bench.invalid";
    let key = SigningKey::rsa(0, "bench-key");
    let file = dir.join("jwks.json");
    std::fs::write(&file, jwks(&[&key])).context("writing the JWKS file")?;
    *common.jwt = ferry_kit::config::JwtArgs {
        issuer: Some(ISSUER.into()),
        audience: Some("ferry".into()),
        jwks_file: Some(file),
        role_map: "ferry-ops=operator".into(),
        ..Default::default()
    };
    let mut c = claims(ISSUER, "ferry", "load@bench.invalid");
    c["groups"] = serde_json::json!(["ferry-ops"]);
    Ok(key.sign(&c))
}

async fn list_names(client: &data::Client, group: &str) -> anyhow::Result<Vec<String>> {
    let names = ferry_kit::client::all_pages(None, |page_size, page_token| {
        let mut c = client.clone();
        let parent = group.to_owned();
        async move {
            let r = c.list_entities(pb::ListEntitiesRequest { parent, page_size, page_token, kinds: Vec::new() }).await?.into_inner();
            Ok::<_, tonic::Status>((r.entities.into_iter().map(|e| e.name).collect(), r.next_page_token))
        }
    })
    .await?;
    Ok(names)
}

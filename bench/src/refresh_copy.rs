//! `ferry-bench refresh-copy`: the registry's part of a MANAGED refresh at scale, on
//! PostgreSQL. Production holds N entities over 10 groups, the sandbox N/10. Through the
//! real registry over gRPC: a restore point of the sandbox, then the copy of production
//! over it; then a restore point of the copied sandbox (N entities) and a restore from
//! it. Against it, raw set-based SQL on an identical file copy of the database does the
//! same work the cheapest way a person would write it in one transaction: archive the
//! sandbox's rows into tables of their own (`CREATE TABLE … AS SELECT`, no indexes), then
//! delete them and `INSERT … SELECT` production's. Prints the times, the ratio and the
//! process's peak RSS during the registry's work (the registry runs in this process; the
//! peak is reset after loading), then one JSON line.
//!
//! With `--mask`, the copy takes a profile with one masking rule (a pseudonym of
//! `/variant` in every LOOKUP, a fifth of the entities), and the raw SQL masks the same
//! rows in its `INSERT … SELECT` (`jsonb_set` with a SHA-256 pseudonym, and the content
//! hash computed again).

use std::time::Instant;

use anyhow::Context;
use ferry_proto::registry::v1 as pb;
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use serde_json::json;

use crate::data::{Databases, import, start_registry};

#[derive(Debug, clap::Args)]
pub struct RefreshCopyArgs {
    /// Entities in production (over 10 groups); the sandbox holds a tenth.
    #[arg(long, default_value_t = 100_000)]
    entities: usize,
    /// A PostgreSQL URL whose user may create databases (the bench creates its own).
    #[arg(long, env = "FERRY_BENCH_DATABASE_URL")]
    database_url: String,
    /// Copy with a masking rule (LOOKUP `/variant`, pseudonym); the raw SQL masks alike.
    #[arg(long)]
    mask: bool,
}

/// The masked kind (LOOKUP) and field of `--mask`.
const MASKED_KIND: i32 = 2;
const MASKED_POINTER: &str = "/variant";

const GROUPS: usize = 10;

/// This process's peak resident set (VmHWM) in MB.
fn peak_rss_mb() -> anyhow::Result<f64> {
    crate::engine::peak_rss_mb("self")
}

/// Resets the peak resident set to the current one (Linux: `clear_refs` 5).
fn reset_peak_rss() -> anyhow::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")
}

async fn environment(c: &crate::data::Client, id: &str, production: bool, n: usize) -> anyhow::Result<()> {
    let mut c = c.clone();
    c.create_environment(pb::CreateEnvironmentRequest {
        environment_id: id.into(),
        environment: Some(pb::Environment { tier: if production { 1 } else { 2 }, ..Default::default() }),
        request_id: String::new(),
    })
    .await?;
    let per = n.div_ceil(GROUPS);
    for g in 0..GROUPS {
        let group = format!("environments/{id}/groups/g{g}");
        c.create_group(pb::CreateGroupRequest { parent: format!("environments/{id}"), group_id: format!("g{g}"), ..Default::default() })
            .await?;
        let range = g * per..((g + 1) * per).min(n);
        if !range.is_empty() {
            import(&c, &group, range, if production { "source" } else { "recipient" }).await?;
        }
    }
    Ok(())
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// The raw SQL: one transaction, archive then replace, the cheapest way.
async fn raw(url: &str, mask: bool) -> anyhow::Result<f64> {
    let db = Database::connect(url).await.context("connecting to the raw database")?;
    let id = |name: &str| format!("(SELECT id FROM environments WHERE name = '{name}')");
    let (src, dst) = (id("prod"), id("sandbox"));
    let started = Instant::now();
    let txn = db.begin().await?;
    // With --mask, the masked kind in SQL: a keyed SHA-256 pseudonym of the field, and the
    // content hash (SHA-256 of payload, NUL, references) computed again.
    let masked = mask.then(|| {
        format!(
            "INSERT INTO entities (environment_id, kind, key, sharing, payload, refs, content_hash, copied_from, created_at, updated_at) \
             SELECT {dst}, kind, key, sharing, masked, refs, \
             left(encode(sha256(convert_to(masked, 'UTF8') || '\\x00'::bytea || convert_to(refs, 'UTF8')), 'hex'), 32), \
             id, created_at, updated_at FROM ( \
               SELECT e.*, jsonb_set(payload::jsonb, '{{variant}}', to_jsonb('p_' || left(encode(sha256(convert_to( \
                 'bench-key' || (payload::jsonb ->> 'variant'), 'UTF8')), 'hex'), 24)))::text AS masked \
               FROM entities e WHERE environment_id = {src} AND kind = {MASKED_KIND}) m"
        )
    });
    for sql in [
        format!("CREATE TABLE archive_groups AS SELECT * FROM groups WHERE environment_id = {dst}"),
        format!("CREATE TABLE archive_entities AS SELECT * FROM entities WHERE environment_id = {dst}"),
        format!(
            "CREATE TABLE archive_memberships AS SELECT m.* FROM memberships m JOIN groups g ON g.id = m.group_id WHERE g.environment_id = {dst}"
        ),
        format!("DELETE FROM memberships WHERE group_id IN (SELECT id FROM groups WHERE environment_id = {dst})"),
        format!("DELETE FROM entities WHERE environment_id = {dst}"),
        format!("DELETE FROM groups WHERE environment_id = {dst}"),
        format!(
            "INSERT INTO groups (environment_id, name, display_name, revision, created_at) \
             SELECT {dst}, name, display_name, revision + 1, created_at FROM groups WHERE environment_id = {src}"
        ),
        format!(
            "INSERT INTO entities (environment_id, kind, key, sharing, payload, refs, content_hash, copied_from, created_at, updated_at) \
             SELECT {dst}, kind, key, sharing, payload, refs, content_hash, id, created_at, updated_at FROM entities WHERE environment_id = {src}{}",
            if mask { format!(" AND kind <> {MASKED_KIND}") } else { String::new() }
        ),
    ]
    .into_iter()
    .chain(masked)
    .chain([
        format!(
            "INSERT INTO memberships (group_id, kind, key, entity_id) SELECT ng.id, m.kind, m.key, ne.id FROM memberships m \
             JOIN groups sg ON sg.id = m.group_id AND sg.environment_id = {src} \
             JOIN groups ng ON ng.environment_id = {dst} AND ng.name = sg.name \
             JOIN entities ne ON ne.environment_id = {dst} AND ne.copied_from = m.entity_id"
        ),
    ]) {
        txn.execute_unprepared(&sql).await.with_context(|| sql.clone())?;
    }
    txn.commit().await?;
    let t = secs(started);
    db.close().await?;
    Ok(t)
}

/// Prunes what the registry at `url` has due (the deleted restore point), as its
/// background pruner does; the rows and the seconds.
async fn prune_restore_points(url: &str) -> anyhow::Result<(u64, f64)> {
    let db = Database::connect(url).await.context("connecting to the registry's database")?;
    let reads = ferry_kit::db::read_pool(url, &db).await?;
    let points = ferry_kit::db::point_reads(url, &db).await?;
    let registry = group_registry::service::Registry::new(db, reads, points);
    let started = Instant::now();
    let (_, rows) = registry.prune_restore_points(group_registry::service::PRUNE_BATCH).await?;
    Ok((rows, secs(started)))
}

pub async fn run(a: RefreshCopyArgs) -> anyhow::Result<()> {
    let n = a.entities;
    let dbs = Databases::create(&a.database_url).await?;
    eprintln!("loading production ({n} entities) and the sandbox ({}) (not timed)", n / 10);
    let registry = start_registry(&dbs.services_registry).await?;
    environment(&registry.client, "prod", true, n).await?;
    environment(&registry.client, "sandbox", false, n / 10).await?;
    registry.stop().await;
    dbs.vacuum().await?;
    dbs.copy_for_raw().await?;

    let registry = start_registry(&dbs.services_registry).await?;
    let mut c = registry.client.clone();
    reset_peak_rss()?;
    let base_rss = peak_rss_mb()?;
    let point = |id: &str| pb::CreateRestorePointRequest {
        parent: "environments/sandbox".into(),
        restore_point_id: id.into(),
        restore_point: None,
        request_id: String::new(),
    };
    let started = Instant::now();
    c.create_restore_point(point("before")).await?;
    let keep_small = secs(started);
    let copy_started = Instant::now();
    let copied = c
        .copy_environment(pb::CopyEnvironmentRequest {
            source: "environments/prod".into(),
            destination: "environments/sandbox".into(),
            request_id: String::new(),
            profile: a.mask.then(|| ferry_proto::common::v1::CopyProfile {
                masking: vec![ferry_proto::common::v1::MaskingRule {
                    kind: MASKED_KIND,
                    pointer: MASKED_POINTER.into(),
                    action: ferry_proto::common::v1::MaskAction::Pseudonym as i32,
                    value_json: String::new(),
                }],
                ..Default::default()
            }),
            validate_only: false,
        })
        .await?
        .into_inner();
    let copy = secs(copy_started);
    let masked: i64 = copied.by_kind.iter().map(|k| k.masked).sum();
    let ferry = secs(started);
    let started = Instant::now();
    c.create_restore_point(point("after")).await?;
    let keep_large = secs(started);
    let started = Instant::now();
    c.restore_environment(pb::RestoreEnvironmentRequest {
        restore_point: "environments/sandbox/restorePoints/after".into(),
        request_id: String::new(),
    })
    .await?;
    let restore_large = secs(started);
    let peak = peak_rss_mb()?;
    c.delete_restore_point(pb::DeleteRestorePointRequest {
        name: "environments/sandbox/restorePoints/after".into(),
        request_id: String::new(),
    })
    .await?;
    registry.stop().await;
    let (pruned_rows, prune_s) = prune_restore_points(&dbs.services_registry).await?;

    let raw = raw(&dbs.raw_registry, a.mask).await?;
    dbs.drop_all().await;
    let ratio = ferry / raw;
    println!("entities {n}: copied {} entities ({masked} masked), {} links over the sandbox's {}", copied.entities, copied.links, n / 10);
    println!("ferry: restore point of the sandbox {keep_small:.2} s + copy {copy:.2} s = {ferry:.2} s");
    println!("raw SQL (archive tables + replace, one transaction): {raw:.2} s; ratio {ratio:.2}x");
    println!("restore point of {n} entities {keep_large:.2} s; restore of {n} entities {restore_large:.2} s");
    println!(
        "pruning the deleted restore point: {pruned_rows} rows in {prune_s:.2} s ({:.0} rows/s, batches of {})",
        pruned_rows as f64 / prune_s.max(1e-9),
        group_registry::service::PRUNE_BATCH
    );
    println!("peak RSS during the registry's work {peak:.0} MB (after loading {base_rss:.0} MB)");
    println!(
        "{}",
        json!({
            "bench": "refresh-copy", "entities": n, "mask": a.mask, "masked": masked, "keep_s": keep_small, "copy_s": copy, "ferry_s": ferry, "raw_s": raw,
            "ratio": ratio, "keep_large_s": keep_large, "restore_large_s": restore_large, "pruned_rows": pruned_rows, "prune_s": prune_s, "peak_rss_mb": peak, "base_rss_mb": base_rss,
        })
    );
    Ok(())
}

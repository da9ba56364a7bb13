//! What an overwrite replaced: the payload, references and hash an entity had before a
//! merge overwrote it (`bulk::overwrite`), kept under (entity, the hash the overwrite gave
//! it) so that a revert can put it back ([`restore`]) and tell a retry from a change made
//! since. Rows age out after `--prior-content-retention-hours` ([`AGED`]) and go with
//! their entity.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbErr};

use super::{all_for_ids, col, exec_for_pairs};

/// How `ferry_kit::prune` ages the kept contents.
pub const AGED: ferry_kit::prune::Aged =
    ferry_kit::prune::Aged { table: "prior_contents", key: "entity_id, overwritten_hash", time: "created_at" };

/// Keeps what each `(source, target)` overwrite is about to replace: the target's current
/// content, under the hash the source will give it. Called in the overwrite's transaction,
/// before it writes. An entity overwritten to the same hash again keeps the newer prior.
pub async fn keep<C: ConnectionTrait>(db: &C, pairs: &[(i64, i64)], now: i64) -> Result<(), DbErr> {
    let sql = "INSERT INTO prior_contents (entity_id, overwritten_hash, payload, refs, content_hash, created_at) \
               SELECT t.id, s.content_hash, t.payload, t.refs, t.content_hash, ? \
               FROM (VALUES {pairs}) AS v, entities s, entities t WHERE s.id = v.column1 AND t.id = v.column2 \
               ON CONFLICT (entity_id, overwritten_hash) DO UPDATE SET payload = excluded.payload, refs = excluded.refs, \
               content_hash = excluded.content_hash, created_at = excluded.created_at";
    exec_for_pairs(db, sql, now, pairs).await
}

/// The hash each of `entities` had before the overwrite that gave it a hash, by
/// (entity, overwritten hash).
pub async fn hashes<C: ConnectionTrait>(db: &C, entities: &[i64]) -> Result<HashMap<(i64, String), String>, DbErr> {
    let sql = "SELECT entity_id, overwritten_hash, content_hash FROM prior_contents WHERE entity_id IN ({ids})";
    let mut out = HashMap::new();
    for r in &all_for_ids(db, sql, entities).await? {
        out.insert((col(r, 0)?, col(r, 1)?), col(r, 2)?);
    }
    Ok(out)
}

/// Puts back each `(entity, overwritten hash)`'s kept content.
pub async fn restore<C: ConnectionTrait>(db: &C, restores: &[(i64, String)], now: i64) -> Result<(), DbErr> {
    let sql = "UPDATE entities SET payload = p.payload, refs = p.refs, content_hash = p.content_hash, updated_at = ? \
               FROM (VALUES {pairs}) AS v, prior_contents p \
               WHERE p.entity_id = v.column1 AND p.overwritten_hash = v.column2 AND entities.id = v.column1";
    exec_for_pairs(db, sql, now, restores).await
}

//! How a merge batch is settled against its recipient: delivered set-based ([`deliver`]),
//! or, when that could differ, classified operation by operation with the recipient
//! locked first ([`one_by_one`]). The domain rules decide each operation's outcome
//! ([`rules`]).

use std::collections::{HashMap, HashSet};

use ferry_kit::db::now_micros;
use sea_orm::DatabaseTransaction;

use crate::domain::{Kind, MergeOp, OpResult, Outcome, Sharing, rules};
use crate::error::{Error, Result};
use crate::store::bulk::{self as q, EntityInfo, Take};
use crate::store::groups;
use crate::store::groups::GroupKey;

/// How a merge batch is attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Way {
    /// Copies and links set-based, the recipient locked only at the end.
    Deliver,
    /// The recipient locked first, every operation classified in order.
    Locked,
}

/// The reference way: classifies every operation in order against what the recipient
/// holds, then writes what the classification decided.
pub(super) async fn one_by_one(txn: &DatabaseTransaction, g: &GroupKey, ops: &[MergeOp]) -> Result<Vec<OpResult>> {
    let plan = classified(txn, g, ops).await?;
    let now = now_micros();
    let copied = q::copy_into(txn, g.id, &plan.copies, now, Take::All).await?;
    q::link_into(txn, g.id, &plan.links, Take::All).await?;
    q::overwrite(txn, &plan.overwrites, now).await?;
    crate::store::prior::restore(txn, &plan.restores, now).await?;
    let targets: Vec<i64> = plan.overwrites.iter().map(|(_, t)| *t).chain(plan.restores.iter().map(|(e, _)| *e)).collect();
    groups::bump_holding(txn, &targets).await?;
    q::delete_entities(txn, &plan.removes).await?;
    q::unlink_from(txn, g.id, &plan.unlinks).await?;
    let mut results = plan.results;
    for r in results.iter_mut().filter(|r| r.entity_id < 0) {
        r.entity_id = copied.get(&-r.entity_id).copied().unwrap_or_default();
    }
    Ok(results)
}

/// Copies and links set-based: one statement each takes exactly the entities the
/// classification would apply (the recipient's environment, the right sharing, a key the
/// recipient does not hold), without reading each entity and key first. Only operations
/// left over are classified, against what the recipient holds now. The results are
/// [`one_by_one`]'s, or [`crate::error::IN_ORDER`] where they could differ: when a later operation
/// of the batch took a key an earlier one would have had, or an operation is invalid.
pub(super) async fn deliver(txn: &DatabaseTransaction, g: &GroupKey, ops: &[MergeOp]) -> Result<Vec<OpResult>> {
    let of = |copy: bool| -> Vec<i64> {
        ops.iter()
            .filter_map(|op| match *op {
                MergeOp::Copy(id) if copy => Some(id),
                MergeOp::Link(id) if !copy => Some(id),
                _ => None,
            })
            .collect()
    };
    let take = Take::Absent { env_id: g.env_id };
    let copied = q::copy_into(txn, g.id, &of(true), now_micros(), take).await?;
    let linked: HashSet<i64> = q::link_into(txn, g.id, &of(false), take).await?.into_iter().collect();
    // Each delivered entity answers the first operation that names it.
    let mut delivered_by: HashMap<i64, usize> = HashMap::new();
    let mut results = vec![OpResult { outcome: Outcome::Applied, entity_id: 0 }; ops.len()];
    let mut rest = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let entity = match *op {
            MergeOp::Copy(src) => copied.get(&src).copied(),
            MergeOp::Link(id) => linked.contains(&id).then_some(id),
            _ => None,
        };
        match entity {
            Some(e) if !delivered_by.contains_key(&e) => {
                delivered_by.insert(e, i);
                results[i].entity_id = e;
            }
            _ => rest.push(i),
        }
    }
    if rest.is_empty() {
        return Ok(results);
    }
    let left: Vec<MergeOp> = rest.iter().map(|&i| ops[i].clone()).collect();
    let plan = match classified(txn, g, &left).await {
        Ok(plan) => plan,
        // Its violations name operations by their place among the leftovers; in order,
        // they name them by their place in the batch.
        Err(Error::InvalidArgument(_)) => return Err(Error::Again(crate::error::IN_ORDER)),
        Err(e) => return Err(e),
    };
    for (i, r) in rest.into_iter().zip(plan.results) {
        let taken_by_later = delivered_by.get(&r.entity_id).is_some_and(|&j| j > i);
        if r.outcome == Outcome::Applied || taken_by_later {
            return Err(Error::Again(crate::error::IN_ORDER));
        }
        results[i] = r;
    }
    Ok(results)
}

/// Classifies `ops` in order against what the recipient holds now ([`classify`]).
async fn classified(txn: &DatabaseTransaction, g: &GroupKey, ops: &[MergeOp]) -> Result<OpPlan> {
    let ids: Vec<i64> = ops.iter().flat_map(op_ids).collect();
    let unlinks: Vec<i64> = ops.iter().filter_map(|op| if let MergeOp::Unlink(id) = op { Some(*id) } else { None }).collect();
    let infos = q::entity_infos(txn, &ids, &unlinks).await?;
    let keys: Vec<(Kind, String)> = infos.values().map(|i| (i.kind, i.key.clone())).collect();
    let held = q::members_at(txn, g.id, &keys).await?;
    let restored: Vec<i64> =
        ops.iter().filter_map(|op| if let MergeOp::Restore { entity, .. } = op { Some(*entity) } else { None }).collect();
    let priors = if restored.is_empty() { HashMap::new() } else { crate::store::prior::hashes(txn, &restored).await? };
    classify(ops, g.env_id, &infos, held, &priors)
}

fn op_ids(op: &MergeOp) -> Vec<i64> {
    match *op {
        MergeOp::Copy(i) | MergeOp::Link(i) | MergeOp::Remove(i) | MergeOp::Unlink(i) | MergeOp::Restore { entity: i, .. } => vec![i],
        MergeOp::Overwrite { source, target } => vec![source, target],
    }
}

/// What a batch will write, and each operation's outcome.
#[derive(Debug, Default, PartialEq)]
struct OpPlan {
    results: Vec<OpResult>,
    copies: Vec<i64>,
    links: Vec<i64>,
    overwrites: Vec<(i64, i64)>,
    removes: Vec<i64>,
    unlinks: Vec<i64>,
    /// (entity, the hash the overwrite gave it) whose prior content goes back.
    restores: Vec<(i64, String)>,
}

/// Decides each operation against the recipient's current holdings (`held`: (kind, key)
/// → (entity, content hash)), in order, so two operations of one batch on one key see
/// each other. An operation naming an entity that does not exist (or lives in another
/// environment) is INVALID_ARGUMENT, except removes and unlinks, whose target being gone
/// means the work is already done (a retried revert). A copy this batch makes is named
/// `-source` until it is written (in results too). A restore puts back the content an
/// overwrite replaced (`priors`: (entity, overwritten hash) → the hash from before) only
/// while the entity still holds what the overwrite gave it; holding the prior content
/// already is a retry; anything else (changed since, gone, prior pruned) is a conflict.
fn classify(
    ops: &[MergeOp],
    env_id: i64,
    infos: &HashMap<i64, EntityInfo>,
    mut held: HashMap<(Kind, String), (i64, String)>,
    priors: &HashMap<(i64, String), String>,
) -> Result<OpPlan> {
    let mut plan = OpPlan::default();
    let mut bad = ferry_kit::status::Violations::new();
    let info = |i: usize, id: i64, bad: &mut ferry_kit::status::Violations| -> Option<EntityInfo> {
        match infos.get(&id) {
            Some(x) if x.env_id == env_id => Some(x.clone()),
            _ => {
                bad.add(format!("operations[{i}]"), format!("entity {id} does not exist in the recipient's environment"));
                None
            }
        }
    };
    for (i, op) in ops.iter().enumerate() {
        let result = |outcome, entity_id| OpResult { outcome, entity_id };
        let r = match *op {
            MergeOp::Restore { entity, ref overwritten } => {
                let current = infos.get(&entity).and_then(|e| held.get(&(e.kind, e.key.clone())).filter(|h| h.0 == entity));
                match (current, priors.get(&(entity, overwritten.clone()))) {
                    (Some((_, hash)), Some(prior)) if hash == overwritten => {
                        let e = &infos[&entity];
                        held.insert((e.kind, e.key.clone()), (entity, prior.clone()));
                        plan.restores.push((entity, overwritten.clone()));
                        result(Outcome::Applied, entity)
                    }
                    (Some((_, hash)), Some(prior)) if hash == prior => result(Outcome::AlreadyPresent, entity),
                    _ => result(Outcome::Conflict, entity),
                }
            }
            MergeOp::Copy(src) => {
                let Some(s) = info(i, src, &mut bad) else { continue };
                if let Err(m) = rules::check_deliverable(src, s.kind, s.sharing) {
                    bad.add(format!("operations[{i}]"), m);
                    continue;
                }
                if s.sharing != Sharing::Duplicated {
                    bad.add(format!("operations[{i}]"), format!("entity {src} is shared: link it instead of copying"));
                    continue;
                }
                match held.get(&(s.kind, s.key.clone())) {
                    Some((id, hash)) if *hash == s.content_hash => result(Outcome::AlreadyPresent, *id),
                    Some((id, _)) => result(Outcome::Conflict, *id),
                    None => {
                        // The copy has no id yet: `-src` stands for it until it is written.
                        held.insert((s.kind, s.key.clone()), (-src, s.content_hash.clone()));
                        plan.copies.push(src);
                        result(Outcome::Applied, -src)
                    }
                }
            }
            MergeOp::Link(id) => {
                let Some(s) = info(i, id, &mut bad) else { continue };
                if let Err(m) = rules::check_deliverable(id, s.kind, s.sharing) {
                    bad.add(format!("operations[{i}]"), m);
                    continue;
                }
                if s.sharing != Sharing::Shared {
                    bad.add(format!("operations[{i}]"), format!("entity {id} is duplicated: copy it instead of linking"));
                    continue;
                }
                match held.get(&(s.kind, s.key.clone())) {
                    Some((h, _)) if *h == id => result(Outcome::AlreadyPresent, id),
                    Some((h, _)) => result(Outcome::Conflict, *h),
                    None => {
                        held.insert((s.kind, s.key.clone()), (id, s.content_hash.clone()));
                        plan.links.push(id);
                        result(Outcome::Applied, id)
                    }
                }
            }
            MergeOp::Overwrite { source, target } => {
                let (Some(s), Some(t)) = (info(i, source, &mut bad), info(i, target, &mut bad)) else { continue };
                if (s.kind, &s.key) != (t.kind, &t.key) || held.get(&(t.kind, t.key.clone())).map(|h| h.0) != Some(target) {
                    bad.add(format!("operations[{i}]"), format!("entity {target} is not the recipient's entity for the key of {source}"));
                    continue;
                }
                if s.content_hash == t.content_hash {
                    result(Outcome::AlreadyPresent, target)
                } else {
                    held.insert((t.kind, t.key.clone()), (target, s.content_hash.clone()));
                    plan.overwrites.push((source, target));
                    result(Outcome::Applied, target)
                }
            }
            MergeOp::Remove(id) => match infos.get(&id) {
                Some(e) if held.get(&(e.kind, e.key.clone())).map(|h| h.0) == Some(id) => {
                    if e.sharing != Sharing::Duplicated {
                        bad.add(format!("operations[{i}]"), format!("entity {id} is shared: unlink it instead of removing"));
                        continue;
                    }
                    held.remove(&(e.kind, e.key.clone()));
                    plan.removes.push(id);
                    result(Outcome::Applied, id)
                }
                _ => result(Outcome::AlreadyPresent, id),
            },
            MergeOp::Unlink(id) => match infos.get(&id) {
                Some(e) if held.get(&(e.kind, e.key.clone())).map(|h| h.0) == Some(id) => {
                    if e.sharing != Sharing::Shared || e.links < 2 {
                        result(Outcome::Conflict, id)
                    } else {
                        held.remove(&(e.kind, e.key.clone()));
                        plan.unlinks.push(id);
                        result(Outcome::Applied, id)
                    }
                }
                _ => result(Outcome::AlreadyPresent, id),
            },
        };
        plan.results.push(r);
    }
    bad.finish()?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: Kind, key: &str, sharing: Sharing, hash: &str, links: i64) -> EntityInfo {
        EntityInfo { env_id: 1, kind, key: key.into(), sharing, content_hash: hash.into(), links }
    }

    #[test]
    fn classify_outcomes() {
        let infos = HashMap::from([
            (1, info(Kind::Service, "a", Sharing::Duplicated, "h1", 1)),
            (2, info(Kind::Service, "b", Sharing::Duplicated, "h2", 1)),
            (3, info(Kind::Lookup, "l", Sharing::Shared, "h3", 1)),
            (4, info(Kind::Service, "c", Sharing::Duplicated, "h4", 1)),
        ]);
        // Recipient holds b with other content and c with the same content.
        let held = HashMap::from([
            ((Kind::Service, "b".to_string()), (9, "x".to_string())),
            ((Kind::Service, "c".to_string()), (8, "h4".to_string())),
        ]);
        let ops = [MergeOp::Copy(1), MergeOp::Copy(2), MergeOp::Link(3), MergeOp::Copy(4), MergeOp::Copy(1)];
        let plan = classify(&ops, 1, &infos, held, &HashMap::new()).unwrap();
        let outcomes: Vec<Outcome> = plan.results.iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, [Outcome::Applied, Outcome::Conflict, Outcome::Applied, Outcome::AlreadyPresent, Outcome::AlreadyPresent]);
        assert_eq!(plan.copies, [1]);
        assert_eq!(plan.links, [3]);
    }

    #[test]
    fn a_restore_puts_back_only_what_still_holds_the_overwrite() {
        let infos = HashMap::from([
            (1, info(Kind::Service, "a", Sharing::Duplicated, "new", 1)),
            (2, info(Kind::Service, "b", Sharing::Duplicated, "old", 1)),
            (3, info(Kind::Service, "c", Sharing::Duplicated, "edited", 1)),
            (4, info(Kind::Service, "d", Sharing::Duplicated, "new", 1)),
        ]);
        let held: HashMap<(Kind, String), (i64, String)> =
            infos.iter().map(|(id, e)| ((e.kind, e.key.clone()), (*id, e.content_hash.clone()))).collect();
        // 1, 2 and 3 were overwritten to "new"; 4's prior content was pruned.
        let priors: HashMap<(i64, String), String> = [1, 2, 3].map(|id| ((id, "new".to_string()), "old".to_string())).into();
        let restore = |entity| MergeOp::Restore { entity, overwritten: "new".into() };
        let ops = [restore(1), restore(2), restore(3), restore(4), restore(77), restore(1)];
        let plan = classify(&ops, 1, &infos, held, &priors).unwrap();
        let outcomes: Vec<Outcome> = plan.results.iter().map(|r| r.outcome).collect();
        // Held the overwrite: put back. Held the prior already: a retry. Edited since,
        // pruned, gone: conflicts. The same restore twice in a batch: the second sees the first.
        assert_eq!(
            outcomes,
            [Outcome::Applied, Outcome::AlreadyPresent, Outcome::Conflict, Outcome::Conflict, Outcome::Conflict, Outcome::AlreadyPresent]
        );
        assert_eq!(plan.restores, [(1, "new".to_string())]);
    }

    #[test]
    fn classify_rejects_wrong_ops() {
        let infos = HashMap::from([(3, info(Kind::Lookup, "l", Sharing::Shared, "h", 1))]);
        assert!(classify(&[MergeOp::Copy(3)], 1, &infos, HashMap::new(), &HashMap::new()).is_err());
        assert!(classify(&[MergeOp::Copy(77)], 1, &infos, HashMap::new(), &HashMap::new()).is_err());
        assert!(classify(&[MergeOp::Copy(3)], 2, &infos, HashMap::new(), &HashMap::new()).is_err());
        // A remove of something already gone is done, not an error.
        let plan = classify(&[MergeOp::Remove(77)], 1, &infos, HashMap::new(), &HashMap::new()).unwrap();
        assert_eq!(plan.results[0].outcome, Outcome::AlreadyPresent);
    }
}

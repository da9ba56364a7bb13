//! The merge rules as pure functions: manifest order, G6 classification of one source
//! entry against the recipient's entry under the same (kind, key), and what apply sends
//! for each planned outcome.

use std::cmp::Ordering;

use super::{ManifestEntry, Outcome, Sharing, Strategy};

/// Manifests are ordered by (kind number, key bytes) on both registry backends; the
/// merge-join compares exactly that way.
pub fn manifest_order(a: &ManifestEntry, b: &ManifestEntry) -> Ordering {
    (a.kind.number(), a.key.as_bytes()).cmp(&(b.kind.number(), b.key.as_bytes()))
}

/// G6: a key absent from the recipient is created (duplicated) or linked (shared); a key
/// present with the same content, or the very shared entity already linked, is skipped;
/// a key present with other content is a conflict.
pub fn classify(source: &ManifestEntry, recipient: Option<&ManifestEntry>) -> Outcome {
    match recipient {
        None => match source.sharing {
            Sharing::Duplicated => Outcome::Create,
            Sharing::Shared => Outcome::Link,
        },
        Some(r) if r.entity_id == source.entity_id || r.content_hash == source.content_hash => Outcome::Skip,
        Some(_) => Outcome::Conflict,
    }
}

/// What a revert sends for an applied effect (1 copy, 2 link, 3 overwrite) that left
/// `entity_id` with `content_hash`.
pub fn undo(effect_action: i64, entity_id: i64, content_hash: &str) -> Option<Action> {
    match effect_action {
        1 => Some(Action::Remove(entity_id)),
        2 => Some(Action::Unlink(entity_id)),
        3 => Some(Action::Restore { entity: entity_id, overwritten: content_hash.to_owned() }),
        _ => None,
    }
}

/// What apply does for an item: copy, link, overwrite (TAKE_SOURCE conflicts) or nothing;
/// and what a revert does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Copy(i64),
    Link(i64),
    Overwrite {
        source: i64,
        target: i64,
    },
    /// Revert of a copy: delete the recipient's duplicated entity.
    Remove(i64),
    /// Revert of a link: unlink the shared entity from the recipient.
    Unlink(i64),
    /// Revert of an overwrite: put back what the registry kept of the entity's content
    /// from before the overwrite gave it the hash `overwritten`.
    Restore {
        entity: i64,
        overwritten: String,
    },
}

pub fn action(outcome: Outcome, strategy: Strategy, source: i64, recipient: i64) -> Option<Action> {
    match (outcome, strategy) {
        (Outcome::Create, _) => Some(Action::Copy(source)),
        (Outcome::Link, _) => Some(Action::Link(source)),
        (Outcome::Conflict, Strategy::TakeSource) if recipient > 0 => Some(Action::Overwrite { source, target: recipient }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Kind;

    fn e(kind: Kind, key: &str, hash: &str, sharing: Sharing, id: i64) -> ManifestEntry {
        ManifestEntry { kind, key: key.into(), content_hash: hash.into(), sharing, entity_id: id, references: vec![] }
    }

    #[test]
    fn g6_classification() {
        let dup = e(Kind::Service, "s", "h1", Sharing::Duplicated, 1);
        let shared = e(Kind::Lookup, "l", "h2", Sharing::Shared, 2);
        assert_eq!(classify(&dup, None), Outcome::Create);
        assert_eq!(classify(&shared, None), Outcome::Link);
        assert_eq!(classify(&dup, Some(&e(Kind::Service, "s", "h1", Sharing::Duplicated, 9))), Outcome::Skip);
        assert_eq!(classify(&dup, Some(&e(Kind::Service, "s", "other", Sharing::Duplicated, 9))), Outcome::Conflict);
        assert_eq!(classify(&shared, Some(&shared.clone())), Outcome::Skip);
        assert_eq!(classify(&shared, Some(&e(Kind::Lookup, "l", "x", Sharing::Shared, 3))), Outcome::Conflict);
    }

    #[test]
    fn order_is_kind_then_key_bytes() {
        let a = e(Kind::Lookup, "Zeta", "", Sharing::Shared, 1);
        let b = e(Kind::Lookup, "alpha", "", Sharing::Shared, 2);
        let c = e(Kind::Service, "A", "", Sharing::Duplicated, 3);
        assert_eq!(manifest_order(&a, &b), Ordering::Less, "uppercase sorts before lowercase byte-wise");
        assert_eq!(manifest_order(&b, &c), Ordering::Less, "kind first");
    }

    #[test]
    fn actions_follow_strategy() {
        assert_eq!(action(Outcome::Create, Strategy::KeepRecipient, 1, 0), Some(Action::Copy(1)));
        assert_eq!(action(Outcome::Conflict, Strategy::KeepRecipient, 1, 2), None);
        assert_eq!(action(Outcome::Conflict, Strategy::TakeSource, 1, 2), Some(Action::Overwrite { source: 1, target: 2 }));
        assert_eq!(action(Outcome::Skip, Strategy::TakeSource, 1, 2), None);
    }
}

//! The groups article's rules as the registry applies them (DESIGN.md §2, G1–G4, G7), and
//! the refresh rule the registry itself guards (production is never a destination).
//! G1 is enforced by the storage shape: one membership row per (group, kind, key).

use ferry_kit::status::Precondition;

use super::{GroupName, Kind, Sharing, Tier};
use crate::error::Error;

/// The sharing a kind fixes, as the groups article says: services, tables and maps "must
/// be applied to one specific group" (duplicated); data sources, lookups, custom actions,
/// roles and themes "are created once and are assigned to several groups" (shared). Only
/// a portal depends (`None`): shared when Test and Prod data live on one portal,
/// duplicated when they live on different portals.
pub fn fixed_sharing(kind: Kind) -> Option<Sharing> {
    match kind {
        Kind::Service | Kind::Table | Kind::Map => Some(Sharing::Duplicated),
        Kind::DataSource | Kind::Lookup | Kind::CustomAction | Kind::Role | Kind::Theme => Some(Sharing::Shared),
        Kind::Portal => None,
    }
}

/// Whether an entity of `kind` may have `sharing`. Rows written before the registry
/// enforced [`fixed_sharing`] may not; every path that creates entities refuses them.
pub fn sharing_allowed(kind: Kind, sharing: Sharing) -> bool {
    fixed_sharing(kind).is_none_or(|fixed| fixed == sharing)
}

/// The sharing mode a new entity gets: its kind's ([`fixed_sharing`]), which a request
/// may repeat but not contradict; a portal must choose.
pub fn sharing_for(kind: Kind, requested: Option<Sharing>) -> Result<Sharing, String> {
    match (fixed_sharing(kind), requested) {
        (Some(fixed), None) => Ok(fixed),
        (Some(fixed), Some(s)) if s == fixed => Ok(s),
        (Some(fixed), Some(s)) => Err(format!(
            "a {} is always {} ({}); it cannot be {}: leave sharing unset or set SHARING_MODE_{}",
            kind.label(),
            fixed.label(),
            fixed.meaning(),
            s.label(),
            fixed.label()
        )),
        (None, Some(s)) => Ok(s),
        (None, None) => Err("a PORTAL must choose its sharing: SHARED when Test and Prod data live on \
             the same portal, DUPLICATED when they live on different portals"
            .into()),
    }
}

/// Refuses an entity a merge or copy would deliver whose stored sharing its kind does not
/// allow (a row from before the rule): delivering it would spread the accident.
pub fn check_deliverable(entity: impl std::fmt::Display, kind: Kind, sharing: Sharing) -> Result<(), String> {
    if sharing_allowed(kind, sharing) {
        return Ok(());
    }
    Err(format!(
        "entity {entity} is a {} stored as {}, which its kind does not allow (written before the rule was enforced): \
         delete it and create it again as {}",
        kind.label(),
        sharing.label(),
        fixed_sharing(kind).map_or("", Sharing::label)
    ))
}

/// G2/G3: which groups a delete affects. A duplicated entity leaves its one group. A shared
/// entity leaves every group it is linked to, and only with explicit confirmation;
/// without it the refusal lists each group.
pub fn groups_affected_by_delete(entity: &str, sharing: Sharing, linked: Vec<GroupName>, confirmed: bool) -> Result<Vec<GroupName>, Error> {
    if sharing == Sharing::Shared && !confirmed {
        let preconditions = linked
            .iter()
            .map(|g| Precondition::new("SHARED_ENTITY_LINKED", g.to_string(), "deleting this shared entity removes it from this group too"))
            .collect();
        return Err(Error::precondition(
            format!(
                "{entity} is shared and linked to {} group(s); deleting it removes it from all of them: \
                 set confirm_all_groups to proceed, or unlink it from one group instead",
                linked.len()
            ),
            preconditions,
        ));
    }
    Ok(linked)
}

/// G4: unlinking removes one link of a shared entity; never the last one, and never a
/// duplicated entity's membership (that is a delete).
pub fn check_unlink(entity: &str, group: &GroupName, sharing: Sharing, linked: &[GroupName]) -> Result<(), Error> {
    if sharing == Sharing::Duplicated {
        return Err(Error::precondition(
            format!("{entity} is duplicated: it belongs to {group} alone; use DeleteEntity to remove it"),
            vec![Precondition::new("ENTITY_DUPLICATED", entity, "only shared entities can be unlinked")],
        ));
    }
    if !linked.contains(group) {
        return Err(Error::precondition(
            format!("{entity} is not linked to {group}"),
            vec![Precondition::new("NOT_LINKED", group.to_string(), "the entity is not linked to this group")],
        ));
    }
    if linked.len() == 1 {
        return Err(Error::precondition(
            format!(
                "{group} holds the last link of {entity}; unlinking it would lose the entity: use DeleteEntity \
                 with confirm_all_groups instead"
            ),
            vec![Precondition::new("LAST_LINK", entity, "an entity must stay linked to at least one group")],
        ));
    }
    Ok(())
}

/// Linking attaches an existing shared instance to another group; a duplicated entity is
/// copied instead (merge or clone), never linked, and so is one stored as shared that its
/// kind does not allow (a service linked to two groups would be deleted from both at once).
pub fn check_link(entity: &str, kind: Kind, sharing: Sharing) -> Result<(), Error> {
    if let Err(m) = check_deliverable(entity, kind, sharing) {
        return Err(Error::precondition(m, vec![Precondition::new("SHARING_NOT_ALLOWED", entity, "its kind fixes its sharing")]));
    }
    if sharing == Sharing::Duplicated {
        return Err(Error::precondition(
            format!("{entity} is duplicated (one instance per group) and cannot be linked; create or merge a copy"),
            vec![Precondition::new("ENTITY_DUPLICATED", entity, "only shared entities can be linked")],
        ));
    }
    Ok(())
}

/// An environment copy replaces the destination: it must be another, non-production one.
pub fn check_copy_destination(source: &str, destination: &str, destination_tier: Tier) -> Result<(), Error> {
    if source == destination {
        return Err(Error::invalid("destination", "must differ from source"));
    }
    if destination_tier == Tier::Production {
        return Err(Error::precondition(
            format!("environments/{destination} is PRODUCTION; production is never a copy or refresh destination"),
            vec![Precondition::new("PRODUCTION_DESTINATION", format!("environments/{destination}"), "choose a NON_PRODUCTION destination")],
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(name: &str) -> GroupName {
        GroupName::new("prod", name)
    }

    #[test]
    fn sharing_follows_the_kind() {
        assert_eq!(sharing_for(Kind::Service, None), Ok(Sharing::Duplicated));
        assert_eq!(sharing_for(Kind::Table, None), Ok(Sharing::Duplicated));
        assert_eq!(sharing_for(Kind::Map, None), Ok(Sharing::Duplicated));
        for k in [Kind::Lookup, Kind::CustomAction, Kind::Role, Kind::Theme, Kind::DataSource] {
            assert_eq!(sharing_for(k, None), Ok(Sharing::Shared));
            assert_eq!(sharing_for(k, Some(Sharing::Shared)), Ok(Sharing::Shared));
            assert!(sharing_for(k, Some(Sharing::Duplicated)).is_err(), "{k:?} duplicated");
            assert!(!sharing_allowed(k, Sharing::Duplicated));
        }
        for k in [Kind::Service, Kind::Table, Kind::Map] {
            assert!(sharing_for(k, Some(Sharing::Shared)).unwrap_err().contains("always DUPLICATED"));
            assert!(check_deliverable(1, k, Sharing::Shared).is_err());
            assert!(check_deliverable(1, k, Sharing::Duplicated).is_ok());
        }
        assert!(sharing_for(Kind::Portal, None).is_err());
        assert_eq!(sharing_for(Kind::Portal, Some(Sharing::Shared)), Ok(Sharing::Shared));
        assert_eq!(sharing_for(Kind::Portal, Some(Sharing::Duplicated)), Ok(Sharing::Duplicated));
        assert!(sharing_allowed(Kind::Portal, Sharing::Shared) && sharing_allowed(Kind::Portal, Sharing::Duplicated));
    }

    #[test]
    fn g3_shared_delete_needs_confirmation_naming_groups() {
        let err = groups_affected_by_delete("e", Sharing::Shared, vec![g("test"), g("prod")], false).unwrap_err();
        match err {
            Error::FailedPrecondition { preconditions, .. } => {
                let subjects: Vec<_> = preconditions.iter().map(|p| p.subject.as_str()).collect();
                assert_eq!(subjects, ["environments/prod/groups/test", "environments/prod/groups/prod"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(groups_affected_by_delete("e", Sharing::Shared, vec![g("a")], true).unwrap(), vec![g("a")]);
        assert_eq!(groups_affected_by_delete("e", Sharing::Duplicated, vec![g("a")], false).unwrap(), vec![g("a")]);
    }

    #[test]
    fn g4_last_link_refused() {
        assert!(check_unlink("e", &g("a"), Sharing::Shared, &[g("a"), g("b")]).is_ok());
        assert!(check_unlink("e", &g("a"), Sharing::Shared, &[g("a")]).is_err());
        assert!(check_unlink("e", &g("c"), Sharing::Shared, &[g("a"), g("b")]).is_err());
        assert!(check_unlink("e", &g("a"), Sharing::Duplicated, &[g("a")]).is_err());
    }
}

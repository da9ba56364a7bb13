//! Checks of requests that name several resources: the two sides of a merge, and a
//! project merge's projects and group pairs.

use ferry_kit::status::Violations;
use ferry_proto::merge::v1 as pb;

use super::convert as c;
use crate::domain::{GroupName, GroupPair, ProjectName, Strategy};
use crate::service::ProjectMergeRequest;

/// Project source and recipient must differ and share an environment.
fn check_projects(v: &mut Violations, source: &Option<ProjectName>, recipient: &Option<ProjectName>) {
    if let (Some(s), Some(r)) = (source, recipient) {
        if s == r {
            v.add("recipient", "must differ from source: a project cannot be merged into itself");
        } else if s.env != r.env {
            v.add("recipient", format!("must be in the source's environment ({}); a merge never crosses environments", s.env_name()));
        }
    }
}

/// Group pairs of a project merge: each in `env`, source and recipient different.
fn pairs(v: &mut Violations, given: &[pb::GroupPair], env: Option<&str>) -> Option<Vec<GroupPair>> {
    let mut out = Vec::with_capacity(given.len());
    let mut ok = true;
    for (i, p) in given.iter().enumerate() {
        let s = c::group(v, &format!("group_pairs[{i}].source"), &p.source);
        let r = c::group(v, &format!("group_pairs[{i}].recipient"), &p.recipient);
        match (s, r) {
            (Some(s), Some(r)) => {
                if env.is_some_and(|e| s.env != e || r.env != e) {
                    v.add(format!("group_pairs[{i}]"), "both groups must be in the projects' environment");
                    ok = false;
                } else if s == r {
                    v.add(format!("group_pairs[{i}]"), "a group cannot be merged into itself");
                    ok = false;
                } else {
                    out.push(GroupPair { source: s, recipient: r });
                }
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

pub(super) fn project_merge_request(
    v: &mut Violations,
    source: &str,
    recipient: &str,
    merge_groups_first: bool,
    strategy: i32,
    given: &[pb::GroupPair],
    created_by: &str,
) -> Option<ProjectMergeRequest> {
    let s = v.check("source", ProjectName::parse(source));
    let r = v.check("recipient", ProjectName::parse(recipient));
    check_projects(v, &s, &r);
    let strategy = v.check("strategy", Strategy::from_request(strategy));
    let pairs = pairs(v, given, s.as_ref().map(|s| s.env.as_str()));
    Some(ProjectMergeRequest {
        source: s?,
        recipient: r?,
        merge_groups_first,
        strategy: strategy?,
        pairs: pairs?,
        plans: vec![],
        proceed_with_missing_dependencies: false,
        created_by: created_by.to_owned(),
    })
}

/// Source and recipient must differ and share an environment (a merge never crosses one).
pub(super) fn check_pair(v: &mut Violations, source: &Option<GroupName>, recipient: &Option<GroupName>) {
    if let (Some(s), Some(r)) = (source, recipient) {
        if s == r {
            v.add("recipient", "must differ from source: a group cannot be merged into itself");
        } else if s.env != r.env {
            v.add("recipient", format!("must be in the source's environment ({}); a merge never crosses environments", s.env_name()));
        }
    }
}

//! The resource-name patterns a string field expects, read from the descriptor set's own
//! comments (`// environments/{environment}/groups/{group}`), so the fuzzer can send names
//! of the right kind instead of hoping a random one fits. A field without such a comment
//! borrows from its request's resource: `GetGroupRequest.name` takes `Group.name`'s
//! pattern, `ListGroupsRequest.parent` that pattern without its last collection.

use std::collections::HashMap;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

/// (message full name, field name) → patterns such as `environments/{environment}`.
#[derive(Debug, Default)]
pub struct Shapes {
    patterns: HashMap<(String, String), Vec<String>>,
}

/// A name's shape: even segments kept (collections), odd ones as `*` (ids), so a pattern
/// and the names that fit it have the same key: `environments/*/groups/*`.
pub fn shape_key(name: &str) -> String {
    name.split('/').enumerate().map(|(i, s)| if i % 2 == 1 { "*" } else { s }).collect::<Vec<_>>().join("/")
}

/// The name-like words of a comment: `environments/{environment}/fence`.
fn patterns_in(comment: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for word in comment.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '`' | '"' | ':')) {
        let word = word.trim_end_matches('.');
        let plausible = word.contains("/{")
            && word.split('/').all(|s| !s.is_empty() && (s.starts_with('{') || s.chars().all(|c| c.is_ascii_alphabetic() || c == '-')));
        if plausible && !found.iter().any(|f| f == word) {
            found.push(word.to_owned());
        }
    }
    found
}

/// The leading and trailing comments of every element of every file, by path.
fn comments(pool: &DescriptorPool) -> HashMap<(String, Vec<i32>), String> {
    let mut map = HashMap::new();
    for file in pool.files() {
        let Some(info) = &file.file_descriptor_proto().source_code_info else { continue };
        for loc in &info.location {
            let text =
                [loc.leading_comments.as_deref(), loc.trailing_comments.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
            if !text.is_empty() {
                map.insert((file.name().to_owned(), loc.path.clone()), text);
            }
        }
    }
    map
}

fn field_patterns(comments: &HashMap<(String, Vec<i32>), String>, field: &FieldDescriptor) -> Vec<String> {
    comments.get(&(field.parent_file().name().to_owned(), field.path().to_vec())).map(|c| patterns_in(c)).unwrap_or_default()
}

/// `GetGroupRequest` → `Group`; `ListGroupsRequest` → `Group`; `ListMergePlanItemsRequest`
/// → `MergePlanItem`: the message of the same package it is about, if there is one.
fn resource(pool: &DescriptorPool, request: &MessageDescriptor) -> Option<MessageDescriptor> {
    let name = request.name().strip_suffix("Request")?;
    let verb_end = name.char_indices().skip(1).find(|(_, c)| c.is_ascii_uppercase())?.0;
    let rest = &name[verb_end..];
    let singular =
        [rest.to_owned(), rest.strip_suffix("ies").map(|s| format!("{s}y")).unwrap_or_default(), rest.trim_end_matches('s').to_owned()];
    singular.iter().filter(|s| !s.is_empty()).find_map(|s| pool.get_message_by_name(&format!("{}.{s}", request.package_name())))
}

impl Shapes {
    pub fn new(pool: &DescriptorPool) -> Self {
        let comments = comments(pool);
        let mut patterns: HashMap<(String, String), Vec<String>> = HashMap::new();
        let ferry = pool.all_messages().filter(|m| m.package_name().starts_with("ferry."));
        for message in ferry {
            for field in message.fields().filter(|f| matches!(f.kind(), Kind::String)) {
                let own = field_patterns(&comments, &field);
                if !own.is_empty() {
                    patterns.insert((message.full_name().to_owned(), field.name().to_owned()), own);
                }
            }
        }
        // Borrowed from the resource message, for `name` and `parent` without a comment: a
        // parent from another request about the same resource (`ImportEntitiesRequest` as
        // `ListEntitiesRequest`), or the resource's name without its last collection.
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        for message in pool.all_messages().filter(|m| m.package_name().starts_with("ferry.")) {
            if let (Some(res), Some(own)) = (resource(pool, &message), patterns.get(&(message.full_name().to_owned(), "parent".to_owned())))
            {
                parents.entry(res.full_name().to_owned()).or_default().extend(own.iter().cloned());
            }
        }
        for message in pool.all_messages().filter(|m| m.package_name().starts_with("ferry.")) {
            let Some(res) = resource(pool, &message) else { continue };
            let Some(res_name) = patterns.get(&(res.full_name().to_owned(), "name".to_owned())).cloned() else { continue };
            let parent = parents.get(res.full_name()).cloned().unwrap_or_else(|| res_name.iter().filter_map(|p| parent_of(p)).collect());
            for (field, derived) in [("name", res_name.clone()), ("parent", parent)] {
                let key = (message.full_name().to_owned(), field.to_owned());
                if message.get_field_by_name(field).is_some() && !patterns.contains_key(&key) && !derived.is_empty() {
                    patterns.insert(key, derived);
                }
            }
        }
        // Last, a field named like one with a pattern elsewhere in its package
        // (`StartRefreshRequest.source` as `PlanRefreshRequest.source`).
        let mut by_field: HashMap<(String, String), Vec<String>> = HashMap::new();
        for ((message, field), list) in &patterns {
            if field != "name" && field != "parent" {
                let package = message.rsplit_once('.').map_or("", |(p, _)| p).to_owned();
                let entry = by_field.entry((package, field.clone())).or_default();
                entry.extend(list.iter().filter(|p| !entry.contains(p)).cloned().collect::<Vec<_>>());
            }
        }
        for message in pool.all_messages().filter(|m| m.package_name().starts_with("ferry.")) {
            for field in message.fields().filter(|f| matches!(f.kind(), Kind::String)) {
                let key = (message.full_name().to_owned(), field.name().to_owned());
                if let Some(list) = by_field.get(&(message.package_name().to_owned(), field.name().to_owned()))
                    && !patterns.contains_key(&key)
                {
                    patterns.insert(key, list.clone());
                }
            }
        }
        Self { patterns }
    }

    /// The patterns of `field` in `message` (a full name); empty when none is known.
    pub fn patterns(&self, message: &str, field: &str) -> &[String] {
        self.patterns.get(&(message.to_owned(), field.to_owned())).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// `environments/{environment}/groups/{group}` → `environments/{environment}`.
fn parent_of(pattern: &str) -> Option<String> {
    let segments: Vec<&str> = pattern.split('/').collect();
    (segments.len() >= 4).then(|| segments[..segments.len() - 2].join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_come_from_comments_and_resources() {
        let pool = crate::methods::pool().expect("pool"); // ok: test
        let shapes = Shapes::new(&pool);
        let has = |m: &str, f: &str, p: &str| shapes.patterns(m, f).iter().any(|x| x == p);
        assert!(has("ferry.registry.v1.CreateGroupRequest", "parent", "environments/{environment}"), "{:?}", shapes.patterns);
        assert!(has("ferry.registry.v1.GetGroupRequest", "name", "environments/{environment}/groups/{group}"));
        assert!(has("ferry.registry.v1.ListGroupsRequest", "parent", "environments/{environment}"));
        assert!(has("ferry.registry.v1.ImportEntitiesRequest", "parent", "environments/{environment}/groups/{group}"));
        assert!(has("ferry.merge.v1.CreateMergePlanRequest", "source", "environments/{environment}/groups/{group}"));
        assert!(has("ferry.refresh.v1.StartRefreshRequest", "source", "environments/{environment}"));
        assert_eq!(shape_key("environments/prod/groups/test"), shape_key("environments/{environment}/groups/{group}"));
    }
}

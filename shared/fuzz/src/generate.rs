//! Random well-formed requests for any message of the descriptor pool: each field left
//! unset or filled, strings chosen by what the field's name says it holds (a resource
//! name, an id, a request id, a JSON document, a token), lists empty to long, nested
//! messages to a depth limit, one member of each oneof, and the well-known types
//! (Timestamp at its limits, FieldMask with real and unknown paths) built on purpose.
//!
//! Half the requests are *tame*: names of the kind the field's comment asks for, valid ids,
//! small numbers, known enum values. A request with one bad field is refused before it gets
//! anywhere; tame ones reach the code behind validation, where the odd state lives. The other
//! half are *wild*: every value odd, huge or at a bound.

use prost_reflect::{DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, Value};
use rand::Rng;
use rand::seq::IndexedRandom;

use crate::pool::NamePool;
use crate::shapes::{Shapes, shape_key};
use crate::values;

/// Bytes one generated message may hold, well under tonic's 4 MiB receive limit.
pub const MESSAGE_BUDGET: usize = 2 << 20;
/// Bytes one client stream may carry over all its messages.
pub const STREAM_BUDGET: usize = 8 << 20;
/// Nesting depth below which message fields stay unset.
const MAX_DEPTH: usize = 4;

/// What a string field holds, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    RequestId,
    Json,
    Token,
    Id,
    Key,
    /// Free text or a value of its own syntax (URL, cron, external system).
    Text,
    /// A resource name (anything else: name, parent, source, group, mappings, ...).
    Name,
}

pub fn holds(field: &str) -> Holds {
    const TEXT: &[&str] = &[
        "display_name",
        "recipient_display_name",
        "description",
        "reason",
        "comment",
        "message",
        "phase",
        "title",
        "summary",
        "log",
        "api_key",
        "external_system",
        "schedule",
        "base_url",
        "pause_reason",
        "abort_reason",
        "waiting_for",
        "content_hash",
        "source_content_hash",
        "recipient_content_hash",
        "checksum",
        "credential_fingerprint",
        "field",
        "before",
        "after",
        "violation_type",
        "subject",
        "markdown",
    ];
    match field {
        "request_id" => Holds::RequestId,
        "key" | "keys" => Holds::Key,
        f if f.ends_with("_json") => Holds::Json,
        f if f.ends_with("_token") || f.ends_with("etag") => Holds::Token,
        f if f.ends_with("_id") => Holds::Id,
        f if TEXT.contains(&f) => Holds::Text,
        _ => Holds::Name,
    }
}

/// Builds random messages from one RNG, drawing names from the pool.
pub struct Generator<'a, R: Rng> {
    rng: &'a mut R,
    pool: &'a NamePool,
    shapes: &'a Shapes,
    /// Bytes left for the message being built.
    budget: usize,
    /// Plausible values only (see the module doc).
    tame: bool,
}

impl<'a, R: Rng> Generator<'a, R> {
    pub fn new(rng: &'a mut R, pool: &'a NamePool, shapes: &'a Shapes) -> Self {
        Self { rng, pool, shapes, budget: MESSAGE_BUDGET, tame: false }
    }

    /// A random instance of `desc`, at most about `budget` bytes encoded.
    pub fn message(&mut self, desc: &MessageDescriptor, budget: usize) -> DynamicMessage {
        self.budget = budget.min(MESSAGE_BUDGET);
        self.tame = self.rng.random_bool(0.5);
        self.message_at(desc, None, 0, false)
    }

    fn spend(&mut self, n: usize) {
        self.budget = self.budget.saturating_sub(n);
    }

    /// `small`: an element of a long list, kept short (no huge strings, short lists).
    fn message_at(&mut self, desc: &MessageDescriptor, parent: Option<&MessageDescriptor>, depth: usize, small: bool) -> DynamicMessage {
        match desc.full_name() {
            "google.protobuf.Timestamp" | "google.protobuf.Duration" => return self.timestamp(desc),
            "google.protobuf.FieldMask" => return self.field_mask(desc, parent),
            _ => {}
        }
        let mut msg = DynamicMessage::new(desc.clone());
        let fill = if depth == 0 || self.tame { 0.7 } else { 0.55 };
        for field in desc.fields() {
            if field.containing_oneof().is_some_and(|o| !o.is_synthetic()) {
                continue;
            }
            let likely = match (field.kind(), holds(field.name())) {
                (Kind::String, Holds::Name | Holds::RequestId) => true,
                (Kind::String, Holds::Id | Holds::Key | Holds::Json) => self.tame,
                _ => false,
            };
            if self.rng.random_bool(if likely { 0.88 } else { fill }) {
                let value = self.field_value(&field, desc, depth, small);
                msg.set_field(&field, value);
            }
        }
        for oneof in desc.oneofs().filter(|o| !o.is_synthetic()) {
            let members: Vec<FieldDescriptor> = oneof.fields().collect();
            if self.rng.random_bool(0.85)
                && let Some(field) = members.choose(self.rng).cloned()
            {
                let value = self.single(&field, desc, depth, small);
                msg.set_field(&field, value);
            }
        }
        msg
    }

    fn field_value(&mut self, field: &FieldDescriptor, parent: &MessageDescriptor, depth: usize, small: bool) -> Value {
        if field.is_map() {
            // No Ferry request has a map today; a few entries keep the path exercised.
            let Kind::Message(entry) = field.kind() else { return Value::default_value_for_field(field) };
            let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let mut map = std::collections::HashMap::new();
            for _ in 0..self.rng.random_range(0..4) {
                if let Some(key) = self.single(&key_field, &entry, depth, true).into_map_key() {
                    let value = self.single(&value_field, &entry, depth, true);
                    map.insert(key, value);
                }
            }
            return Value::Map(map);
        }
        if !field.is_list() {
            return self.single(field, parent, depth, small);
        }
        let len = match self.rng.random_range(0..100) {
            _ if self.tame => self.rng.random_range(0..=3),
            0..32 => 0,
            32..60 => 1,
            60..97 => self.rng.random_range(2..=5),
            _ if small => self.rng.random_range(2..=5),
            // Hundreds to 10,000, log-uniform: long enough to cross batch and bind-parameter
            // limits now and then without making every long list the slowest kind.
            _ => 10f64.powf(self.rng.random_range(2.0..4.0)) as usize,
        };
        let long = len > 5;
        let mut items = Vec::with_capacity(len.min(10_000));
        for _ in 0..len {
            if self.budget < 256 {
                break;
            }
            items.push(self.single(field, parent, depth, small || long));
        }
        Value::List(items)
    }

    fn single(&mut self, field: &FieldDescriptor, parent: &MessageDescriptor, depth: usize, small: bool) -> Value {
        self.spend(6);
        let name = field.name();
        if self.tame {
            match field.kind() {
                Kind::Int32 => return Value::I32(*[0, 1, 2, 5, 10, 50, 100].choose(self.rng).unwrap_or(&0)),
                Kind::Enum(e) => {
                    // UNSPECIFIED is the valid default of some fields and refused by others.
                    let known: Vec<i32> = e.values().map(|v| v.number()).filter(|n| *n != 0).collect();
                    let pick = if self.rng.random_bool(0.3) { None } else { known.choose(self.rng).copied() };
                    return Value::EnumNumber(pick.unwrap_or(0));
                }
                Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" && self.rng.random_bool(0.5) => {
                    return Value::Message(DynamicMessage::new(m));
                }
                _ => {}
            }
        }
        match field.kind() {
            Kind::String => Value::String(self.string(parent, name, small)),
            Kind::Bytes => {
                let n = self.rng.random_range(0..64).min(self.budget);
                self.spend(n);
                Value::Bytes((0..n).map(|_| self.rng.random::<u8>()).collect::<Vec<u8>>().into())
            }
            Kind::Bool => Value::Bool(self.rng.random()),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(values::i32_value(self.rng)),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                let known = if name.ends_with("_id") && self.rng.random_bool(0.7) { self.pool.number(self.rng) } else { None };
                Value::I64(known.unwrap_or_else(|| values::i64_value(self.rng)))
            }
            Kind::Uint32 | Kind::Fixed32 => Value::U32(values::u32_value(self.rng)),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(values::u64_value(self.rng)),
            Kind::Float => Value::F32(values::f64_value(self.rng) as f32),
            Kind::Double => Value::F64(values::f64_value(self.rng)),
            Kind::Enum(e) => Value::EnumNumber(self.enum_number(&e)),
            Kind::Message(m) if depth >= MAX_DEPTH => Value::Message(DynamicMessage::new(m)),
            Kind::Message(m) => Value::Message(self.message_at(&m, Some(parent), depth + 1, small)),
        }
    }

    /// A known value mostly; otherwise a number the enum does not define.
    fn enum_number(&mut self, e: &EnumDescriptor) -> i32 {
        let known: Vec<i32> = e.values().map(|v| v.number()).collect();
        if self.rng.random_bool(0.75)
            && let Some(n) = known.choose(self.rng)
        {
            return *n;
        }
        let past = known.iter().max().map_or(1, |m| m.saturating_add(1));
        *[99, -1, i32::MAX, i32::MIN, past].choose(self.rng).unwrap_or(&99)
    }

    fn string(&mut self, message: &MessageDescriptor, field: &str, small: bool) -> String {
        let s = if !self.tame && !small && self.budget > (64 << 10) && self.rng.random_bool(0.015) {
            let n = self.rng.random_range((64 << 10)..=(1 << 20)).min(self.budget - 1024);
            values::huge(self.rng, n)
        } else {
            self.shaped(holds(field), message.full_name(), field)
        };
        let s = if s.len() > self.budget { String::new() } else { s };
        self.spend(s.len() + 2);
        s
    }

    fn shaped(&mut self, holds: Holds, message: &str, field: &str) -> String {
        let roll = self.rng.random_range(0..100);
        let patterns = self.shapes.patterns(message, field);
        if !patterns.is_empty() && (self.tame && roll < 95 || roll < 45) {
            let pattern = patterns.choose(self.rng).cloned().unwrap_or_default();
            return self.named(&pattern);
        }
        if self.tame {
            return self.plain(holds, field, roll);
        }
        match holds {
            Holds::RequestId => self.request_id(roll),
            Holds::Json if roll < 75 => values::json(self.rng, self.budget.min(1 << 20)),
            Holds::Token if roll < 50 => self.pool.token(self.rng).unwrap_or_default(),
            Holds::Id | Holds::Key if roll < 40 => values::fresh_id(self.rng),
            Holds::Id | Holds::Key if roll < 65 => self.pool.id(self.rng).unwrap_or_else(|| values::fresh_id(self.rng)),
            Holds::Text if roll < 35 => values::plausible(self.rng, field),
            Holds::Text if roll < 45 => self.pool.name(self.rng).unwrap_or_default(),
            Holds::Name if roll < 50 => self.pool.name(self.rng).unwrap_or_default(),
            Holds::Name if roll < 68 => {
                let name = self.pool.name(self.rng).unwrap_or_else(|| "environments/prod".into());
                let other = if self.rng.random_bool(0.5) { self.pool.id(self.rng) } else { None };
                values::mutate_name(self.rng, &name, other)
            }
            Holds::Name if roll < 75 => format!("environments/{}", values::fresh_id(self.rng)),
            _ => values::odd(self.rng),
        }
    }

    /// A name that fits `pattern`: a real one of that shape, or one made of known ids;
    /// wild requests sometimes get it mutated.
    fn named(&mut self, pattern: &str) -> String {
        let real = if self.rng.random_bool(0.75) { self.pool.name_of_shape(&shape_key(pattern), self.rng) } else { None };
        let name = real.unwrap_or_else(|| {
            let segments: Vec<String> = pattern
                .split('/')
                .map(|s| match s.starts_with('{') {
                    true if self.rng.random_bool(0.7) => self.pool.id(self.rng).unwrap_or_else(|| values::fresh_id(self.rng)),
                    true => values::fresh_id(self.rng),
                    false => s.to_owned(),
                })
                .collect();
            segments.join("/")
        });
        if !self.tame && self.rng.random_bool(0.3) {
            let other = self.pool.id(self.rng);
            return values::mutate_name(self.rng, &name, other);
        }
        name
    }

    /// A plausible value of a field without a name pattern.
    fn plain(&mut self, holds: Holds, field: &str, roll: u32) -> String {
        match holds {
            Holds::RequestId => self.request_id(roll),
            Holds::Json => values::tame_json(self.rng),
            Holds::Token if roll < 50 => self.pool.token(self.rng).unwrap_or_default(),
            Holds::Token => String::new(),
            Holds::Id | Holds::Key if roll < 50 => values::fresh_id(self.rng),
            Holds::Id | Holds::Key => self.pool.id(self.rng).unwrap_or_else(|| values::fresh_id(self.rng)),
            Holds::Text => values::plausible(self.rng, field),
            Holds::Name => self.pool.name(self.rng).unwrap_or_else(|| "environments/prod".into()),
        }
    }

    /// Empty, fresh, or reused from an earlier call of any method.
    fn request_id(&mut self, roll: u32) -> String {
        let id = match roll {
            0..30 => String::new(),
            30..65 => values::fresh_request_id(self.rng),
            65..95 => self.pool.request_id(self.rng).unwrap_or_else(|| values::fresh_request_id(self.rng)),
            _ => values::odd(self.rng),
        };
        self.pool.add_request_id(&id);
        id
    }

    fn timestamp(&mut self, desc: &MessageDescriptor) -> DynamicMessage {
        let mut msg = DynamicMessage::new(desc.clone());
        let (seconds, nanos) = if self.tame { (self.rng.random_range(0..2_000_000_000), 0) } else { values::timestamp(self.rng) };
        if self.rng.random_bool(0.9) {
            msg.set_field_by_name("seconds", Value::I64(seconds));
        }
        if self.rng.random_bool(0.7) {
            msg.set_field_by_name("nanos", Value::I32(nanos));
        }
        msg
    }

    /// Paths of the message the mask applies to (the request's resource field), unknown
    /// paths, or none.
    fn field_mask(&mut self, desc: &MessageDescriptor, parent: Option<&MessageDescriptor>) -> DynamicMessage {
        let target = parent.and_then(|p| {
            p.fields().find_map(|f| match f.kind() {
                Kind::Message(m) if !m.full_name().starts_with("google.protobuf.") => Some(m),
                _ => None,
            })
        });
        let real: Vec<(String, String)> =
            target.iter().flat_map(|t| t.fields().map(|f| (f.name().to_owned(), f.json_name().to_owned()))).collect();
        let mut paths = Vec::new();
        for _ in 0..self.rng.random_range(0..5) {
            let path = match (self.rng.random_range(0..10), real.choose(self.rng)) {
                (0..6, Some((name, _))) => name.clone(),
                (6, Some((_, json))) => json.clone(),
                (7, Some((name, _))) => format!("{name}.nested"),
                _ => ["nope", "*", "", "name", "update_time", "groups.0", "kind"].choose(self.rng).unwrap_or(&"nope").to_string(),
            };
            paths.push(Value::String(path));
        }
        let mut msg = DynamicMessage::new(desc.clone());
        msg.set_field_by_name("paths", Value::List(paths));
        msg
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn every_request_type_generates_and_encodes_under_the_limit() {
        let pool = crate::methods::pool().expect("descriptor set"); // ok: test
        let names = NamePool::new();
        names.add_name("environments/prod/groups/test");
        let shapes = Shapes::new(&pool);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for method in crate::methods::methods(&pool) {
            for _ in 0..20 {
                let msg = Generator::new(&mut rng, &names, &shapes).message(&method.input, MESSAGE_BUDGET);
                let bytes = msg.encode_to_vec();
                assert!(bytes.len() < 3 << 20, "{}: {} bytes", method.path, bytes.len());
                DynamicMessage::decode(method.input.clone(), bytes.as_slice()).expect("round trip"); // ok: test
            }
        }
    }

    #[test]
    fn field_names_pick_the_value_shape() {
        assert_eq!(holds("request_id"), Holds::RequestId);
        assert_eq!(holds("payload_json"), Holds::Json);
        assert_eq!(holds("page_token"), Holds::Token);
        assert_eq!(holds("plan_etag"), Holds::Token);
        assert_eq!(holds("group_id"), Holds::Id);
        assert_eq!(holds("parent"), Holds::Name);
        assert_eq!(holds("display_name"), Holds::Text);
    }
}

//! The live pool of names the fuzzer draws from: seeded with the world it created, grown
//! from every reply. Random strings almost never name a real resource, so without it
//! every call would stop at NOT_FOUND; with it, calls reach the code behind the lookup.
//! Request ids are pooled too and reused across methods (a request id used by one method
//! and replayed on another once found ImportEntities answering INTERNAL).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use prost_reflect::{DynamicMessage, Value};
use rand::Rng;

/// Names kept (the last ones seen).
const NAMES: usize = 2000;
/// Names kept per shape (`environments/*/groups/*`).
const PER_SHAPE: usize = 200;
/// Shapes kept.
const SHAPES: usize = 500;
/// Ids, tokens, etags and request ids kept, each.
const SMALL: usize = 500;
/// Longest string worth keeping: longer ones are fuzz echoes, not names.
const LONGEST: usize = 300;

/// A bounded set that forgets its oldest member.
#[derive(Debug)]
struct Bounded<T> {
    order: VecDeque<T>,
    seen: HashSet<T>,
    cap: usize,
}

impl<T: Clone + Eq + std::hash::Hash> Bounded<T> {
    fn new(cap: usize) -> Self {
        Self { order: VecDeque::new(), seen: HashSet::new(), cap }
    }

    fn add(&mut self, v: T) {
        if self.seen.contains(&v) {
            return;
        }
        if self.order.len() == self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(v.clone());
        self.order.push_back(v);
    }

    fn pick(&self, rng: &mut impl Rng) -> Option<T> {
        if self.order.is_empty() {
            return None;
        }
        // Newer members more often: they are what the world holds now.
        let n = self.order.len();
        let i = if rng.random_bool(0.5) { n - 1 - rng.random_range(0..n.min(50)) } else { rng.random_range(0..n) };
        self.order.get(i).cloned()
    }

    fn len(&self) -> usize {
        self.order.len()
    }
}

#[derive(Debug)]
struct Inner {
    /// Resource names and anything else containing '/'.
    names: Bounded<String>,
    /// The same names by shape, to find one of the kind a field wants.
    shapes: HashMap<String, Bounded<String>>,
    /// Resource ids: the segments of names (`prod`, `test`, `42`) and `*_id` values.
    ids: Bounded<String>,
    /// Page tokens and etags.
    tokens: Bounded<String>,
    /// Numeric ids (entity ids, for the merge operations that take them).
    numbers: Bounded<i64>,
    request_ids: Bounded<String>,
}

/// The pool, shared by every worker.
#[derive(Debug)]
pub struct NamePool {
    inner: Mutex<Inner>,
}

impl Default for NamePool {
    fn default() -> Self {
        Self::new()
    }
}

impl NamePool {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                names: Bounded::new(NAMES),
                shapes: HashMap::new(),
                ids: Bounded::new(SMALL),
                tokens: Bounded::new(SMALL),
                numbers: Bounded::new(SMALL),
                request_ids: Bounded::new(SMALL),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A worker that panicked mid-update leaves a usable pool: every update is one push.
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Adds a resource name and the ids in it.
    pub fn add_name(&self, name: &str) {
        if name.is_empty() || name.len() > LONGEST {
            return;
        }
        self.with(|p| {
            p.names.add(name.to_owned());
            let key = crate::shapes::shape_key(name);
            // Fuzzed names echoed back make new shapes without end; real ones come first.
            if p.shapes.len() < SHAPES || p.shapes.contains_key(&key) {
                p.shapes.entry(key).or_insert_with(|| Bounded::new(PER_SHAPE)).add(name.to_owned());
            }
            // environments/{env}/groups/{group}: the ids are every second segment.
            for id in name.split('/').skip(1).step_by(2).filter(|s| !s.is_empty()) {
                p.ids.add(id.to_owned());
                if let Ok(n) = id.parse::<i64>() {
                    p.numbers.add(n);
                }
            }
        });
    }

    pub fn add_id(&self, id: &str) {
        if !id.is_empty() && id.len() <= LONGEST {
            self.with(|p| p.ids.add(id.to_owned()));
        }
    }

    pub fn add_token(&self, token: &str) {
        if !token.is_empty() && token.len() <= 4 * LONGEST {
            self.with(|p| p.tokens.add(token.to_owned()));
        }
    }

    pub fn add_number(&self, n: i64) {
        self.with(|p| p.numbers.add(n));
    }

    pub fn add_request_id(&self, id: &str) {
        if !id.is_empty() && id.len() <= LONGEST {
            self.with(|p| p.request_ids.add(id.to_owned()));
        }
    }

    pub fn name(&self, rng: &mut impl Rng) -> Option<String> {
        self.with(|p| p.names.pick(rng))
    }

    /// A name of the shape `key` (see [`crate::shapes::shape_key`]).
    pub fn name_of_shape(&self, key: &str, rng: &mut impl Rng) -> Option<String> {
        self.with(|p| p.shapes.get(key).and_then(|b| b.pick(rng)))
    }

    pub fn id(&self, rng: &mut impl Rng) -> Option<String> {
        self.with(|p| p.ids.pick(rng))
    }

    pub fn token(&self, rng: &mut impl Rng) -> Option<String> {
        self.with(|p| p.tokens.pick(rng))
    }

    pub fn number(&self, rng: &mut impl Rng) -> Option<i64> {
        self.with(|p| p.numbers.pick(rng))
    }

    pub fn request_id(&self, rng: &mut impl Rng) -> Option<String> {
        self.with(|p| p.request_ids.pick(rng))
    }

    /// (names, ids, tokens, numbers, request ids) held now.
    pub fn sizes(&self) -> (usize, usize, usize, usize, usize) {
        self.with(|p| (p.names.len(), p.ids.len(), p.tokens.len(), p.numbers.len(), p.request_ids.len()))
    }

    /// Takes every name-like value of a reply (any depth, lists included).
    pub fn harvest(&self, message: &DynamicMessage) {
        for (field, value) in message.fields() {
            self.harvest_value(field.name(), value);
        }
    }

    fn harvest_value(&self, field: &str, value: &Value) {
        match value {
            Value::String(s) => {
                // A name has a '/' and no spaces; summaries and log lines mention names
                // in prose and would fill the pool with sentences.
                if s.contains('/') && !s.contains(char::is_whitespace) {
                    self.add_name(s);
                } else if field == "etag" || field.ends_with("_etag") || field.ends_with("_token") {
                    self.add_token(s);
                } else if field.ends_with("_id") || field == "key" {
                    self.add_id(s);
                }
            }
            Value::I64(n) if field.ends_with("_id") => self.add_number(*n),
            Value::Message(m) => self.harvest(m),
            Value::List(items) => items.iter().for_each(|v| self.harvest_value(field, v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn names_give_their_ids_and_the_pool_stays_bounded() {
        let pool = NamePool::new();
        pool.add_name("environments/prod/entities/42");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(pool.number(&mut rng), Some(42));
        for i in 0..NAMES + 10 {
            pool.add_name(&format!("environments/e{i}"));
        }
        let (names, ids, ..) = pool.sizes();
        assert_eq!(names, NAMES);
        assert_eq!(ids, SMALL);
    }
}

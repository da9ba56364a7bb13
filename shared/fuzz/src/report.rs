//! What a run saw: calls, rate, codes overall and per method, and the bad calls (UNKNOWN,
//! INTERNAL, UNAVAILABLE, DATA_LOSS), each with the request that got it, as text.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use tonic::Code;

/// Bad calls kept with their request.
pub const KEEP_BAD: usize = 50;
/// Distinct messages kept per code, and their length.
const MESSAGES: usize = 4;
const MESSAGE_CHARS: usize = 160;

fn shorten(message: &str) -> String {
    let mut s: String = message.chars().take(MESSAGE_CHARS).collect();
    if message.chars().count() > MESSAGE_CHARS {
        s.push('…');
    }
    s
}

/// The label under which client-side deadlines are counted (not bad: the service was slow).
pub const CLIENT_TIMEOUT: &str = "DEADLINE_EXCEEDED (client)";

/// The codes no request, however odd, may get: the service failed, not the caller
/// (UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS: what the services log at ERROR).
pub fn is_bad(code: Code) -> bool {
    ferry_kit::metrics::blame(code) == Some(ferry_kit::metrics::Blame::Ours)
}

pub use ferry_kit::status::code_name;

/// One call that got a bad code.
#[derive(Debug, Clone)]
pub struct BadCall {
    /// `RegistryService/ImportEntities`.
    pub method: String,
    pub code: Code,
    pub message: String,
    /// The request (every message of a client stream), as text, a few KB at most.
    pub request: String,
}

/// Bad calls grouped by (method, code, message): how often, and the first request.
#[derive(Debug, Clone)]
pub struct Distinct {
    pub count: u64,
    pub first: BadCall,
}

/// The tally of a run (also of one worker, merged at the end).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub calls: u64,
    pub elapsed: Duration,
    /// Code label → calls.
    pub codes: BTreeMap<String, u64>,
    /// Method → code label → calls.
    pub per_method: BTreeMap<String, BTreeMap<String, u64>>,
    /// Method → time spent in its calls (client side, wall clock).
    pub time: BTreeMap<String, Duration>,
    /// Code label → the first few distinct messages seen with it (shortened).
    pub messages: BTreeMap<String, Vec<String>>,
    /// The first [`KEEP_BAD`] bad calls.
    pub bad: Vec<BadCall>,
    pub bad_count: u64,
    pub distinct: BTreeMap<(String, String, String), Distinct>,
    /// Replies that do not decode as the method's output type (a service bug too).
    pub malformed_replies: Vec<String>,
    /// Workers that died (a harness bug): their panic message.
    pub harness_errors: Vec<String>,
}

impl Report {
    pub fn record(
        &mut self,
        method: &str,
        took: Duration,
        code: Code,
        client_timeout: bool,
        message: &str,
        request: impl FnOnce() -> String,
    ) {
        let label = if client_timeout { CLIENT_TIMEOUT } else { code_name(code) };
        *self.time.entry(method.to_owned()).or_default() += took;
        self.calls += 1;
        *self.codes.entry(label.to_owned()).or_default() += 1;
        *self.per_method.entry(method.to_owned()).or_default().entry(label.to_owned()).or_default() += 1;
        let seen = self.messages.entry(label.to_owned()).or_default();
        if code != Code::Ok && seen.len() < MESSAGES && !message.is_empty() {
            let short = shorten(message);
            if !seen.contains(&short) {
                seen.push(short);
            }
        }
        if client_timeout || !is_bad(code) {
            return;
        }
        self.bad_count += 1;
        let key = (method.to_owned(), code_name(code).to_owned(), message.to_owned());
        let need_example = self.bad.len() < KEEP_BAD || !self.distinct.contains_key(&key);
        let call = need_example.then(|| BadCall { method: method.to_owned(), code, message: message.to_owned(), request: request() });
        if let Some(call) = &call
            && self.bad.len() < KEEP_BAD
        {
            self.bad.push(call.clone());
        }
        match self.distinct.get_mut(&key) {
            Some(d) => d.count += 1,
            None => {
                if let Some(first) = call {
                    self.distinct.insert(key, Distinct { count: 1, first });
                }
            }
        }
    }

    /// Adds another tally (a worker's) to this one.
    pub fn merge(&mut self, other: Report) {
        self.calls += other.calls;
        for (label, n) in other.codes {
            *self.codes.entry(label).or_default() += n;
        }
        for (method, codes) in other.per_method {
            let mine = self.per_method.entry(method).or_default();
            for (label, n) in codes {
                *mine.entry(label).or_default() += n;
            }
        }
        for (method, took) in other.time {
            *self.time.entry(method).or_default() += took;
        }
        for (label, list) in other.messages {
            let mine = self.messages.entry(label).or_default();
            for m in list {
                if mine.len() < MESSAGES && !mine.contains(&m) {
                    mine.push(m);
                }
            }
        }
        self.bad_count += other.bad_count;
        let room = KEEP_BAD.saturating_sub(self.bad.len());
        self.bad.extend(other.bad.into_iter().take(room));
        for (key, d) in other.distinct {
            match self.distinct.get_mut(&key) {
                Some(mine) => mine.count += d.count,
                None => {
                    self.distinct.insert(key, d);
                }
            }
        }
        self.malformed_replies.extend(other.malformed_replies);
        self.malformed_replies.truncate(KEEP_BAD);
        self.harness_errors.extend(other.harness_errors);
    }

    pub fn calls_per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Whether the run found nothing: no bad code, no malformed reply, no harness error.
    pub fn clean(&self) -> bool {
        self.bad_count == 0 && self.malformed_replies.is_empty() && self.harness_errors.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ferry-fuzz: seed {} (FERRY_FUZZ_SEED={} replays it)", self.seed, self.seed)?;
        writeln!(f, "  calls       {:>10}", self.calls)?;
        writeln!(f, "  seconds     {:>10.1}", self.elapsed.as_secs_f64())?;
        writeln!(f, "  calls/s     {:>10.0}", self.calls_per_second())?;
        writeln!(f, "  codes:")?;
        let mut codes: Vec<_> = self.codes.iter().collect();
        codes.sort_by(|a, b| b.1.cmp(a.1));
        for (label, n) in codes {
            writeln!(f, "    {label:<28} {n:>10}")?;
            for m in self.messages.get(label).into_iter().flatten() {
                writeln!(f, "        e.g. {m}")?;
            }
        }
        writeln!(f, "  per method (calls, mean time, codes):")?;
        for (method, codes) in &self.per_method {
            let total: u64 = codes.values().sum();
            let mut by: Vec<_> = codes.iter().collect();
            by.sort_by(|a, b| b.1.cmp(a.1));
            let list: Vec<String> = by.iter().map(|(l, n)| format!("{l} {n}")).collect();
            let ms = self.time.get(method).map_or(0.0, |t| t.as_secs_f64() * 1000.0 / total.max(1) as f64);
            writeln!(f, "    {method:<50} {total:>8} {ms:>8.1} ms  {}", list.join(", "))?;
        }
        writeln!(f, "  bad calls   {:>10} ({} distinct)", self.bad_count, self.distinct.len())?;
        for ((method, code, message), d) in &self.distinct {
            writeln!(f, "    [{code}] {method} ×{}: {message}", d.count)?;
            writeln!(f, "        request: {}", d.first.request)?;
        }
        if !self.malformed_replies.is_empty() {
            writeln!(f, "  malformed replies: {}", self.malformed_replies.len())?;
            for m in self.malformed_replies.iter().take(5) {
                writeln!(f, "    {m}")?;
            }
        }
        for e in &self.harness_errors {
            writeln!(f, "  harness error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_codes_are_kept_and_grouped_timeouts_are_not_bad() {
        let mut a = Report::default();
        a.record("S/M", Duration::ZERO, Code::Internal, false, "internal error", || "{ x: 1 }".into());
        a.record("S/M", Duration::ZERO, Code::DeadlineExceeded, true, "", || unreachable!());
        a.record("S/M", Duration::ZERO, Code::Cancelled, false, "", || unreachable!());
        let mut b = Report::default();
        b.record("S/M", Duration::ZERO, Code::Internal, false, "internal error", || "{ x: 2 }".into());
        b.record("S/N", Duration::ZERO, Code::NotFound, false, "", || unreachable!());
        a.merge(b);
        assert_eq!((a.calls, a.bad_count, a.bad.len(), a.distinct.len()), (5, 2, 2, 1));
        assert_eq!(a.codes.get(CLIENT_TIMEOUT), Some(&1));
        assert!(!a.clean());
        assert!(a.to_string().contains("[INTERNAL] S/M ×2: internal error"), "{a}");
    }
}

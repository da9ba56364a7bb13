//! Scalar values a fuzzed request is built from: odd but valid UTF-8 strings, huge
//! strings, JSON documents, mutations of real names, integers at their bounds and
//! timestamps at their limits. Proto3 strings must be valid UTF-8 on the wire (gRPC
//! answers INTERNAL to a message that does not parse), so "binary-looking" text is made of
//! control characters, NULs, marks and replacement characters, never invalid bytes.

use rand::Rng;
use rand::seq::IndexedRandom;

/// Strings that have broken parsers, validators, SQL and path handling somewhere.
const ODD: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "a\u{0}b",
    "\u{1}\u{2}\u{7}\u{8}\u{1b}[31m\u{7f}",
    "\t\r\n",
    "line\nbreak",
    "\u{202e}dorp\u{202c}",
    "\u{200f}\u{200e}rtl",
    "\u{200b}zero\u{200d}width",
    "\u{feff}bom",
    "e\u{301}\u{301}\u{301}\u{301}\u{301}",
    "\u{2028}\u{2029}",
    "🦀",
    "👩\u{200d}👩\u{200d}👧\u{200d}👦",
    "\u{fffd}\u{fffd}",
    "\u{10ffff}",
    "\u{ffff}",
    "рrod",
    "ｐｒｏｄ",
    "PROD",
    "%00",
    "%2e%2e%2f",
    "%",
    "_",
    "*",
    "-",
    ":",
    "lookup:countries",
    "a:b:c",
    "../",
    "..",
    ".",
    "/",
    "//",
    "/etc/passwd",
    "..\\..\\windows",
    "'",
    "\"",
    "`",
    "\\",
    "\\u0000",
    "' OR 1=1 --",
    "'; DROP TABLE entities; --",
    "\" OR \"\"=\"",
    "1; SELECT pg_sleep(5)",
    "$1",
    "?",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "0",
    "-1",
    "1",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1e309",
    "-0",
    "0x10",
    "NaN",
    "Infinity",
    "true",
    "null",
    "undefined",
    "*/15 * * * *",
    "* * * * * *",
    "60 24 32 13 8",
    "http://",
    "https://example.com",
    "https://rally.example.com/../../x",
    "ftp://example.com",
    "javascript:alert(1)",
    "http://[::1]:99999",
    "environments/",
    "environments/-",
    "environments/-/groups/-",
    "environments//groups/",
    "mergePlans/",
    "jobs/0",
    "jobs/-1",
    "refreshRuns/00000000-0000-0000-0000-000000000000",
    "promotionRuns/x/../y",
];

/// Valid JSON that is unusual, and invalid JSON.
const JSON: &[&str] = &[
    "{}",
    "[]",
    "null",
    "true",
    "0",
    "\"s\"",
    "{\"a\":1}",
    "{\"title\":\"name\"}",
    "{\"a\":1,\"a\":2}",
    "{\"\":null}",
    "{\"a\":null}",
    "{\"n\":1e999999}",
    "{\"n\":-1e-999999}",
    "{\"n\":123456789012345678901234567890123456789}",
    "{\"n\":-0}",
    "{\"n\":18446744073709551616}",
    "{\"s\":\"\\u0000\"}",
    "{\"s\":\"\\ud800\"}",
    "{\"s\":\"\\udfff\\ud800\"}",
    "{\"\\u0000\":1}",
    "{\"a\":[1,2,{\"b\":[null,true,false]}]}",
    "  {\"padded\": true}  ",
    "{",
    "}",
    "{'a':1}",
    "[1,]",
    "{\"a\":1,}",
    "{} trailing",
    "{\"a\":NaN}",
    "{\"a\":Infinity}",
    "\u{feff}{}",
    "",
    " ",
];

/// `n` bytes (approximately) of one repeated piece.
pub fn huge(rng: &mut impl Rng, n: usize) -> String {
    let piece = ["a", "é", "🦀", "\u{0}", "x/", "' OR 1=1 -- ", "\u{202e}", "%00"].choose(rng).copied().unwrap_or("a");
    piece.repeat((n / piece.len()).max(1))
}

/// A valid resource id: lowercase letters, digits and '-', starting with a letter.
pub fn fresh_id(rng: &mut impl Rng) -> String {
    const FIRST: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-";
    let len = rng.random_range(0..20);
    let mut s = String::with_capacity(len + 1);
    s.push(char::from(*FIRST.choose(rng).unwrap_or(&b'a')));
    for _ in 0..len {
        s.push(char::from(*REST.choose(rng).unwrap_or(&b'a')));
    }
    s
}

/// A request id: fresh, in the shape clients send.
pub fn fresh_request_id(rng: &mut impl Rng) -> String {
    let (a, b): (u64, u64) = (rng.random(), rng.random());
    format!("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff, b >> 48, b & 0xffff_ffff_ffff)
}

/// A string of random characters from every plane (valid UTF-8).
pub fn random_text(rng: &mut impl Rng, max: usize) -> String {
    let len = rng.random_range(1..=max.max(1));
    (0..len)
        .map(|_| match rng.random_range(0..4) {
            0 => char::from(rng.random_range(0u8..0x80)),
            1 => char::from_u32(rng.random_range(0x80..0xd800)).unwrap_or('?'),
            2 => char::from_u32(rng.random_range(0xe000..0x11_0000)).unwrap_or('?'),
            _ => char::from(rng.random_range(b'a'..=b'z')),
        })
        .collect()
}

/// An odd string: from the list, random text, a long single word, or two glued.
pub fn odd(rng: &mut impl Rng) -> String {
    match rng.random_range(0..30) {
        0..3 => random_text(rng, 40),
        3 => "w".repeat(rng.random_range(200..6000)),
        4..7 => format!("{}{}", ODD.choose(rng).unwrap_or(&""), ODD.choose(rng).unwrap_or(&"")),
        _ => (*ODD.choose(rng).unwrap_or(&"")).to_owned(),
    }
}

/// A JSON document (mostly valid), at most about `budget` bytes.
pub fn json(rng: &mut impl Rng, budget: usize) -> String {
    match rng.random_range(0..12) {
        0 => {
            let depth = rng.random_range(10..(budget / 2).clamp(11, 20_000));
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        }
        1 => {
            let depth = rng.random_range(10..(budget / 8).clamp(11, 3000));
            format!("{}null{}", "{\"a\":".repeat(depth), "}".repeat(depth))
        }
        2 => {
            let n = rng.random_range(100..(budget / 4).clamp(101, 50_000));
            format!("[{}0]", "1,".repeat(n))
        }
        3 => {
            let n = rng.random_range(1..(budget / 2).clamp(2, 300_000));
            format!("{{\"note\":\"{}\"}}", "x".repeat(n))
        }
        4 => format!(
            "{{\"{}\":{}}}",
            odd(rng).replace(['"', '\\'], "").chars().filter(|c| !c.is_control()).collect::<String>(),
            bound_json(rng)
        ),
        5 => format!("{{\"key\":\"{}\",\"enabled\":true,\"retries\":{}}}", fresh_id(rng), i64_value(rng)),
        _ => (*JSON.choose(rng).unwrap_or(&"{}")).to_owned(),
    }
}

/// A small valid JSON object, for requests meant to get past validation.
pub fn tame_json(rng: &mut impl Rng) -> String {
    match rng.random_range(0..4) {
        0 => "{}".to_owned(),
        1 => "{\"title\":\"name\"}".to_owned(),
        2 => format!("{{\"key\":\"{}\",\"n\":{}}}", fresh_id(rng), rng.random_range(0..1000)),
        _ => format!("{{\"a\":{{\"b\":[1,2,3]}},\"s\":\"{}\"}}", fresh_id(rng)),
    }
}

fn bound_json(rng: &mut impl Rng) -> String {
    ["1e308", "-1e308", "5e-324", "9007199254740993", "-9223372036854775808", "0.1", "[]", "{}", "null"]
        .choose(rng)
        .unwrap_or(&"0")
        .to_string()
}

/// A real name changed: a segment replaced, appended, dropped, case or slashes changed.
pub fn mutate_name(rng: &mut impl Rng, name: &str, other_id: Option<String>) -> String {
    let segments: Vec<&str> = name.split('/').collect();
    match rng.random_range(0..12) {
        0 if segments.len() > 1 => {
            let i = rng.random_range(0..segments.len());
            let replacement = other_id.unwrap_or_else(|| odd(rng));
            segments.iter().enumerate().map(|(j, s)| if i == j { replacement.as_str() } else { s }).collect::<Vec<_>>().join("/")
        }
        1 => format!("{name}/{}", ["x", "-", "groups/x", "entities/1", "mappings/m", "report", "fence", ""].choose(rng).unwrap_or(&"x")),
        2 if segments.len() > 1 => segments[..segments.len() - 1].join("/"),
        3 => name.chars().take(rng.random_range(0..=name.chars().count())).collect(),
        4 => name.to_uppercase(),
        5 => format!("{name}/"),
        6 => format!("/{name}"),
        7 => name.replacen('/', "//", 1),
        8 => format!("{name} "),
        9 => format!("{name}\u{0}"),
        10 => name.replace('/', "%2F"),
        _ => {
            let id = other_id.unwrap_or_else(|| fresh_id(rng));
            match segments.as_slice() {
                [head @ .., _last] if !head.is_empty() => format!("{}/{id}", head.join("/")),
                _ => format!("{name}/{id}"),
            }
        }
    }
}

/// A realistic value for a free-text field, so the calls that need one get past it.
pub fn plausible(rng: &mut impl Rng, field: &str) -> String {
    let pick = |rng: &mut dyn rand::RngCore, xs: &[&str]| xs.choose(rng).copied().unwrap_or_default().to_owned();
    match field {
        "external_system" => pick(rng, &["rally", "jira", "generic", "Rally"]),
        "base_url" => pick(rng, &["https://rally.example.com", "http://127.0.0.1:1", "https://jira.example.com/api/", "https://x"]),
        "schedule" => pick(rng, &["*/15 * * * *", "0 3 * * 1-5", "0 0 1 1 *", "59 23 31 12 *"]),
        "api_key" => fresh_request_id(rng),
        _ => fresh_id(rng),
    }
}

/// Interesting i32s: zero, ±1, the bounds, page-size edges, random.
pub fn i32_value(rng: &mut impl Rng) -> i32 {
    *[
        0,
        1,
        -1,
        2,
        9,
        10,
        11,
        100,
        999,
        1000,
        1001,
        5000,
        5001,
        10_000,
        10_001,
        i32::MAX,
        i32::MIN,
        i32::MAX - 1,
        i32::MIN + 1,
        rng.random(),
    ]
    .choose(rng)
    .unwrap_or(&0)
}

pub fn i64_value(rng: &mut impl Rng) -> i64 {
    let i32s = i64::from(i32_value(rng));
    *[0, 1, -1, i64::MAX, i64::MIN, i64::MAX - 1, i64::MIN + 1, i64::from(u32::MAX), 1 << 53, (1 << 53) + 1, i32s, rng.random()]
        .choose(rng)
        .unwrap_or(&0)
}

pub fn u32_value(rng: &mut impl Rng) -> u32 {
    *[0, 1, 100, 1000, u32::MAX, u32::MAX - 1, 1 << 31, rng.random()].choose(rng).unwrap_or(&0)
}

pub fn u64_value(rng: &mut impl Rng) -> u64 {
    *[0, 1, 1000, u64::MAX, u64::MAX - 1, 1 << 63, u64::from(u32::MAX), rng.random()].choose(rng).unwrap_or(&0)
}

pub fn f64_value(rng: &mut impl Rng) -> f64 {
    *[0.0, -0.0, 1.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN, f64::MIN_POSITIVE, f64::EPSILON, rng.random()]
        .choose(rng)
        .unwrap_or(&0.0)
}

/// `google.protobuf.Timestamp` (seconds, nanos): at the limits of the valid range
/// (0001-01-01 and 9999-12-31), just beyond them, i64 bounds, bad nanos, ordinary ones.
pub fn timestamp(rng: &mut impl Rng) -> (i64, i32) {
    const MIN: i64 = -62_135_596_800;
    const MAX: i64 = 253_402_300_799;
    let seconds = *[MIN, MAX, MIN - 1, MAX + 1, i64::MIN, i64::MAX, 0, -1, 1_700_000_000, rng.random_range(MIN..=MAX), rng.random()]
        .choose(rng)
        .unwrap_or(&0);
    let nanos = *[0, -1, 999_999_999, 1_000_000_000, i32::MAX, i32::MIN, rng.random_range(0..1_000_000_000)].choose(rng).unwrap_or(&0);
    (seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn generated_strings_are_valid_utf8_and_ids_look_like_ids() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            // A String is UTF-8 by construction; this checks nothing panics on the way.
            let _ = odd(&mut rng);
            let _ = json(&mut rng, 4096);
            let _ = mutate_name(&mut rng, "environments/prod/groups/test", None);
            let id = fresh_id(&mut rng);
            assert!(id.starts_with(|c: char| c.is_ascii_lowercase()), "{id}");
        }
        assert_eq!(fresh_request_id(&mut rng).len(), 36);
    }
}

//! Time as Ferry stores it: microseconds since the Unix epoch, and its conversions.

/// Current time as microseconds since the Unix epoch (how Ferry stores timestamps).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or_default()
}

/// Microseconds since the Unix epoch of a protobuf `Timestamp` (how Ferry stores it).
pub fn micros(t: &prost_types::Timestamp) -> i64 {
    t.seconds.saturating_mul(1_000_000).saturating_add(i64::from(t.nanos) / 1000)
}

/// A stored timestamp as a protobuf `Timestamp`.
pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: micros.div_euclid(1_000_000), nanos: (micros.rem_euclid(1_000_000) * 1000) as i32 }
}

/// Microseconds since the epoch as an RFC 3339 UTC time (`2026-12-03T16:29:46.123456Z`),
/// for messages that name a moment.
pub fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| format!("{micros} µs after the epoch"))
}

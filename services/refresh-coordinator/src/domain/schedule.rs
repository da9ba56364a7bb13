//! Schedules: a run of some kind started at the times of a cron expression, read in a
//! time zone. The schedule holds what to start (`request`, the kind's own) and what the
//! scheduler did (the due time it handled last, the run it started or why it started
//! none).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

/// A checked cron expression and time zone.
#[derive(Debug, Clone)]
pub struct When {
    cron: Cron,
    zone: chrono_tz::Tz,
}

impl When {
    /// Five fields (minute hour day-of-month month day-of-week) that come due again after
    /// now, and an IANA zone name (empty: UTC). Each error names the field that is wrong,
    /// for a field violation.
    pub fn parse(cron: &str, time_zone: &str) -> Result<Self, (&'static str, String)> {
        let fields = cron.split_whitespace().count();
        if fields != 5 {
            return Err(("cron", format!("must have five fields (minute hour day-of-month month day-of-week), not {fields}")));
        }
        let parsed = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(cron)
            .map_err(|e| ("cron", format!("is not a cron expression: {e}")))?;
        let zone = if time_zone.is_empty() {
            chrono_tz::UTC
        } else {
            chrono_tz::Tz::from_str(time_zone).map_err(|_| ("time_zone", format!("{time_zone:?} is not an IANA time zone")))?
        };
        let when = Self { cron: parsed, zone };
        if when.next_after(ferry_kit::db::now_micros()).is_none() {
            return Err(("cron", "never comes due (no such date)".to_owned()));
        }
        Ok(when)
    }

    /// The first due time strictly after `after` (microseconds), if any comes.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let at: DateTime<Utc> = Utc.timestamp_micros(after).single()?;
        let local = at.with_timezone(&self.zone);
        let next = self.cron.find_next_occurrence(&local, false).ok()?;
        Some(next.with_timezone(&Utc).timestamp_micros())
    }
}

/// A schedule of runs; `R` is what a due time starts (a refresh's source, destination and
/// options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule<R> {
    pub id: String,
    pub request: R,
    pub cron: String,
    pub time_zone: String,
    pub paused: bool,
    /// When the next run is due (microseconds); `None` while paused or deleted.
    pub next_due: Option<i64>,
    /// The last due time handled, and what came of it: the run started, or why none was.
    pub last_due: Option<i64>,
    pub last_run: String,
    pub last_skip_reason: String,
    pub created_by: String,
    pub create_time: i64,
    pub update_time: i64,
    pub delete_time: Option<i64>,
    /// Grows with every change a person makes (the etag).
    pub revision: i64,
}

impl<R> Schedule<R> {
    /// The due time after `now` of a schedule that runs (none while paused or deleted).
    pub fn due_after(&self, now: i64) -> Option<i64> {
        if self.paused || self.delete_time.is_some() {
            return None;
        }
        When::parse(&self.cron, &self.time_zone).ok()?.next_after(now)
    }
}

/// A schedule id: 1-63 lowercase letters, digits and '-', starting with a letter.
pub fn valid_schedule_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().map(|t| t.timestamp_micros()).unwrap_or_default()
    }

    #[test]
    fn next_due_times_follow_the_zone() {
        let w = When::parse("0 3 * * MON", "Europe/Berlin").map_err(|e| e.1).unwrap_or_else(|e| panic!("{e}"));
        // Thursday 2026-12-03 12:00 UTC: next Monday 03:00 Berlin (UTC+1) is 02:00 UTC.
        assert_eq!(w.next_after(micros(2026, 12, 3, 12, 0)), Some(micros(2026, 12, 7, 2, 0)));
        // Summer time (UTC+2): 01:00 UTC.
        assert_eq!(w.next_after(micros(2026, 7, 1, 12, 0)), Some(micros(2026, 7, 6, 1, 0)));
        let utc = When::parse("*/15 * * * *", "").map_err(|e| e.1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(utc.next_after(micros(2026, 12, 3, 12, 0)), Some(micros(2026, 12, 3, 12, 15)), "strictly after");
    }

    #[test]
    fn bad_expressions_and_zones_name_their_field() {
        assert_eq!(When::parse("0 3 * *", "").map(|_| ()).map_err(|e| e.0), Err("cron"));
        assert_eq!(When::parse("0 0 3 * * *", "").map(|_| ()).map_err(|e| e.0), Err("cron"), "no seconds field");
        assert_eq!(When::parse("61 3 * * *", "").map(|_| ()).map_err(|e| e.0), Err("cron"));
        assert_eq!(When::parse("0 3 * * *", "Mars/Olympus").map(|_| ()).map_err(|e| e.0), Err("time_zone"));
        let started = std::time::Instant::now();
        assert_eq!(When::parse("0 0 31 2 *", "").map(|_| ()).map_err(|e| e.0), Err("cron"), "February 31st never comes");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "and saying so is quick: {:?}", started.elapsed());
        assert!(valid_schedule_id("nightly-1") && !valid_schedule_id("Nightly") && !valid_schedule_id("1x"));
    }
}

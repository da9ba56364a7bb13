//! How refresh schedules look in a table and in JSON.

use ferry_proto::refresh::v1::RefreshSchedule;
use serde_json::{Value, json};

use super::checklist::mode_label;
use super::{when, when_json};
use crate::output::Resource;
use crate::parse::id_of;

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".to_owned() } else { s.to_owned() }
}

/// `paused`, `deleted`, or `active`.
fn state(s: &RefreshSchedule) -> &'static str {
    match (s.delete_time.is_some(), s.paused) {
        (true, _) => "deleted",
        (false, true) => "paused",
        (false, false) => "active",
    }
}

fn zone(s: &RefreshSchedule) -> &str {
    if s.time_zone.is_empty() { "UTC" } else { &s.time_zone }
}

impl Resource for RefreshSchedule {
    const HEADERS: &'static [&'static str] = &["ID", "STATE", "SOURCE", "DESTINATION", "CRON", "ZONE", "NEXT", "LAST RUN"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            state(self).to_owned(),
            id_of(&self.source).to_owned(),
            id_of(&self.destination).to_owned(),
            self.cron.clone(),
            zone(self).to_owned(),
            when(self.next_run_time.as_ref()),
            if self.last_run.is_empty() { or_dash(&self.last_skip_reason) } else { id_of(&self.last_run).to_owned() },
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let o = self.options.clone().unwrap_or_default();
        vec![
            ("name", self.name.clone()),
            ("state", state(self).to_owned()),
            ("source", self.source.clone()),
            ("destination", self.destination.clone()),
            ("mode", mode_label(o.mode)),
            ("cron", self.cron.clone()),
            ("time_zone", zone(self).to_owned()),
            ("next_run", when(self.next_run_time.as_ref())),
            ("last_due", when(self.last_run_time.as_ref())),
            ("last_run", or_dash(&self.last_run)),
            ("last_skip", or_dash(&self.last_skip_reason)),
            ("created_by", or_dash(&self.created_by)),
            ("created", when(self.create_time.as_ref())),
            ("updated", when(self.update_time.as_ref())),
            ("etag", self.etag.clone()),
        ]
    }
    fn json(&self) -> Value {
        let o = self.options.clone().unwrap_or_default();
        json!({
            "name": self.name,
            "state": state(self),
            "source": self.source,
            "destination": self.destination,
            "options": {
                "mode": mode_label(o.mode),
                "suspend_credentials_instead": o.suspend_credentials_instead,
                "require_approval": o.require_approval,
            },
            "cron": self.cron,
            "time_zone": zone(self),
            "paused": self.paused,
            "next_run_time": when_json(self.next_run_time.as_ref()),
            "last_run_time": when_json(self.last_run_time.as_ref()),
            "last_run": self.last_run,
            "last_skip_reason": self.last_skip_reason,
            "created_by": self.created_by,
            "create_time": when_json(self.create_time.as_ref()),
            "update_time": when_json(self.update_time.as_ref()),
            "delete_time": when_json(self.delete_time.as_ref()),
            "etag": self.etag,
        })
    }
}

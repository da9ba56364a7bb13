//! Sync leases: who holds them, since when, until when. A lease's credential is never
//! shown (lists do not carry it).

use ferry_proto::integration::v1::{SyncLease, SyncLeaseState};
use serde_json::{Value, json};

use super::{label, when, when_json};
use crate::output::Resource;
use crate::parse::id_of;

fn state_label(n: i32) -> String {
    label(n, SyncLeaseState::as_str_name, "SYNC_LEASE_STATE_")
}

fn dash(s: &str) -> String {
    if s.is_empty() { "-".to_owned() } else { s.to_owned() }
}

/// The mapping as ENV/INTEGRATION/MAPPING's last two parts.
fn mapping_short(name: &str) -> String {
    let parts: Vec<&str> = name.split('/').collect();
    match parts[..] {
        ["environments", _, "integrations", i, "mappings", m] => format!("{i}/{m}"),
        _ => name.to_owned(),
    }
}

impl Resource for SyncLease {
    const HEADERS: &'static [&'static str] = &["ID", "MAPPING", "HOLDER", "STATE", "SINCE", "UNTIL", "RENEWALS", "ENDED BECAUSE"];
    fn row(&self) -> Vec<String> {
        vec![
            id_of(&self.name).to_owned(),
            mapping_short(&self.mapping),
            self.holder.clone(),
            state_label(self.state),
            when(self.acquire_time.as_ref()),
            when(self.expire_time.as_ref()),
            self.renewals.to_string(),
            dash(&self.end_reason),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("mapping", self.mapping.clone()),
            ("job", dash(&self.job)),
            ("holder", self.holder.clone()),
            ("state", state_label(self.state)),
            ("acquired", when(self.acquire_time.as_ref())),
            ("renewed", when(self.renew_time.as_ref())),
            ("expires", when(self.expire_time.as_ref())),
            ("ended", when(self.end_time.as_ref())),
            ("ended because", dash(&self.end_reason)),
            ("holder told", when(self.acknowledge_time.as_ref())),
        ]
    }
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "mapping": self.mapping,
            "job": self.job,
            "holder": self.holder,
            "state": state_label(self.state),
            "acquireTime": when_json(self.acquire_time.as_ref()),
            "renewTime": when_json(self.renew_time.as_ref()),
            "expireTime": when_json(self.expire_time.as_ref()),
            "endTime": when_json(self.end_time.as_ref()),
            "endReason": self.end_reason,
            "acknowledgeTime": when_json(self.acknowledge_time.as_ref()),
            "renewals": self.renewals,
        })
    }
}

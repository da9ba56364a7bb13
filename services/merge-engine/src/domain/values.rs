//! Checked values. The numbers are the proto enum values and what the engine stores.

use serde::{Deserialize, Serialize};

/// Implements `number`/`from_number` for a fieldless enum with explicit discriminants.
macro_rules! numbered {
    ($name:ident { $($variant:ident = $n:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($variant = $n),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn number(self) -> i32 {
                self as i32
            }
            pub fn from_number(n: i32) -> Option<$name> {
                match n {
                    $($n => Some($name::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

numbered!(Kind { DataSource = 1, Lookup = 2, CustomAction = 3, Role = 4, Theme = 5, Portal = 6, Service = 7, Table = 8, Map = 9 });
numbered!(Sharing { Duplicated = 1, Shared = 2 });
numbered!(Strategy { KeepRecipient = 1, TakeSource = 2, Fail = 3 });
numbered!(PlanState { Ready = 1, Applying = 2, Applied = 3, Stale = 4, Cancelled = 5, Expired = 6 });
numbered!(PlanType { GroupMerge = 1, GroupClone = 2 });
numbered!(Outcome { Create = 1, Link = 2, Skip = 3, Conflict = 4, MissingDependency = 5 });
numbered!(JobKind { ApplyMerge = 1, CloneGroup = 2, CloneProject = 3, MergeProject = 4, RevertMerge = 5 });
numbered!(JobState { Queued = 1, Running = 2, Succeeded = 3, Failed = 4, Cancelled = 5 });

impl Kind {
    /// The proto enum value name, as violation subjects spell kinds.
    pub fn label(self) -> &'static str {
        match self {
            Kind::DataSource => "ENTITY_KIND_DATA_SOURCE",
            Kind::Lookup => "ENTITY_KIND_LOOKUP",
            Kind::CustomAction => "ENTITY_KIND_CUSTOM_ACTION",
            Kind::Role => "ENTITY_KIND_ROLE",
            Kind::Theme => "ENTITY_KIND_THEME",
            Kind::Portal => "ENTITY_KIND_PORTAL",
            Kind::Service => "ENTITY_KIND_SERVICE",
            Kind::Table => "ENTITY_KIND_TABLE",
            Kind::Map => "ENTITY_KIND_MAP",
        }
    }
}

impl Strategy {
    /// UNSPECIFIED (0) is KEEP_RECIPIENT, the article's rule.
    pub fn from_request(n: i32) -> Result<Strategy, String> {
        match n {
            0 => Ok(Strategy::KeepRecipient),
            n => Strategy::from_number(n).ok_or_else(|| format!("unknown strategy {n}")),
        }
    }
}

impl JobState {
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// An entity key as the registry checks it (one rule, in the kit).
pub use ferry_kit::request::check_entity_key as check_key;

/// A display name: at most 200 characters, no control characters.
pub fn display_name(s: &str) -> Result<String, String> {
    if s.chars().count() > 200 {
        return Err("is longer than 200 characters".into());
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_owned())
}

/// A `request_id` and the fingerprint of the request it came with (shared by every service).
pub use ferry_kit::idempotency::RequestKey;

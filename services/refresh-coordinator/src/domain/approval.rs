//! Who may confirm a step: the four-eyes rule for approval gates, in one place.
//!
//! With the rule on (`--four-eyes`, on in the prod overlay), a run's approval gate is
//! confirmed only by an identity with the approver right (the tokens file's
//! `<role>+approver`) that is not the identity that started the run, and the actor a
//! confirmation records is the authenticated subject. Other gates (an EXTERNAL refresh's
//! "the outside refresh finished") need no approver. With the rule off (`ferry up`: one
//! local user), anyone who may write confirms, and may name the actor recorded.

use ferry_kit::error::Error;

/// The gate a run's check step waits at when approval is required.
pub const APPROVAL: &str = "approval";

/// Who confirms a step, as authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmer {
    pub subject: String,
    pub approver: bool,
    /// What the step records as its actor.
    pub actor: String,
}

impl Confirmer {
    /// `actor` is what the caller typed (empty: themselves). With the four-eyes rule on it
    /// must be empty or the subject: a description of the field violation otherwise.
    pub fn new(subject: &str, approver: bool, actor: &str, four_eyes: bool) -> Result<Self, String> {
        if four_eyes && !actor.is_empty() && actor != subject {
            return Err(format!(
                "with the four-eyes rule on, the actor recorded is the authenticated caller ({subject}); leave actor empty"
            ));
        }
        let actor = if actor.is_empty() { subject } else { actor };
        Ok(Self { subject: subject.to_owned(), approver, actor: actor.to_owned() })
    }
}

/// The four-eyes rule: may `who` confirm `run`'s gate `gate`, started by `started_by`?
/// PERMISSION_DENIED naming the rule otherwise.
pub fn may_confirm(four_eyes: bool, gate: &str, run: &str, started_by: &str, who: &Confirmer) -> Result<(), Error> {
    if !four_eyes || gate != APPROVAL {
        return Ok(());
    }
    if !who.approver {
        return Err(Error::PermissionDenied(format!(
            "four-eyes rule: approving {run} needs the approver right, which {} does not have (a token whose role is \
             `operator+approver` or `admin+approver`)",
            who.subject
        )));
    }
    if who.subject == started_by {
        return Err(Error::PermissionDenied(format!(
            "four-eyes rule: {} started {run} and cannot approve it; another identity with the approver right must confirm",
            who.subject
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(subject: &str, approver: bool) -> Confirmer {
        Confirmer::new(subject, approver, "", true).unwrap()
    }

    #[test]
    fn four_eyes() {
        let run = "refreshRuns/r1";
        assert!(may_confirm(true, APPROVAL, run, "ada", &who("vic", true)).is_ok());
        let own = may_confirm(true, APPROVAL, run, "vic", &who("vic", true)).unwrap_err().to_string();
        assert!(own.contains("vic started refreshRuns/r1 and cannot approve it"), "{own}");
        let right = may_confirm(true, APPROVAL, run, "ada", &who("pat", false)).unwrap_err().to_string();
        assert!(right.contains("needs the approver right, which pat does not have"), "{right}");
        assert!(may_confirm(true, "external refresh", run, "pat", &who("pat", false)).is_ok(), "not an approval");
        assert!(may_confirm(false, APPROVAL, run, "pat", &who("pat", false)).is_ok(), "the rule off");
        assert!(Confirmer::new("vic", true, "someone-else", true).is_err());
        assert_eq!(Confirmer::new("vic", true, "vic", true).unwrap().actor, "vic");
        assert_eq!(Confirmer::new("pat", false, "carol", false).unwrap().actor, "carol");
    }
}

//! refresh-coordinator fails with the services' one error model (`ferry_kit::error`);
//! `grpc` answers it with `Status::from`, a failed step records `e.info()`.

pub use ferry_kit::error::{Error, Result};

use crate::domain::ErrorInfo;

/// How the engine treats a failure of a run's work.
pub trait RunError {
    /// A failure of our own side (the database, a run document that does not read
    /// back, a lost lease): the driver stops and the run resumes later, rather than
    /// failing it.
    fn interrupts(&self) -> bool;
}

impl RunError for Error {
    fn interrupts(&self) -> bool {
        matches!(self, Error::Db(_) | Error::Aborted(_))
    }
}

impl From<ferry_kit::error::ErrorInfo> for ErrorInfo {
    fn from(i: ferry_kit::error::ErrorInfo) -> Self {
        ErrorInfo {
            code: i.code as i32,
            message: i.message,
            violations: i.violations.into_iter().map(|p| (p.kind, p.subject, p.description)).collect(),
        }
    }
}

//! The engine fails with the services' one error model (`ferry_kit::error`); `grpc`
//! answers it with `Status::from`, and a failed job records `JobError::from(&e)`, the
//! same code and violations.

pub use ferry_kit::error::{Error, Result};

use crate::domain::{JobError, Violation};

impl From<&Error> for JobError {
    fn from(e: &Error) -> Self {
        let info = e.info();
        JobError {
            code: info.code as i32,
            message: info.message,
            violations: info
                .violations
                .into_iter()
                .map(|p| Violation { violation_type: p.kind, subject: p.subject, description: p.description })
                .collect(),
        }
    }
}

impl From<&JobError> for ferry_kit::error::ErrorInfo {
    fn from(j: &JobError) -> Self {
        ferry_kit::error::ErrorInfo {
            code: tonic::Code::from_i32(j.code),
            message: j.message.clone(),
            violations: j
                .violations
                .iter()
                .map(|v| ferry_kit::status::Precondition::new(&v.violation_type, &v.subject, &v.description))
                .collect(),
        }
    }
}

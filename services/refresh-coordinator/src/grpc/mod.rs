//! The proto edge: parsing (every field violation at once), scope checks, conversion,
//! and the one `From<Error> for Status`.

mod convert;
mod handlers;
mod schedules;

pub use handlers::RefreshApi;

use ferry_kit::status;
use tonic::Status;

use crate::error::Error;

/// The status a client gets for `e`.
pub fn status_of(e: &Error) -> Status {
    match e {
        Error::InvalidArgument(v) => status::invalid_argument(v),
        Error::NotFound { resource, name } => status::not_found(resource, name),
        Error::FailedPrecondition { message, preconditions } => status::failed_precondition(message.clone(), preconditions),
        Error::Aborted(m) => status::aborted(m.clone()),
        Error::AlreadyExists(m) => Status::already_exists(m.clone()),
        Error::RequestIdReused => status::request_id_reused(),
        Error::Remote { service, status: s } => match s.code() {
            _ if e.is_transient() => {
                tracing::warn!(service, error = %s, "dependency unavailable");
                status::unavailable(format!("{service} unavailable, retry later"))
            }
            tonic::Code::NotFound | tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument | tonic::Code::Aborted => {
                Status::with_details(s.code(), format!("{service}: {}", s.message()), s.details().to_vec().into())
            }
            _ => status::internal(e),
        },
        Error::Db(d) => status::database(d),
        Error::Codec(_) | Error::Internal(_) => status::internal(e),
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        status_of(&e)
    }
}

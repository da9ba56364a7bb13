//! The registry's gRPC edge. API boundary: proto types stop here. Requests are parsed into
//! domain values ([`convert`]); every field problem is reported at once as a BadRequest
//! field violation; domain errors map to precise codes with google.rpc details.

mod convert;
mod handlers;

pub use handlers::RegistryApi;

use ferry_kit::status::{self, Violations};
use tonic::Status;

use crate::error::Error;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument(v) => status::invalid_argument(&v),
            Error::NotFound { resource, name } => status::not_found(resource, &name),
            Error::AlreadyExists { resource, name, message } => status::already_exists(resource, &name, message),
            Error::FailedPrecondition { message, preconditions } => status::failed_precondition(message, &preconditions),
            Error::RequestIdReused => {
                let mut v = Violations::new();
                v.add("request_id", "was already used for a different request; use a new request_id for a new request");
                status::invalid_argument(&v)
            }
            Error::PermissionDenied(m) => status::permission_denied(m),
            Error::Db(e) if matches!(e, sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)) => {
                tracing::warn!(error = %e, "database unavailable");
                status::unavailable("database unavailable, retry later")
            }
            Error::Db(e) if ferry_kit::db::is_write_race(&e) => {
                status::aborted("a concurrent change to the same keys won; retry the request")
            }
            Error::Db(e) => status::internal(&e),
            Error::Codec(e) => status::internal(&e),
            Error::InOrder => status::aborted("the merge batch could not be settled; retry the request"),
        }
    }
}

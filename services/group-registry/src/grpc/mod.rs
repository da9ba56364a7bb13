//! The registry's gRPC edge. API boundary: proto types stop here. Requests are parsed into
//! domain values ([`convert`]); every field problem is reported at once as a BadRequest
//! field violation; domain errors map to precise codes with google.rpc details.

mod bulk;
mod convert;
mod handlers;
mod projects;

pub use handlers::RegistryApi;

use ferry_kit::status;
use tonic::Status;

use crate::error::Error;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument(v) => status::invalid_argument(&v),
            Error::NotFound { resource, name } => status::not_found(resource, &name),
            Error::AlreadyExists { resource, name, message } => status::already_exists(resource, &name, message),
            Error::FailedPrecondition { message, preconditions } => status::failed_precondition(message, &preconditions),
            Error::RequestIdReused => status::request_id_reused(),
            Error::PermissionDenied(m) => status::permission_denied(m),
            Error::Db(e) => status::database(&e),
            Error::Codec(e) => status::internal(&e),
            Error::InOrder => status::aborted("the merge batch could not be settled; retry the request"),
        }
    }
}

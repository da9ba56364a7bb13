//! The engine's gRPC edge. API boundary: proto types stop here. Requests are parsed into
//! domain values ([`convert`]), every field problem reported at once as a BadRequest
//! field violation; domain errors map to precise codes with google.rpc details.

mod convert;
mod handlers;

pub use handlers::MergeApi;

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
            Error::Aborted(m) => status::aborted(m),
            Error::RequestIdReused => status::request_id_reused(),
            Error::Unavailable(m) => status::unavailable(m),
            Error::Db(e) => status::database(&e),
            Error::Codec(e) => status::internal(&e),
            e @ Error::Child { .. } => {
                let j = e.to_job_error();
                Status::new(tonic::Code::from_i32(j.code), j.message)
            }
            Error::Registry(s) => {
                tracing::error!(code = ?s.code(), message = s.message(), "unexpected registry reply");
                Status::internal("internal error")
            }
        }
    }
}

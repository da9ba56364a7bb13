//! integration-control's gRPC edge. API boundary: proto types stop here. Requests are
//! parsed into domain values ([`convert`]); every field problem is reported at once as a
//! BadRequest field violation; domain errors map to precise codes with google.rpc details.
//! Handlers are instrumented with `skip_all`: a request (which may carry an API key) is
//! never recorded, only the resource names picked out of it.

mod convert;
mod handlers;

pub use handlers::IntegrationApi;

use ferry_kit::status;
use tonic::Status;

use crate::error::Error;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument(v) => status::invalid_argument(&v),
            Error::NotFound { resource, name } => status::not_found(resource, &name),
            Error::AlreadyExists { resource, name } => status::already_exists(resource, &name, format!("{resource} {name} already exists")),
            Error::FailedPrecondition { message, preconditions } => status::failed_precondition(message, &preconditions),
            Error::DataLoss(m) => Status::data_loss(m),
            Error::RequestIdReused => status::request_id_reused(),
            Error::RegistryUnavailable(m) => {
                tracing::warn!(error = %m, "registry unavailable");
                status::unavailable("registry unavailable, retry later")
            }
            // Two writers raced on one name (a concurrent create, fence or snapshot with
            // another request id): the loser retries and sees the winner's state.
            Error::Db(e) => status::database(&e),
            e @ Error::Registry(_) => status::internal(&e),
            Error::Codec(e) => status::internal(&e),
        }
    }
}

//! integration-control's gRPC edge. API boundary: proto types stop here. Requests are
//! parsed into domain values ([`convert`]); every field problem is reported at once as a
//! BadRequest field violation; domain errors map to precise codes with google.rpc details.
//! Handlers are instrumented with `skip_all`: a request (which may carry an API key) is
//! never recorded, only the resource names picked out of it.

mod convert;
mod handlers;

pub use handlers::IntegrationApi;

use ferry_kit::status::{self, Violations};
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
            Error::RequestIdReused => {
                let mut v = Violations::new();
                v.add("request_id", "was already used for a different request; use a new request_id for a new request");
                status::invalid_argument(&v)
            }
            Error::RegistryUnavailable(m) => {
                tracing::warn!(error = %m, "registry unavailable");
                status::unavailable("registry unavailable, retry later")
            }
            Error::Db(e) if matches!(e, sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_)) => {
                tracing::warn!(error = %e, "database unavailable");
                status::unavailable("database unavailable, retry later")
            }
            // Two writers raced on one name (a concurrent create, fence or snapshot with
            // another request id): the loser retries and sees the winner's state.
            Error::Db(e) if ferry_kit::db::is_unique_violation(&e) => status::aborted("a concurrent change won the race; retry"),
            e @ Error::Registry(_) => status::internal(&e),
            Error::Db(e) => status::internal(&e),
            Error::Codec(e) => status::internal(&e),
        }
    }
}

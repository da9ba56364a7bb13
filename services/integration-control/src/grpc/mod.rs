//! integration-control's gRPC edge. API boundary: proto types stop here. Requests are
//! parsed into domain values ([`convert`]); every field problem is reported at once as a
//! BadRequest field violation; errors answer with the kit's precise codes and google.rpc details (`ferry_kit::error`).
//! Handlers are instrumented with `skip_all`: a request (which may carry an API key) is
//! never recorded, only the resource names picked out of it.

mod convert;
mod handlers;
mod leases;
mod steps;
mod webhooks;

pub use handlers::IntegrationApi;

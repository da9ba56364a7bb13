//! The registry's gRPC edge. API boundary: proto types stop here. Requests are parsed into
//! domain values ([`convert`]); every field problem is reported at once as a BadRequest
//! field violation; errors answer with the kit's precise codes and google.rpc details (`ferry_kit::error`).

mod bulk;
mod convert;
mod handlers;
mod projects;
mod restore_points;

pub use handlers::RegistryApi;

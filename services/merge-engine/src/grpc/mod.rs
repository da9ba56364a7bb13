//! The engine's gRPC edge. API boundary: proto types stop here. Requests are parsed into
//! domain values ([`convert`]), every field problem reported at once as a BadRequest
//! field violation; errors answer with the kit's precise codes and google.rpc details (`ferry_kit::error`).

mod convert;
mod handlers;
mod requests;

pub use handlers::MergeApi;

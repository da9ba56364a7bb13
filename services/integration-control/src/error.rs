//! integration-control fails with the services' one error model (`ferry_kit::error`);
//! `grpc` answers it with `Status::from`. No error ever carries a credential: messages
//! name resources, never values.

pub use ferry_kit::error::{Error, Result};

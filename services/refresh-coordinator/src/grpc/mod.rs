//! The proto edge: parsing (every field violation at once), scope checks and conversion;
//! errors answer with the kit's `Status::from` (`ferry_kit::error`).

mod convert;
mod handlers;
mod rollback;
mod schedules;

pub use handlers::RefreshApi;

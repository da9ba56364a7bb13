//! The run kinds, each one definition (steps, plan, execute, undo, report) that the
//! engine drives.

pub mod changes;
pub mod promotion;
pub mod refresh;
pub mod rollback;

pub use promotion::Promotion;
pub use refresh::Refresh;
pub use rollback::Rollback;

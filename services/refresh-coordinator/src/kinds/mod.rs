//! The run kinds, each one definition (steps, plan, execute, undo, report) that the
//! engine drives.

pub mod promotion;
pub mod refresh;

pub use promotion::Promotion;
pub use refresh::Refresh;

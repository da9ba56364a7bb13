//! The engine's domain: checked names and values, plans and their items, jobs, and the
//! merge rules (G6 classification, G12 selection) in [`rules`]. No proto types and no SQL.

pub mod names;
pub mod records;
pub mod rules;
pub mod values;

pub use names::*;
pub use records::*;
pub use values::*;

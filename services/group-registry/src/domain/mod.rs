//! The registry's domain: checked values (names, keys, payloads), resource names, and the
//! rules G1–G4 and G7 in [`rules`]. No proto types and no SQL here.

pub mod names;
pub mod profile;
pub mod records;
pub mod rules;
pub mod values;

pub use names::*;
pub use records::*;
pub use values::*;

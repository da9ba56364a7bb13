//! integration-control's domain: checked values and resource names, the records it keeps,
//! credential sealing ([`secrets`]) and the sync decision ([`authorize`]) and the sync leases it grants ([`leases`]). No proto types
//! and no SQL here.

pub mod authorize;
pub mod leases;
pub mod names;
pub mod records;
pub mod secrets;
pub mod values;
pub mod webhooks;

pub use names::*;
pub use records::*;
pub use values::*;

//! The `ferry` command line as a library: `ferry up` runs the whole suite in one process
//! ([`up`]), and the registry subcommands call it through the generated gRPC clients.
//!
//! The binary is a thin `main.rs` over [`execute`]; tests drive the same code in-process
//! through [`run`], which returns what the command printed.

#![forbid(unsafe_code)]

mod client;
mod cmd;
mod error;
mod output;
mod parse;
mod progress;
mod render;
pub mod up;

use std::ffi::OsString;

use anyhow::Context;
use clap::Parser;

pub use cmd::{Cli, Command, execute};
pub use error::{exit_code, is_broken_pipe, render_error, status_of};

/// Parses `args` (without the program name, e.g. `["env", "list", "-o", "json"]`), runs
/// the command and returns what it printed.
///
/// Errors are the command's: a `tonic::Status` in the chain for server errors (see
/// [`status_of`], [`render_error`]), a `clap::Error` for bad arguments or `--help`.
/// `up` runs until a shutdown signal, so it is not meant for this entry point.
pub async fn run<I, T>(args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv = std::iter::once(OsString::from("ferry")).chain(args.into_iter().map(Into::into));
    let cli = Cli::try_parse_from(argv)?;
    let mut out = Vec::new();
    execute(cli, &mut out).await?;
    String::from_utf8(out).context("the command printed something that is not UTF-8")
}

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
/// A command that prints its answer and then exits with a chosen status (`sync check`'s
/// DENIED, exit 3) returns an error whose message is what it printed, so [`exit_code`]
/// gives the status and [`render_error`] the explanation.
pub async fn run<I, T>(args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv = std::iter::once(OsString::from("ferry")).chain(args.into_iter().map(Into::into));
    let cli = Cli::try_parse_from(argv)?;
    let mut out = Vec::new();
    let done = execute(cli, &mut out).await;
    printed(done, out)
}

/// What [`run`] returns for a command's outcome and printed bytes.
fn printed(done: anyhow::Result<()>, out: Vec<u8>) -> anyhow::Result<String> {
    let text = String::from_utf8(out).context("the command printed something that is not UTF-8")?;
    match done {
        Ok(()) => Ok(text),
        Err(e) => match e.downcast_ref::<error::Exit>() {
            // The printed answer is the explanation of a quiet exit: keep it.
            Some(exit) if exit.message.is_empty() && !text.trim().is_empty() => {
                Err(error::Exit { code: exit.code, message: text.trim_end().to_owned() }.into())
            }
            _ => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_exit_keeps_what_the_command_printed() {
        let quiet = || Err(error::Exit { code: 3, message: String::new() }.into());
        let e = printed(quiet(), b"DENIED   environments/dev/integrations/r/mappings/m\n  - JOB_PAUSED\n".to_vec()).expect_err("denied");
        assert_eq!(exit_code(&e), 3);
        assert_eq!(render_error(&e), "error: DENIED   environments/dev/integrations/r/mappings/m\n  - JOB_PAUSED\n");
        let e = printed(quiet(), Vec::new()).expect_err("nothing printed");
        assert_eq!((exit_code(&e), render_error(&e)), (3, String::new()));
        let e = printed(Err(anyhow::anyhow!("boom")), b"partial".to_vec()).expect_err("other errors pass through");
        assert_eq!(exit_code(&e), 1);
        assert_eq!(printed(Ok(()), b"ALLOWED\n".to_vec()).expect("allowed"), "ALLOWED\n");
    }
}

//! The `ferry` binary: parse the command line, run it, report errors on stderr.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = ferry_cli::Cli::parse();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let result = ferry_cli::execute(cli, &mut out).await;
    let result = result.and_then(|()| out.flush().map_err(anyhow::Error::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `ferry entity export … | head`: the reader has what it wanted.
        Err(e) if ferry_cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("{}", ferry_cli::render_error(&e));
            ExitCode::from(ferry_cli::exit_code(&e))
        }
    }
}

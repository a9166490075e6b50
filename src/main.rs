//! The `bbeval` binary: parse flags, call the library, print errors, map them to an exit code.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    bbeval::runtime::tune_allocator();
    bbeval::runtime::default_sigpipe();
    let args = cli::Cli::parse();
    match commands::dispatch(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

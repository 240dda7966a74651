//! `peerlog`: audit and operate a peer log from the command line.
//!
//! A thin layer over `peerlog::inspect` and `NodeDb`: parse arguments (`args.rs`), call the
//! library, print (one file per command, shared formats in `render.rs`).
//! Exit status: 0 success, 1 `verify` found damage, 2 any error (one line on stderr).

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;

mod args;
mod audit;
mod demo;
mod dump;
mod error;
mod export;
mod history;
mod import;
mod logger;
mod maintain;
mod parse;
mod peers;
mod plural;
mod progress;
mod render;
mod salvage;
mod seeds;
mod stats;
mod time;
mod verify;

use args::{Cli, Command};
use error::{fail, usage_error, Failure};

fn main() -> ExitCode {
    logger::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result = run(cli.command, &mut out).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        // `peerlog dump | head` closes the pipe early: not an error.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Output(e)) => fail(&format!("writing output: {e}")),
        Err(Failure::Command(e)) => fail(&salvage::explain(&e)),
        Err(Failure::Usage(message)) => fail(&message),
    }
}

fn run(command: Command, out: &mut impl Write) -> Result<ExitCode, Failure> {
    match command {
        Command::Demo(args) => demo::run(args, out)?,
        Command::Dump(args) => dump::run(args, out)?,
        Command::History(args) => history::run(args, out)?,
        Command::Verify(args) => return verify::run(args, out),
        Command::Stats(args) => stats::run(args, out)?,
        Command::Compact(args) => maintain::run(args.open, Some(args.keep_history), out)?,
        Command::Expire(args) => maintain::run(args.open, None, out)?,
        Command::Export(args) => export::run(args, out)?,
        Command::Salvage(args) => salvage::command(args, out)?,
        Command::Import(args) => return import::command(args, out),
        Command::Seeds(args) => seeds::command(args, out)?,
        Command::Audit(args) => audit::run(&args, out)?,
    }
    Ok(ExitCode::SUCCESS)
}

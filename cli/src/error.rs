//! Why a command fails, and how that reaches the user: one line on stderr, exit status 2.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use peerlog::inspect::InspectError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Reading the database failed.
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// The database library failed.
    #[error(transparent)]
    Db(#[from] peerlog::Error),
    /// `demo` refuses to write into a directory that already holds something.
    #[error("{0}: directory is not empty; demo writes only into a new or empty directory")]
    NotEmpty(PathBuf),
    /// An argument the command cannot work with, already worded.
    #[error("{0}")]
    Usage(String),
}

/// What can stop a command: a library error, or stdout going away.
pub enum Failure {
    /// The library refused or failed.
    Command(CliError),
    /// A bad argument, already worded.
    Usage(String),
    /// Writing the output failed (a closed pipe included).
    Output(io::Error),
}

impl From<CliError> for Failure {
    fn from(e: CliError) -> Failure {
        Failure::Command(e)
    }
}

impl From<InspectError> for Failure {
    fn from(e: InspectError) -> Failure {
        Failure::Command(e.into())
    }
}

impl From<peerlog::Error> for Failure {
    fn from(e: peerlog::Error) -> Failure {
        Failure::Command(e.into())
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Output(e)
    }
}

/// Prints `peerlog: <message>` on stderr; exit status 2.
pub fn fail(message: &str) -> ExitCode {
    eprintln!("peerlog: {message}");
    ExitCode::from(2)
}

/// `--help` and `--version` as clap prints them (exit 0); any other argument error as one
/// line on stderr, exit status 2.
pub fn usage_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => fail(
            "no subcommand given: demo, dump, history, verify, stats, compact, expire, \
             export, salvage, import or seeds (see peerlog --help)",
        ),
        _ => fail(&one_line(&e.render().to_string())),
    }
}

/// A clap error message on one line: `error: ` and the `--help` hint dropped, the rest
/// joined (a list after a colon with a space, possible values in brackets, a tip and the
/// usage after `; `).
fn one_line(message: &str) -> String {
    let mut line = String::new();
    for part in message.lines().map(str::trim) {
        if part.is_empty() || part.starts_with("For more information") {
            continue;
        }
        let part = part.strip_prefix("error: ").unwrap_or(part);
        let part = part.replace("Usage: ", "usage: ");
        if !line.is_empty() {
            let glue = if line.ends_with(':') || part.starts_with('[') {
                " "
            } else {
                "; "
            };
            line.push_str(glue);
        }
        line.push_str(&part);
    }
    line
}

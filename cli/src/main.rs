//! `peerlog`: audit and operate a peer log from the command line.
//!
//! A thin layer over `peerlog::inspect` and `NodeDb`: parse arguments, call the library,
//! print.
//! Exit status: 0 success, 1 `verify` found damage, 2 any error (one line on stderr).

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use peerlog::inspect::{self, InspectError};
use peerlog::{NodeId, Options};

mod demo;
mod maintain;
mod render;
mod time;

use maintain::Maintenance;

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
    /// The protocol version given does not match the one in the segment headers; opening
    /// with it would wipe the database.
    #[error("database has protocol version {found}, not {given}; opening it with {given} would wipe it, refused")]
    VersionMismatch {
        /// Version in the segment headers.
        found: u64,
        /// Version the user asked for.
        given: u64,
    },
}

#[derive(Parser)]
#[command(
    name = "peerlog",
    version,
    about = "Audit and operate a peerlog database (a log of the p2p peers a node discovered)",
    after_help = "Read-only commands (dump, history, verify, stats, export) take no lock and \
                  are safe on a live database.\nExit status: 0 ok, 1 verify found damage, 2 error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a demo database with a few days of simulated peer history
    #[command(after_help = "Example: peerlog demo /tmp/peers --nodes 10000 --days 7")]
    Demo {
        /// Directory to create (must not exist, or be empty)
        dir: PathBuf,
        /// Nodes to discover
        #[arg(long, default_value_t = 1000)]
        nodes: u64,
        /// Days of simulated history, ending now
        #[arg(long, default_value_t = 7)]
        days: u64,
        /// Random seed (same seed, same nodes and times)
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Protocol version written in the segment headers
        #[arg(long, default_value_t = 9)]
        protocol_version: u64,
        /// The local node's id (128 hex characters); default all zeros
        #[arg(long = "self")]
        self_id: Option<String>,
    },
    /// Print the current state: one node a line (enode URL, last ping, last pong, fails)
    #[command(after_help = "Example: peerlog dump /tmp/peers --json | head")]
    Dump {
        dir: PathBuf,
        /// One JSON object a line
        #[arg(long)]
        json: bool,
        /// Also list ids without a node record (only pings, pongs or fails)
        #[arg(long)]
        all: bool,
    },
    /// Print every event about one node, oldest first, including archived segments
    #[command(after_help = "Example: peerlog history /tmp/peers enode://1f2e...@10.0.0.1:30303")]
    History {
        dir: PathBuf,
        /// Node id (128 hex characters, optional 0x) or enode URL
        node: String,
        /// One JSON object a line
        #[arg(long)]
        json: bool,
    },
    /// Check every segment and record; exit status 0 only when everything is intact
    #[command(after_help = "Example: peerlog verify /tmp/peers --strict")]
    Verify {
        dir: PathBuf,
        /// Count a torn tail (crash or append in progress) as damage too
        #[arg(long)]
        strict: bool,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Nodes, events by kind, live and dead bytes, segments, time span, seeds
    #[command(after_help = "Example: peerlog stats /tmp/peers --seed-age 5d")]
    Stats {
        dir: PathBuf,
        /// Count as seeds the nodes whose last pong is at most this old
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        seed_age: Duration,
        /// The local node's id, never a seed; default all zeros
        #[arg(long = "self")]
        self_id: Option<String>,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Take the lock, drop expired nodes and rewrite the log as its live state
    #[command(after_help = "Example: peerlog compact /tmp/peers --keep-history")]
    Compact {
        #[command(flatten)]
        open: OpenArgs,
        /// Move replaced segments to archive/ instead of deleting them
        #[arg(long)]
        keep_history: bool,
    },
    /// Take the lock and drop nodes whose last pong is older than the expiration
    #[command(after_help = "Example: peerlog expire /tmp/peers --expiration 48h")]
    Expire {
        #[command(flatten)]
        open: OpenArgs,
    },
    /// Print every event of the live log, one a line, for DuckDB, pandas or Spark
    #[command(after_help = "Example: peerlog export /tmp/peers --format csv > events.csv")]
    Export {
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Jsonl)]
        format: Format,
    },
}

#[derive(Args)]
struct OpenArgs {
    dir: PathBuf,
    /// Protocol version; default: the one in the segment headers (a different one is refused,
    /// since opening with it would wipe the database)
    #[arg(long)]
    protocol_version: Option<u64>,
    /// The local node's id; its own record is dropped by expiration. Default all zeros
    #[arg(long = "self")]
    self_id: Option<String>,
    /// Nodes whose last pong is older than this are dropped
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    expiration: Duration,
    /// One JSON object
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

/// What can stop a command: a library error, or stdout going away.
enum Failure {
    Command(CliError),
    /// A bad argument, already worded.
    Usage(String),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        Err(Failure::Command(e)) => fail(&e.to_string()),
        Err(Failure::Usage(message)) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("peerlog: {message}");
    ExitCode::from(2)
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar(what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {percent}% {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(what.to_string());
    bar
}

/// Runs `f` with a progress callback drawing `bar`, and clears the bar afterwards.
fn with_progress<T>(what: &str, f: impl FnOnce(inspect::Progress<'_>) -> T) -> T {
    let bar = progress_bar(what);
    let report = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let result = f(&report);
    bar.finish_and_clear();
    result
}

fn parse_self(arg: Option<&str>) -> Result<Option<NodeId>, Failure> {
    arg.map(|s| {
        s.parse::<NodeId>().map_err(|e| match e {
            peerlog::Error::InvalidInput(why) => Failure::Usage(format!("--self: {why}")),
            other => Failure::from(other),
        })
    })
    .transpose()
}

fn run(command: Command, out: &mut impl Write) -> Result<ExitCode, Failure> {
    match command {
        Command::Demo {
            dir,
            nodes,
            days,
            seed,
            protocol_version,
            self_id,
        } => {
            let spec = demo::DemoSpec {
                nodes,
                days,
                seed,
                protocol_version,
                self_id: parse_self(self_id.as_deref())?.unwrap_or(NodeId([0; 64])),
            };
            demo(&dir, &spec, out)?
        }
        Command::Dump { dir, json, all } => dump(&dir, json, all, out)?,
        Command::History { dir, node, json } => history(&dir, &node, json, out)?,
        Command::Verify { dir, strict, json } => return verify(&dir, strict, json, out),
        Command::Stats {
            dir,
            seed_age,
            self_id,
            json,
        } => {
            let self_id = parse_self(self_id.as_deref())?.unwrap_or(NodeId([0; 64]));
            stats(&dir, &self_id, seed_age, json, out)?
        }
        Command::Compact { open, keep_history } => maintain(open, Some(keep_history), out)?,
        Command::Expire { open } => maintain(open, None, out)?,
        Command::Export { dir, format } => export(&dir, format, out)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn demo(dir: &Path, spec: &demo::DemoSpec, out: &mut impl Write) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    let report = with_progress("writing", |p| demo::demo(dir, spec, p))?;
    let events: u64 = report.events_by_kind.values().sum();
    let by_kind: Vec<_> = report
        .events_by_kind
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    writeln!(
        out,
        "wrote {events} events ({}) over {} simulated days in {:.2?}",
        by_kind.join(", "),
        spec.days,
        started.elapsed()
    )?;
    writeln!(out, "{} nodes in {}", report.nodes, dir.display())?;
    writeln!(out, "try: peerlog stats {}", dir.display())?;
    Ok(())
}

fn dump(dir: &Path, json: bool, all: bool, out: &mut impl Write) -> Result<(), Failure> {
    let state = with_progress("reading", |p| inspect::state(dir, p))?;
    for peer in state.peers.iter().filter(|p| all || p.node.is_some()) {
        if json {
            writeln!(out, "{}", render::peer_json(peer))?;
        } else {
            writeln!(out, "{}", render::peer_line(peer))?;
        }
    }
    Ok(())
}

fn history(dir: &Path, node: &str, json: bool, out: &mut impl Write) -> Result<(), Failure> {
    let id = time::parse_node_arg(node)?;
    let entries = with_progress("reading", |p| inspect::history(dir, &id, p))?;
    for entry in &entries {
        if json {
            writeln!(out, "{}", render::history_json(entry))?;
            continue;
        }
        let mut origin = String::new();
        if entry.archived {
            origin.push_str(" [archive]");
        }
        if entry.compacted {
            origin.push_str(" [compacted]");
        }
        writeln!(
            out,
            "{} #{} {:<6} {}{origin}",
            time::iso8601(entry.record.written_at),
            entry.record.seq,
            entry.record.event.kind().name(),
            render::change_text(&entry.change)
        )?;
    }
    if entries.is_empty() && !json {
        writeln!(out, "no events about {id}")?;
    }
    Ok(())
}

fn verify(dir: &Path, strict: bool, json: bool, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let report = with_progress("verifying", |p| inspect::verify(dir, p))?;
    if json {
        writeln!(out, "{}", render::verify_json(&report, strict))?;
    } else {
        for file in &report.files {
            let seqs = file
                .seq_range
                .map_or_else(|| "-".to_string(), |(a, b)| format!("{a}..={b}"));
            writeln!(
                out,
                "{} {}: {} records, seq {seqs}, {} bytes",
                file.path.display(),
                file.role,
                file.records,
                file.size
            )?;
        }
        for finding in &report.findings {
            let label = if finding.is_damage(strict) {
                "DAMAGE"
            } else {
                "note"
            };
            writeln!(out, "{label}: {finding}")?;
        }
        let verdict = if report.is_intact(strict) {
            "intact"
        } else {
            "NOT intact"
        };
        writeln!(out, "{} records in the live log; {verdict}", report.records)?;
    }
    out.flush()?;
    Ok(if report.is_intact(strict) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn stats(
    dir: &Path,
    self_id: &NodeId,
    seed_age: Duration,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let s = with_progress("reading", |p| inspect::stats(dir, self_id, seed_age, p))?;
    if json {
        writeln!(out, "{}", render::stats_json(&s))?;
        return Ok(());
    }
    let kinds: Vec<_> = s
        .events_by_kind
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let span = s.span.map_or_else(
        || "-".to_string(),
        |(a, b)| format!("{} .. {}", time::iso8601(a), time::iso8601(b)),
    );
    writeln!(
        out,
        "nodes:     {} ({} IPv6), {} ids with data",
        s.nodes, s.ipv6_nodes, s.ids
    )?;
    writeln!(out, "events:    {} ({})", s.records, kinds.join(", "))?;
    writeln!(
        out,
        "bytes:     {} in records: {} live, {} dead",
        s.record_bytes, s.live_bytes, s.dead_bytes
    )?;
    writeln!(
        out,
        "segments:  {} ({} bytes on disk), {} archived ({} bytes)",
        s.segments, s.segment_file_bytes, s.archived_segments, s.archived_bytes
    )?;
    writeln!(out, "written:   {span}")?;
    writeln!(
        out,
        "seeds:     {} with a pong within {}",
        s.seeds,
        humantime::format_duration(s.seed_age)
    )?;
    writeln!(out, "problems:  {} (see peerlog verify)", s.problems)?;
    Ok(())
}

fn maintain(open: OpenArgs, compact: Option<bool>, out: &mut impl Write) -> Result<(), Failure> {
    let how = Maintenance {
        protocol_version: open.protocol_version,
        self_id: parse_self(open.self_id.as_deref())?,
        options: Options {
            expiration: open.expiration,
            keep_history: compact.unwrap_or(false),
            ..Options::default()
        },
    };
    let report = match compact {
        Some(_) => maintain::compact(&open.dir, &how)?,
        None => maintain::expire(&open.dir, &how)?,
    };
    if open.json {
        writeln!(out, "{}", render::maintenance_json(&report))?;
        return Ok(());
    }
    writeln!(
        out,
        "nodes: {} -> {} ({} expired); segments: {} -> {}",
        report.nodes_before,
        report.nodes_after,
        report.nodes_expired,
        report.segments.0,
        report.segments.1
    )?;
    if let Some(c) = &report.compaction {
        writeln!(
            out,
            "compacted {} segments: {} records ({} bytes) -> {} records ({} bytes)",
            c.segments_read, c.records_read, c.bytes_read, c.records_written, c.bytes_written
        )?;
    }
    Ok(())
}

fn export(dir: &Path, format: Format, out: &mut impl Write) -> Result<(), Failure> {
    let records = with_progress("reading", |p| inspect::export(dir, p))?;
    if let Format::Csv = format {
        writeln!(out, "{}", render::EXPORT_COLUMNS.join(","))?;
    }
    for record in &records {
        match format {
            Format::Jsonl => writeln!(out, "{}", render::export_json(record))?,
            Format::Csv => writeln!(out, "{}", render::export_csv(record))?,
        }
    }
    Ok(())
}

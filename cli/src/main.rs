//! `peerlog`: audit and operate a peer log from the command line.
//!
//! A thin layer over `peerlog::inspect` and `NodeDb`: parse arguments, call the library,
//! print.
//! Exit status: 0 success, 1 `verify` found damage, 2 any error (one line on stderr).

use std::collections::BTreeSet;
use std::io::{self, BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use peerlog::inspect::{self, InspectError};
use peerlog::{EventKind, NodeId, Options, PeerState, Record};

mod audit;
mod demo;
mod import;
mod logger;
mod maintain;
mod progress;
mod render;
mod salvage;
mod seeds;
mod time;

use import::{PeerFormat, PongAt};
use maintain::Maintenance;
use progress::{Meter, Span};

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
    /// An argument the command cannot work with, already worded.
    #[error("{0}")]
    Usage(String),
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
        /// Nodes to discover, 0 to 10000000
        #[arg(long, default_value_t = 1000, value_parser = nodes_arg, allow_hyphen_values = true)]
        nodes: u64,
        /// Days of simulated history, ending now: at least 1, and not before 1677-09-21 (the
        /// earliest time the log can store)
        #[arg(long, default_value_t = 7, value_parser = days_arg, allow_hyphen_values = true)]
        days: u64,
        /// Random seed (same seed, same nodes and times), any whole number
        #[arg(long, default_value_t = 1, value_parser = u64_arg, allow_hyphen_values = true)]
        seed: u64,
        /// Protocol version written in the segment headers, any whole number
        #[arg(long, default_value_t = 9, value_parser = u64_arg, allow_hyphen_values = true)]
        protocol_version: u64,
        /// The local node's id (128 hex characters); default all zeros
        #[arg(long = "self")]
        self_id: Option<String>,
    },
    /// Print the current state: one node a line (enode URL, last ping, last pong, fails)
    #[command(after_help = "Example: peerlog dump /tmp/peers --json --since 24h | head")]
    Dump {
        dir: PathBuf,
        /// One JSON object a line
        #[arg(long)]
        json: bool,
        /// Also list ids without a node record (only pings, pongs or fails)
        #[arg(long)]
        all: bool,
        /// Only nodes with an event written at or after this time (their last_written): a UTC
        /// time (2024-05-01, 2024-05-01T12:30:45Z) or a duration ago (24h, 7d)
        #[arg(long, value_parser = since_arg, allow_hyphen_values = true)]
        since: Option<SystemTime>,
        /// Only nodes whose record is of these kinds: node (unsigned endpoint), record (signed
        /// record), none (no record; implies --all)
        #[arg(long, value_enum, value_delimiter = ',')]
        kind: Vec<RecordKind>,
    },
    /// Print every event about one node, oldest first, including archived segments
    #[command(
        after_help = "Example: peerlog history /tmp/peers enode://1f2e...@10.0.0.1:30303\n\
                            An enode URL names the node by its id: every event about the id is \
                            listed, whatever its endpoint (a note on stderr says so)."
    )]
    History {
        dir: PathBuf,
        /// Node id (128 hex characters, optional 0x), enode URL, or signed record (the enr:
        /// text dump prints)
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
        /// Acknowledge the damage found (records it in the log, taking the lock): later runs
        /// list it as acknowledged and exit 0 unless new damage appears
        #[arg(long)]
        accept: bool,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Nodes, events by kind, live and dead bytes, segments, time span, seeds
    #[command(after_help = "Example: peerlog stats /tmp/peers --seed-age 5d")]
    Stats {
        dir: PathBuf,
        /// Count as seeds the nodes whose last pong is at most this old (0s and up)
        #[arg(long, default_value = "24h", value_parser = time::parse_duration, allow_hyphen_values = true)]
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
        /// Only events written at or after this time: a UTC time (2024-05-01,
        /// 2024-05-01T12:30:45Z) or a duration ago (24h, 7d)
        #[arg(long, value_parser = since_arg, allow_hyphen_values = true)]
        since: Option<SystemTime>,
        /// Only events of these kinds (node, ping, pong, fails, delete, expire, record,
        /// ping_from, pong_from, fails_at, ip_expire, local_seq, loss)
        #[arg(long, value_parser = event_kind_arg, value_delimiter = ',')]
        kind: Vec<EventKind>,
        /// Also the events of archive/ (kept by compact --keep-history): the full history
        #[arg(long)]
        with_archive: bool,
    },
    /// Look for poisoning: subnets holding the seeds, ids ground close to the node, floods
    #[command(after_help = "Example: peerlog audit /tmp/peers --self-id 1f2e...")]
    Audit(audit::AuditArgs),
    /// Take the lock and move segments whose header cannot be read into damaged/
    #[command(after_help = "Example: peerlog salvage /tmp/peers\n\
                      Nothing is deleted: each file goes into the damaged/ folder beside it, \
                      and the sequence numbers lost with it are listed.")]
    Salvage {
        dir: PathBuf,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Take the lock and import the peers of a client's peer file (reth, kona, ENR or enode lists)
    #[command(
        after_help = "Example: peerlog import /tmp/peers ~/.local/share/reth/mainnet/known-peers.json --format reth --pong-at mtime\n\
                      A bad entry is reported with its position and skipped (exit status 1); \
                      a file cut off mid-write is refused whole (exit status 2, nothing \
                      imported)."
    )]
    Import {
        /// Database directory; a new one is created with --protocol-version
        dir: PathBuf,
        /// The peer file
        file: PathBuf,
        /// What the file is: reth (known-peers.json), kona (bootstore.json), enr or enode (one a line)
        #[arg(long, value_enum)]
        format: PeerFormat,
        /// Protocol version of a new database (default 9); an existing database keeps its own,
        /// and a different one is refused (opening with it would wipe the database)
        #[arg(long, value_parser = u64_arg, allow_hyphen_values = true)]
        protocol_version: Option<u64>,
        /// When the peers were last known alive: a UTC time or a duration ago (as --since
        /// takes it), or `mtime` (the file's modification time). Without it, imported peers get
        /// no pong and are no seeds until they answer
        #[arg(long, value_parser = pong_at_arg, allow_hyphen_values = true)]
        pong_at: Option<PongAt>,
    },
    /// Print the seeds a node would start from, as a client's peer file or one a line
    #[command(
        after_help = "Example: peerlog seeds /tmp/peers -n 50 --format reth > known-peers.json\n\
                      enr and kona list nodes with a signed record only; enode, reth and \
                      --json list every seed."
    )]
    Seeds {
        dir: PathBuf,
        /// At most this many seeds
        #[arg(short = 'n', long = "count", default_value_t = 30, value_parser = count_arg, allow_hyphen_values = true)]
        n: u64,
        /// Only peers with a pong at most this old
        #[arg(long, default_value = "5d", value_parser = time::parse_duration, allow_hyphen_values = true)]
        max_age: Duration,
        /// Output: enr (one a line), enode (one a line), reth (known-peers.json), kona
        /// (bootstore.json)
        #[arg(long, value_enum, default_value_t = PeerFormat::Enr, conflicts_with = "json")]
        format: PeerFormat,
        /// Only peers whose signed record holds this ENR key (eth2, opstack, ...)
        #[arg(long)]
        key: Option<String>,
        /// At most this many seeds from one subnet (`max` for no limit)
        #[arg(long, default_value = "2", value_parser = per_subnet_arg)]
        per_subnet: usize,
        /// Prefix lengths of a subnet, IPv4 and IPv6: V4,V6 (0,0 puts every node in one)
        #[arg(long, default_value = "24,48", value_parser = subnet_bits_arg)]
        subnet_bits: (u8, u8),
        /// The local node's id, never a seed; default all zeros
        #[arg(long = "self")]
        self_id: Option<String>,
        /// One JSON object a line: id, enode, ip, udp, tcp, record_seq, enr
        #[arg(long)]
        json: bool,
    },
}

/// `--per-subnet`: a count, or `max` for no limit.
fn per_subnet_arg(text: &str) -> Result<usize, String> {
    if text == "max" {
        return Ok(usize::MAX);
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a count (a whole number, or max)"))
}

/// `--subnet-bits V4,V6`: IPv4 bits up to 32, IPv6 bits up to 128.
fn subnet_bits_arg(text: &str) -> Result<(u8, u8), String> {
    let bad = || format!("{text:?} is not V4,V6 prefix lengths (such as 24,48)");
    let (v4, v6) = text.split_once(',').ok_or_else(bad)?;
    let v4: u8 = v4.trim().parse().map_err(|_| bad())?;
    let v6: u8 = v6.trim().parse().map_err(|_| bad())?;
    if v4 > 32 || v6 > 128 {
        return Err(format!(
            "{text:?}: an IPv4 prefix is at most 32 bits, an IPv6 one at most 128"
        ));
    }
    Ok((v4, v6))
}

#[derive(Args)]
struct OpenArgs {
    dir: PathBuf,
    /// Protocol version; default: the one in the segment headers (a different one is refused,
    /// since opening with it would wipe the database)
    #[arg(long, value_parser = u64_arg, allow_hyphen_values = true)]
    protocol_version: Option<u64>,
    /// The local node's id; its own record is dropped by expiration. Default all zeros
    #[arg(long = "self")]
    self_id: Option<String>,
    /// Nodes whose last pong is older than this are dropped (at least 1s)
    #[arg(long, default_value = "24h", value_parser = expiration_arg, allow_hyphen_values = true)]
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

/// What a node's record is, for `dump --kind`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum RecordKind {
    /// An unsigned endpoint (a `node` event).
    Node,
    /// A signed record (a `record` event).
    Record,
    /// No record: only pings, pongs or fails.
    None,
}

impl RecordKind {
    fn of(peer: &PeerState) -> RecordKind {
        match (&peer.record, &peer.node) {
            (Some(_), _) => RecordKind::Record,
            (None, Some(_)) => RecordKind::Node,
            (None, None) => RecordKind::None,
        }
    }
}

fn nodes_arg(text: &str) -> Result<u64, String> {
    time::parse_number(text, 0, demo::MAX_NODES)
}

fn days_arg(text: &str) -> Result<u64, String> {
    time::parse_number(text, 1, u64::MAX)
}

fn u64_arg(text: &str) -> Result<u64, String> {
    time::parse_number(text, 0, u64::MAX)
}

fn count_arg(text: &str) -> Result<u64, String> {
    time::parse_number(text, 0, u32::MAX.into())
}

fn pong_at_arg(text: &str) -> Result<PongAt, String> {
    if text.trim() == "mtime" {
        return Ok(PongAt::Mtime);
    }
    since_arg(text).map(PongAt::Time)
}

fn expiration_arg(text: &str) -> Result<Duration, String> {
    let d = time::parse_duration(text)?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "{text}: at least 1s (a shorter expiration would drop every node)"
        ));
    }
    Ok(d)
}

fn since_arg(text: &str) -> Result<SystemTime, String> {
    time::parse_since(text, SystemTime::now())
}

fn event_kind_arg(text: &str) -> Result<EventKind, String> {
    EventKind::ALL
        .into_iter()
        .find(|k| k.name() == text.trim())
        .ok_or_else(|| {
            let names: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown kind {text:?}; the kinds are {}", names.join(", "))
        })
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

fn fail(message: &str) -> ExitCode {
    eprintln!("peerlog: {message}");
    ExitCode::from(2)
}

/// `--help` and `--version` as clap prints them (exit 0); any other argument error as one
/// line on stderr, exit status 2.
fn usage_error(e: &clap::Error) -> ExitCode {
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

fn parse_self(arg: Option<&str>) -> Result<Option<NodeId>, Failure> {
    arg.map(|s| {
        s.parse::<NodeId>().map_err(|e| match e {
            peerlog::Error::InvalidInput(why) => Failure::Usage(format!("--self: {why}")),
            other => Failure::from(other),
        })
    })
    .transpose()
}

/// Reports progress every this many lines printed.
const LINES_PER_REPORT: usize = 4096;

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
        Command::Dump {
            dir,
            json,
            all,
            since,
            kind,
        } => {
            let filter = DumpFilter {
                all,
                since,
                kinds: kind.into_iter().collect(),
            };
            dump(&dir, json, &filter, out)?
        }
        Command::History { dir, node, json } => history(&dir, &node, json, out)?,
        Command::Verify {
            dir,
            strict,
            accept,
            json,
        } => return verify(&dir, strict, accept, json, out),
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
        Command::Export {
            dir,
            format,
            since,
            kind,
            with_archive,
        } => {
            let filter = ExportFilter {
                since,
                kinds: kind.into_iter().collect(),
            };
            export(&dir, format, &filter, with_archive, out)?
        }
        Command::Salvage { dir, json } => {
            // Named absolute, as the files it moves are.
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            salvage::run(&dir, json, out)?
        }
        Command::Import {
            dir,
            file,
            format,
            protocol_version,
            pong_at,
        } => {
            let spec = import::ImportSpec {
                dir,
                file,
                format,
                protocol_version,
                pong_at,
            };
            return import::run(&spec, out);
        }
        Command::Seeds {
            dir,
            n,
            max_age,
            format,
            key,
            per_subnet,
            subnet_bits,
            self_id,
            json,
        } => {
            let spec = seeds::SeedSpec {
                n: usize::try_from(n).unwrap_or(usize::MAX),
                max_age,
                key,
                per_subnet,
                subnet_bits,
                self_id: parse_self(self_id.as_deref())?.unwrap_or(NodeId([0; 64])),
            };
            seeds::run(&dir, &spec, format, json, out)?
        }
        Command::Audit(args) => audit::run(&args, out)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn demo(dir: &Path, spec: &demo::DemoSpec, out: &mut impl Write) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    let meter = Meter::bar("writing");
    let report = {
        let writing = meter.step("writing", Span::percent(0, 97));
        let closing = || meter.begin("closing", Span::percent(97, 100));
        demo::demo(dir, spec, &writing, &closing)?
    };
    meter.finish();
    let events: u64 = report.events_by_kind.values().sum();
    let by_kind: Vec<_> = report
        .events_by_kind
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    // No kinds to list for an empty database.
    let by_kind = if by_kind.is_empty() {
        String::new()
    } else {
        format!(" ({})", by_kind.join(", "))
    };
    writeln!(
        out,
        "wrote {}{by_kind} over {} simulated {} in {:.2?}",
        time::count(events, "event"),
        spec.days,
        if spec.days == 1 { "day" } else { "days" },
        started.elapsed()
    )?;
    writeln!(
        out,
        "{} in {}",
        time::count(report.nodes as u64, "node"),
        dir.display()
    )?;
    writeln!(out, "try: peerlog stats {}", dir.display())?;
    Ok(())
}

/// Which nodes `dump` prints.
struct DumpFilter {
    all: bool,
    since: Option<SystemTime>,
    kinds: BTreeSet<RecordKind>,
}

impl DumpFilter {
    fn keeps(&self, peer: &PeerState) -> bool {
        let kind = RecordKind::of(peer);
        let kind_ok = if self.kinds.is_empty() {
            self.all || kind != RecordKind::None
        } else {
            self.kinds.contains(&kind)
        };
        kind_ok && self.since.is_none_or(|t| peer.last_written >= t)
    }
}

fn dump(dir: &Path, json: bool, filter: &DumpFilter, out: &mut impl Write) -> Result<(), Failure> {
    // Shares of the time (measured at 100 k nodes): reading is most of a text dump, under
    // half of a JSON one. Each peer's state is made as it is printed.
    let read_share = if json { 45 } else { 75 };
    let meter = Meter::bar("reading");
    let reading = meter.step("reading", Span::percent(0, read_share));
    inspect::with_peers(dir, &reading, |peers| -> Result<(), Failure> {
        let printing = meter.output_step("printing", Span::percent(read_share, 100));
        let total = peers.len() as u64;
        for (i, peer) in peers.enumerate() {
            if i % LINES_PER_REPORT == 0 {
                printing(i as u64, total);
            }
            if !filter.keeps(&peer) {
                continue;
            }
            if json {
                writeln!(out, "{}", render::peer_json(&peer))?;
            } else {
                writeln!(out, "{}", render::peer_line(&peer))?;
            }
        }
        printing(total, total);
        Ok(())
    })?
}

fn history(dir: &Path, node: &str, json: bool, out: &mut impl Write) -> Result<(), Failure> {
    let (id, endpoint) = time::parse_node_arg(node).map_err(Failure::Usage)?;
    if let Some(endpoint) = endpoint {
        eprintln!(
            "peerlog: note: listing every event about the node id of this enode URL; its \
             endpoint ({}) is not a filter",
            render::endpoint_text(&endpoint)
        );
    }
    let meter = Meter::bar("reading");
    let entries = inspect::history(dir, &id, &meter.step("reading", Span::percent(0, 95)))?;
    let printing = meter.output_step("printing", Span::percent(95, 100));
    let total = entries.len() as u64;
    for (i, entry) in entries.iter().enumerate() {
        if i % LINES_PER_REPORT == 0 {
            printing(i as u64, total);
        }
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
    printing(total, total);
    meter.finish();
    if entries.is_empty() {
        // An answer, not an error: stdout stays empty (as with --json), the status 0.
        eprintln!("peerlog: note: no events about {id} in the live log or archive/");
    }
    Ok(())
}

fn verify(
    dir: &Path,
    strict: bool,
    accept: bool,
    json: bool,
    out: &mut impl Write,
) -> Result<ExitCode, Failure> {
    let accepted = if accept {
        maintain::accept_damage(dir)?
    } else {
        Vec::new()
    };
    let meter = Meter::bar("verifying");
    let report = inspect::verify(dir, &meter.step("verifying", Span::ALL))?;
    meter.finish();
    if json {
        writeln!(out, "{}", render::verify_json(&report, strict, &accepted))?;
    } else {
        for loss in &accepted {
            writeln!(out, "acknowledged now: {loss}")?;
        }
        for file in &report.files {
            let seqs = file
                .seq_range
                .map_or_else(|| "-".to_string(), |(a, b)| format!("{a}..={b}"));
            writeln!(
                out,
                "{} {}: {}, seq {seqs}, {}",
                file.path.display(),
                file.role,
                time::count(file.records, "record"),
                time::count(file.size, "byte")
            )?;
        }
        for finding in &report.findings {
            let label = if finding.is_damage(strict) {
                "DAMAGE"
            } else if finding.acknowledged {
                "acknowledged"
            } else {
                "note"
            };
            writeln!(out, "{label}: {}", render::finding_text(finding))?;
        }
        for path in &report.ignored {
            writeln!(out, "note: {}: not a peerlog file; ignored", path.display())?;
        }
        let verdict = if report.is_intact(strict) {
            "intact"
        } else {
            "NOT intact"
        };
        writeln!(
            out,
            "{} in the live log; {verdict}",
            time::count(report.records, "record")
        )?;
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
    let meter = Meter::bar("reading");
    let s = inspect::stats(dir, self_id, seed_age, &meter.step("reading", Span::ALL))?;
    meter.finish();
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
        "nodes:     {} ({} IPv6), {} with data",
        s.nodes,
        s.ipv6_nodes,
        time::count(s.ids as u64, "id")
    )?;
    writeln!(out, "events:    {} ({})", s.records, kinds.join(", "))?;
    writeln!(
        out,
        "bytes:     {} in records: {} live, {} dead",
        s.record_bytes, s.live_bytes, s.dead_bytes
    )?;
    writeln!(
        out,
        "segments:  {} ({} on disk), {} archived ({})",
        s.segments,
        time::count(s.segment_file_bytes, "byte"),
        s.archived_segments,
        time::count(s.archived_bytes, "byte")
    )?;
    writeln!(out, "written:   {span}")?;
    writeln!(
        out,
        "seeds:     {} with a pong within {}",
        s.seeds,
        time::duration_words(s.seed_age)
    )?;
    writeln!(
        out,
        "problems:  {} in the live log (see peerlog verify)",
        s.problems
    )?;
    let acknowledged = s.losses.iter().filter(|l| l.acknowledged).count();
    writeln!(
        out,
        "losses:    {} recorded, {acknowledged} acknowledged (see peerlog verify)",
        s.losses.len()
    )?;
    for loss in s.losses.iter().filter(|l| !l.acknowledged) {
        writeln!(out, "  {loss}")?;
    }
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
    let meter = Meter::spinner("opening");
    let stage = |what: &'static str| meter.label(what);
    let report = match compact {
        Some(_) => maintain::compact(&open.dir, &how, &stage)?,
        None => maintain::expire(&open.dir, &how, &stage)?,
    };
    meter.finish();
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
            "compacted {}: {} ({}) -> {} ({})",
            time::count(c.segments_read as u64, "segment"),
            time::count(c.records_read, "record"),
            time::count(c.bytes_read, "byte"),
            time::count(c.records_written, "record"),
            time::count(c.bytes_written, "byte")
        )?;
        for problem in &c.problems {
            let recorded = match peerlog::Loss::from_problem(problem) {
                Some(_) => "recorded as a loss in the log, ",
                None => "",
            };
            writeln!(
                out,
                "DAMAGE found: {problem}; {recorded}the segment moved to archive/"
            )?;
        }
    }
    if !report.losses.is_empty() {
        let acknowledged = report.losses.iter().filter(|l| l.acknowledged).count();
        writeln!(
            out,
            "losses the log records: {}, {acknowledged} acknowledged (see peerlog verify)",
            report.losses.len()
        )?;
        for loss in report.losses.iter().filter(|l| !l.acknowledged) {
            writeln!(out, "  {loss}")?;
        }
    }
    Ok(())
}

/// Bytes of rows `export` gathers before each write to its output.
const EXPORT_CHUNK: usize = 64 << 10;

/// Which events `export` prints.
struct ExportFilter {
    since: Option<SystemTime>,
    kinds: BTreeSet<EventKind>,
}

impl ExportFilter {
    fn keeps(&self, record: &Record) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&record.event.kind()))
            && self.since.is_none_or(|t| record.written_at >= t)
    }
}

fn export(
    dir: &Path,
    format: Format,
    filter: &ExportFilter,
    with_archive: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    // Records are printed as they are read (constant memory; `export | head` stops the read),
    // so one bar covers both.
    let meter = Meter::bar("exporting");
    let progress = meter.output_step("exporting", Span::percent(0, 100));
    if let Format::Csv = format {
        writeln!(out, "{}", render::EXPORT_COLUMNS.join(","))?;
    }
    let mut writer = render::ExportRows::new(match format {
        Format::Jsonl => render::RowStyle::Json,
        Format::Csv => render::RowStyle::Csv,
    });
    // Rows go into one buffer, reused, handed to `out` some 64 KiB at a time: formatting,
    // not the disk, bounds an export.
    let mut rows = Vec::with_capacity(EXPORT_CHUNK + 4096);
    let mut failed = None;
    let mut on_record = |record: Record| {
        if !filter.keeps(&record) {
            return ControlFlow::Continue(());
        }
        writer.push(&mut rows, &record);
        rows.push(b'\n');
        if rows.len() < EXPORT_CHUNK {
            return ControlFlow::Continue(());
        }
        let written = out.write_all(&rows);
        rows.clear();
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    };
    if with_archive {
        inspect::export_with_archive_each(dir, &progress, &mut on_record)?;
    } else {
        inspect::export_each(dir, &progress, &mut on_record)?;
    }
    if failed.is_none() {
        out.write_all(&rows)?;
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

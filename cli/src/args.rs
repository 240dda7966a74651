//! The command line: every subcommand and its flags, as clap parses them. Values that need
//! more than clap's own checks are parsed in `parse.rs`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand, ValueEnum};
use peerlog::{EventKind, PeerState};

use crate::parse::{
    count_arg, days_arg, event_kind_arg, expiration_arg, nodes_arg, per_subnet_arg, pong_at_arg,
    since_arg, subnet_bits_arg, u64_arg,
};
use crate::peers::{PeerFormat, PongAt};
use crate::time;

#[derive(Parser)]
#[command(
    name = "peerlog",
    version,
    about = "Audit and operate a peerlog database (a log of the p2p peers a node discovered)",
    after_help = "Read-only commands (dump, history, verify, stats, export) take no lock and \
                  are safe on a live database.\nExit status: 0 ok, 1 verify found damage, 2 error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a demo database with a few days of simulated peer history
    #[command(after_help = "Example: peerlog demo /tmp/peers --nodes 10000 --days 7")]
    Demo(DemoArgs),
    /// Print the current state: one node a line (enode URL, last ping, last pong, fails)
    #[command(after_help = "Example: peerlog dump /tmp/peers --json --since 24h | head")]
    Dump(DumpArgs),
    /// Print every event about one node, oldest first, including archived segments
    #[command(
        after_help = "Example: peerlog history /tmp/peers enode://1f2e...@10.0.0.1:30303\n\
                            An enode URL names the node by its id: every event about the id is \
                            listed, whatever its endpoint (a note on stderr says so)."
    )]
    History(HistoryArgs),
    /// Check every segment and record; exit status 0 only when everything is intact
    #[command(after_help = "Example: peerlog verify /tmp/peers --strict")]
    Verify(VerifyArgs),
    /// Nodes, events by kind, live and dead bytes, segments, time span, seeds
    #[command(after_help = "Example: peerlog stats /tmp/peers --seed-age 5d")]
    Stats(StatsArgs),
    /// Take the lock, drop expired nodes and rewrite the log as its live state
    #[command(after_help = "Example: peerlog compact /tmp/peers --keep-history")]
    Compact(CompactArgs),
    /// Take the lock and drop nodes whose last pong is older than the expiration
    #[command(after_help = "Example: peerlog expire /tmp/peers --expiration 48h")]
    Expire(ExpireArgs),
    /// Print every event of the live log, one a line, for DuckDB, pandas or Spark
    #[command(after_help = "Example: peerlog export /tmp/peers --format csv > events.csv")]
    Export(ExportArgs),
    /// Look for poisoning: subnets holding the seeds, ids ground close to the node, floods
    #[command(after_help = "Example: peerlog audit /tmp/peers --self-id 1f2e...")]
    Audit(AuditArgs),
    /// Take the lock and move segments whose header cannot be read into damaged/
    #[command(after_help = "Example: peerlog salvage /tmp/peers\n\
                      Nothing is deleted: each file goes into the damaged/ folder beside it, \
                      and the sequence numbers lost with it are listed.")]
    Salvage(SalvageArgs),
    /// Take the lock and import the peers of a client's peer file (reth, kona, ENR or enode lists)
    #[command(
        after_help = "Example: peerlog import /tmp/peers ~/.local/share/reth/mainnet/known-peers.json --format reth --pong-at mtime\n\
                      A bad entry is reported with its position and skipped (exit status 1); \
                      a file cut off mid-write is refused whole (exit status 2, nothing \
                      imported)."
    )]
    Import(ImportArgs),
    /// Print the seeds a node would start from, as a client's peer file or one a line
    #[command(
        after_help = "Example: peerlog seeds /tmp/peers -n 50 --format reth > known-peers.json\n\
                      enr and kona list nodes with a signed record only; enode, reth and \
                      --json list every seed."
    )]
    Seeds(SeedsArgs),
}

#[derive(Args)]
pub struct DemoArgs {
    /// Directory to create (must not exist, or be empty)
    pub dir: PathBuf,
    /// Nodes to discover, 0 to 10000000
    #[arg(long, default_value_t = 1000, value_parser = nodes_arg, allow_hyphen_values = true)]
    pub nodes: u64,
    /// Days of simulated history, ending now: at least 1, and not before 1677-09-21 (the
    /// earliest time the log can store)
    #[arg(long, default_value_t = 7, value_parser = days_arg, allow_hyphen_values = true)]
    pub days: u64,
    /// Random seed (same seed, same nodes and times), any whole number
    #[arg(long, default_value_t = 1, value_parser = u64_arg, allow_hyphen_values = true)]
    pub seed: u64,
    /// Protocol version written in the segment headers, any whole number
    #[arg(long, default_value_t = 9, value_parser = u64_arg, allow_hyphen_values = true)]
    pub protocol_version: u64,
    /// The local node's id (128 hex characters); default all zeros
    #[arg(long = "self")]
    pub self_id: Option<String>,
}

#[derive(Args)]
pub struct DumpArgs {
    pub dir: PathBuf,
    /// One JSON object a line
    #[arg(long)]
    pub json: bool,
    /// Also list ids without a node record (only pings, pongs or fails)
    #[arg(long)]
    pub all: bool,
    /// Only nodes with an event written at or after this time (their last_written): a UTC
    /// time (2024-05-01, 2024-05-01T12:30:45Z) or a duration ago (24h, 7d)
    #[arg(long, value_parser = since_arg, allow_hyphen_values = true)]
    pub since: Option<SystemTime>,
    /// Only nodes whose record is of these kinds: node (unsigned endpoint), record (signed
    /// record), none (no record; implies --all)
    #[arg(long, value_enum, value_delimiter = ',')]
    pub kind: Vec<RecordKind>,
}

#[derive(Args)]
pub struct HistoryArgs {
    pub dir: PathBuf,
    /// Node id (128 hex characters, optional 0x), enode URL, or signed record (the enr:
    /// text dump prints)
    pub node: String,
    /// One JSON object a line
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    pub dir: PathBuf,
    /// Count a torn tail (crash or append in progress) as damage too
    #[arg(long)]
    pub strict: bool,
    /// Acknowledge the damage found (records it in the log, taking the lock): later runs
    /// list it as acknowledged and exit 0 unless new damage appears
    #[arg(long)]
    pub accept: bool,
    /// One JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct StatsArgs {
    pub dir: PathBuf,
    /// Count as seeds the nodes whose last pong is at most this old (0s and up)
    #[arg(long, default_value = "24h", value_parser = time::parse_duration, allow_hyphen_values = true)]
    pub seed_age: Duration,
    /// The local node's id, never a seed; default all zeros
    #[arg(long = "self")]
    pub self_id: Option<String>,
    /// One JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub open: OpenArgs,
    /// Move replaced segments to archive/ instead of deleting them
    #[arg(long)]
    pub keep_history: bool,
}

#[derive(Args)]
pub struct ExpireArgs {
    #[command(flatten)]
    pub open: OpenArgs,
}

#[derive(Args)]
pub struct ExportArgs {
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Only events written at or after this time: a UTC time (2024-05-01,
    /// 2024-05-01T12:30:45Z) or a duration ago (24h, 7d)
    #[arg(long, value_parser = since_arg, allow_hyphen_values = true)]
    pub since: Option<SystemTime>,
    /// Only events of these kinds (node, ping, pong, fails, delete, expire, record,
    /// ping_from, pong_from, fails_at, ip_expire, local_seq, loss, evict,
    /// ip_evict)
    #[arg(long, value_parser = event_kind_arg, value_delimiter = ',')]
    pub kind: Vec<EventKind>,
    /// Also the events of archive/ (kept by compact --keep-history): the full history
    #[arg(long)]
    pub with_archive: bool,
}

#[derive(Args)]
pub struct SalvageArgs {
    pub dir: PathBuf,
    /// One JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Database directory; a new one is created with --protocol-version
    pub dir: PathBuf,
    /// The peer file
    pub file: PathBuf,
    /// What the file is: reth (known-peers.json), kona (bootstore.json), enr or enode (one a line)
    #[arg(long, value_enum)]
    pub format: PeerFormat,
    /// Protocol version of a new database (default 9); an existing database keeps its own,
    /// and a different one is refused (opening with it would wipe the database)
    #[arg(long, value_parser = u64_arg, allow_hyphen_values = true)]
    pub protocol_version: Option<u64>,
    /// When the peers were last known alive: a UTC time or a duration ago (as --since
    /// takes it), or `mtime` (the file's modification time). Without it, imported peers get
    /// no pong and are no seeds until they answer
    #[arg(long, value_parser = pong_at_arg, allow_hyphen_values = true)]
    pub pong_at: Option<PongAt>,
}

#[derive(Args)]
pub struct SeedsArgs {
    pub dir: PathBuf,
    /// At most this many seeds
    #[arg(short = 'n', long = "count", default_value_t = 30, value_parser = count_arg, allow_hyphen_values = true)]
    pub n: u64,
    /// Only peers with a pong at most this old
    #[arg(long, default_value = "5d", value_parser = time::parse_duration, allow_hyphen_values = true)]
    pub max_age: Duration,
    /// Output: enr (one a line), enode (one a line), reth (known-peers.json), kona
    /// (bootstore.json)
    #[arg(long, value_enum, default_value_t = PeerFormat::Enr, conflicts_with = "json")]
    pub format: PeerFormat,
    /// Only peers whose signed record holds this ENR key (eth2, opstack, ...)
    #[arg(long)]
    pub key: Option<String>,
    /// At most this many seeds from one subnet (`max` for no limit)
    #[arg(long, default_value = "2", value_parser = per_subnet_arg)]
    pub per_subnet: usize,
    /// Prefix lengths of a subnet, IPv4 and IPv6: V4,V6 (0,0 puts every node in one)
    #[arg(long, default_value = "24,48", value_parser = subnet_bits_arg)]
    pub subnet_bits: (u8, u8),
    /// The local node's id, never a seed; default all zeros
    #[arg(long = "self")]
    pub self_id: Option<String>,
    /// One JSON object a line: id, enode, ip, udp, tcp, record_seq, enr
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct OpenArgs {
    pub dir: PathBuf,
    /// Protocol version; default: the one in the segment headers (a different one is refused,
    /// since opening with it would wipe the database)
    #[arg(long, value_parser = u64_arg, allow_hyphen_values = true)]
    pub protocol_version: Option<u64>,
    /// The local node's id; its own record is dropped by expiration. Default all zeros
    #[arg(long = "self")]
    pub self_id: Option<String>,
    /// Nodes whose last pong is older than this are dropped (at least 1s)
    #[arg(long, default_value = "24h", value_parser = expiration_arg, allow_hyphen_values = true)]
    pub expiration: Duration,
    /// One JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

/// What a node's record is, for `dump --kind`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum RecordKind {
    /// An unsigned endpoint (a `node` event).
    Node,
    /// A signed record (a `record` event).
    Record,
    /// No record: only pings, pongs or fails.
    None,
}

impl RecordKind {
    pub fn of(peer: &PeerState) -> RecordKind {
        match (&peer.record, &peer.node) {
            (Some(_), _) => RecordKind::Record,
            (None, Some(_)) => RecordKind::Node,
            (None, None) => RecordKind::None,
        }
    }
}

/// `peerlog audit`.
#[derive(Args)]
pub struct AuditArgs {
    pub dir: PathBuf,
    /// Read archive/ too (kept by compact --keep-history): the first events of ids a
    /// compaction restated, and the evictions it dropped
    #[arg(long)]
    pub with_archive: bool,
    /// One JSON object
    #[arg(long)]
    pub json: bool,
    /// The node's own id (128 hex characters), for the log distances; the log does not
    /// record it, so without it that part is skipped
    #[arg(long)]
    pub self_id: Option<String>,
    /// The store's bound (Options::max_nodes) to audit against
    #[arg(long, default_value_t = peerlog::DEFAULT_MAX_NODES, value_parser = max_nodes_arg, allow_hyphen_values = true)]
    pub max_nodes: usize,
}

fn max_nodes_arg(text: &str) -> Result<usize, String> {
    crate::parse::parse_number(text, 1, usize::MAX as u64).map(|n| n as usize)
}

//! `peerlog import`: the peer files clients keep today into a database, and the formats
//! `peerlog seeds` writes them back in.
//!
//! The formats, as the clients' own code writes them:
//!
//! - reth's `known-peers.json` (`NetworkManager::write_peers_to_file`, through
//!   `reth_fs_util::write_json_file`): `serde_json::to_writer_pretty` of a `Vec<NodeRecord>`,
//!   each record serialized by its `Display`, an enode URL
//!   (`enode://<128 hex>@<ip>:<tcp>`, IPv6 in brackets, `?discport=<udp>` only when the UDP
//!   port differs). A pretty JSON array of strings, no newline at the end; written in place
//!   (`File::create` truncates first), not atomically, at a clean shutdown only.
//! - kona's `bootstore.json` (`BootStore::sync`): `serde_json::to_writer` of its peers, a
//!   compact JSON array of ENR strings (`enr:` and URL-safe base64 without padding, as the
//!   `enr` crate serializes a record), no newline at the end; rewritten in place, truncated
//!   first, without fsync.
//! - `enr` and `enode`: plain lists, one record or URL a line (a client's boot node list);
//!   blank lines and `#` comments are allowed.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use peerlog::enr::{CombinedKey, Enr};
use peerlog::inspect::{self, InspectError};
use peerlog::{Node, NodeDb, NodeId, Options};
use serde_json::Value;

use crate::args::ImportArgs;
use crate::error::{CliError, Failure};
pub use crate::peers::{PeerFormat, PongAt};
use crate::plural::count;
use crate::time::iso8601;

/// Where an entry is in its file: the n-th element of a JSON array, or a line (from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// The n-th element of the JSON array.
    Entry(usize),
    /// Line n of a text list.
    Line(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Entry(n) => write!(f, "entry {n}"),
            Position::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// One peer read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A signed record (verified when it was parsed).
    Record(Box<Enr<CombinedKey>>),
    /// An endpoint.
    Node(Node),
}

impl Peer {
    /// The peer's id.
    pub fn id(&self) -> NodeId {
        match self {
            Peer::Record(record) => {
                NodeId::from_enr(record.as_ref()).expect("checked when it was parsed")
            }
            Peer::Node(node) => node.id,
        }
    }
}

/// What a file holds: the peers that parsed, and the entries that did not, with why.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Good entries, in file order.
    pub peers: Vec<(Position, Peer)>,
    /// Bad entries, in file order.
    pub bad: Vec<(Position, String)>,
}

/// Parses a whole file of peers. An error means the file as a whole cannot be read (cut off
/// mid-write, not JSON, not an array): nothing in it is to be imported.
pub fn parse(bytes: &[u8], format: PeerFormat) -> Result<Parsed, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(
            "the file is empty: cut off before anything was written (the client was stopped \
             right after it truncated the file to rewrite it?), or never written; nothing to \
             import"
                .to_string(),
        );
    }
    match format {
        PeerFormat::Reth | PeerFormat::Kona => parse_json(bytes, format),
        PeerFormat::Enr | PeerFormat::Enode => parse_lines(bytes, format),
    }
}

fn parse_peer(text: &str, format: PeerFormat) -> Result<Peer, String> {
    if format.holds_records() {
        let record: Enr<CombinedKey> = text.parse().map_err(|e: String| {
            // The enr crate's words, without its Debug quoting.
            e.replace("Custom(\"", "").replace("\")", "")
        })?;
        NodeId::from_enr(&record).map_err(|e| e.to_string())?;
        Ok(Peer::Record(Box::new(record)))
    } else {
        text.parse::<Node>()
            .map(Peer::Node)
            .map_err(|e| e.to_string())
    }
}

/// Shortens what is quoted from a bad entry.
fn quote(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

fn parse_json(bytes: &[u8], format: PeerFormat) -> Result<Parsed, String> {
    let what = match format {
        PeerFormat::Reth => "a JSON array of enode URLs, as reth writes known-peers.json",
        _ => "a JSON array of ENRs, as kona writes bootstore.json",
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            format!(
                "the file ends in the middle of its JSON (line {}, column {}): it was cut off \
                 mid-write (the client was stopped while it rewrote the file in place?); \
                 nothing imported",
                e.line(),
                e.column()
            )
        } else {
            format!("not valid JSON ({e}); expected {what}; nothing imported")
        }
    })?;
    let Value::Array(entries) = value else {
        return Err(format!("the JSON is not an array; expected {what}"));
    };
    let mut parsed = Parsed::default();
    for (i, entry) in entries.iter().enumerate() {
        let position = Position::Entry(i + 1);
        let result = match entry {
            Value::String(text) => parse_peer(text, format)
                .map_err(|why| format!("{}: {why}", quote(text)))
                .map(|peer| parsed.peers.push((position, peer))),
            other => Err(format!("not a string: {}", quote(&other.to_string()))),
        };
        if let Err(why) = result {
            parsed.bad.push((position, why));
        }
    }
    Ok(parsed)
}

fn parse_lines(bytes: &[u8], format: PeerFormat) -> Result<Parsed, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let ends_in_newline = text.is_empty() || text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut parsed = Parsed::default();
    for (i, line) in lines.iter().enumerate() {
        // Neither an ENR nor an enode URL holds a '#': the rest of the line is a comment.
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let position = Position::Line(i + 1);
        match parse_peer(entry, format) {
            Ok(peer) => parsed.peers.push((position, peer)),
            // The last line, unfinished and bad: the file was cut off while it was written.
            Err(why) if i + 1 == lines.len() && !ends_in_newline => {
                return Err(format!(
                    "the last line ({position}) has no newline and does not parse ({why}): the \
                     file was cut off mid-write; nothing imported"
                ));
            }
            Err(why) => parsed
                .bad
                .push((position, format!("{}: {why}", quote(entry)))),
        }
    }
    Ok(parsed)
}

/// What `peerlog import` is asked to do.
pub struct ImportSpec {
    /// The database directory (created when it holds no database).
    pub dir: PathBuf,
    /// The file to read.
    pub file: PathBuf,
    /// Its format.
    pub format: PeerFormat,
    /// Protocol version: of a new database (default 9), or checked against an existing one.
    pub protocol_version: Option<u64>,
    /// A pong for every imported peer at its endpoint's IP.
    pub pong_at: Option<PongAt>,
}

/// The protocol version a new database gets, as `peerlog demo`.
pub const DEFAULT_PROTOCOL_VERSION: u64 = 9;

/// Opens `dir` for writing, creating a database with `version` (default 9) when it holds
/// none; an existing database keeps its own version, and a different `version` is refused
/// (opening with it would wipe the database).
fn open_or_create(dir: &Path, version: Option<u64>) -> Result<NodeDb, CliError> {
    let version = match (version, inspect::protocol_version(dir)) {
        (Some(given), _) => given,
        (None, Ok(in_place)) => in_place,
        (None, Err(InspectError::NoSuchDir(_) | InspectError::NoDatabase(_))) => {
            DEFAULT_PROTOCOL_VERSION
        }
        (None, Err(e)) => return Err(e.into()),
    };
    let options = Options {
        wipe_on_version_change: false,
        ..Options::default()
    };
    Ok(NodeDb::open_with(dir, version, NodeId([0; 64]), options)?)
}

/// What happened to the peers of a file.
#[derive(Debug, Default)]
struct Tally {
    /// Ids the database did not hold a record of.
    new: usize,
    /// Records replaced (a higher or equal seq, another endpoint).
    updated: usize,
    /// The very same signed record was already stored: nothing written.
    unchanged: usize,
    /// The stored record is newer (a higher seq, or a signed record for an enode URL).
    kept: usize,
    /// Pongs written.
    pongs: usize,
}

/// Runs `peerlog import`; exit status 1 when some entries were bad (and skipped).
/// Runs `peerlog import`: exit status 1 when an entry was skipped.
pub fn command(args: ImportArgs, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let spec = ImportSpec {
        dir: args.dir,
        file: args.file,
        format: args.format,
        protocol_version: args.protocol_version,
        pong_at: args.pong_at,
    };
    run(&spec, out)
}

pub fn run(spec: &ImportSpec, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let file = spec.file.display();
    let bytes = std::fs::read(&spec.file)
        .map_err(|e| Failure::Usage(format!("{file}: cannot read it: {e}")))?;
    let pong_at = match spec.pong_at {
        None => None,
        Some(PongAt::Time(t)) => Some(t),
        Some(PongAt::Mtime) => Some(
            std::fs::metadata(&spec.file)
                .and_then(|m| m.modified())
                .map_err(|e| {
                    Failure::Usage(format!("{file}: no modification time for --pong-at: {e}"))
                })?,
        ),
    };
    if pong_at.is_some_and(|t| t > SystemTime::now()) {
        return Err(Failure::Usage(format!(
            "--pong-at {}: in the future; a pong can only be in the past",
            iso8601(pong_at.unwrap())
        )));
    }
    let parsed = parse(&bytes, spec.format)
        .map_err(|why| Failure::Usage(format!("{file} ({}): {why}", spec.format.name())))?;
    for (position, why) in &parsed.bad {
        eprintln!("peerlog: {file} {position}: {why}; skipped");
    }
    let mut tally = Tally::default();
    let started = SystemTime::now();
    if !parsed.peers.is_empty() {
        let db = open_or_create(&spec.dir, spec.protocol_version)?;
        for (_, peer) in &parsed.peers {
            import_peer(&db, peer, pong_at, &mut tally)?;
        }
        db.close()?;
    }
    let bad = parsed.bad.len();
    writeln!(
        out,
        "imported {} from {file} ({}): {} new, {} updated, {} unchanged, {} older than the \
         stored record (kept the stored one); {bad} bad, skipped",
        count(parsed.peers.len() as u64, "peer"),
        spec.format.name(),
        tally.new,
        tally.updated,
        tally.unchanged,
        tally.kept,
    )?;
    if tally.new + tally.updated > 0 {
        writeln!(
            out,
            "written at {} into {}: `peerlog history` shows each as its node or record event \
             of that time",
            iso8601(started),
            spec.dir.display()
        )?;
    }
    match pong_at {
        Some(t) => writeln!(
            out,
            "{} at {} (--pong-at)",
            count(tally.pongs as u64, "pong"),
            iso8601(t)
        )?,
        None => writeln!(
            out,
            "no pongs written: imported peers are no seeds until they answer (or give \
             --pong-at)"
        )?,
    }
    Ok(if bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn import_peer(
    db: &NodeDb,
    peer: &Peer,
    pong_at: Option<SystemTime>,
    tally: &mut Tally,
) -> Result<(), peerlog::Error> {
    let id = peer.id();
    let before = db.peer(&id);
    let had_record = before
        .as_ref()
        .is_some_and(|p| p.node.is_some() || p.record.is_some());
    let ip = match peer {
        Peer::Record(record) => {
            let stored_rlp = before
                .as_ref()
                .and_then(|p| p.record.as_ref())
                .map(|r| r.rlp().to_vec());
            if !db.update_record(record.as_ref())? {
                tally.kept += 1;
                return Ok(());
            }
            let now_rlp = db
                .peer(&id)
                .and_then(|p| p.record)
                .map(|r| r.rlp().to_vec());
            if stored_rlp.is_some() && stored_rlp == now_rlp {
                tally.unchanged += 1;
            } else if had_record {
                tally.updated += 1;
            } else {
                tally.new += 1;
            }
            db.node(&id).map(|n| n.ip)
        }
        Peer::Node(node) => {
            // An enode URL counts as seq 0: it never replaces a signed record.
            if db.record_seq(&id) > 0 {
                tally.kept += 1;
                return Ok(());
            }
            db.update_node(node)?;
            if had_record {
                tally.updated += 1;
            } else {
                tally.new += 1;
            }
            Some(node.ip)
        }
    };
    if let (Some(at), Some(ip)) = (pong_at, ip) {
        // Never moves a pong back in time.
        if db.last_pong_from(&id, ip).is_none_or(|last| last < at) {
            db.update_last_pong_from(&id, ip, at)?;
            tally.pongs += 1;
        }
    }
    Ok(())
}

/// `records` as the file `format` describes (`enr`: one a line; `kona`: a compact JSON array,
/// no newline at the end, byte for byte what kona's `BootStore::sync` writes).
pub fn write_records(
    records: &[Enr<CombinedKey>],
    format: PeerFormat,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let texts: Vec<String> = records.iter().map(Enr::to_base64).collect();
    match format {
        PeerFormat::Kona => out.write_all(
            serde_json::to_string(&texts)
                .expect("strings serialize")
                .as_bytes(),
        ),
        _ => texts.iter().try_for_each(|t| writeln!(out, "{t}")),
    }
}

/// `nodes` as the file `format` describes (`enode`: one URL a line; `reth`: a pretty JSON
/// array, no newline at the end, byte for byte what reth's `write_peers_to_file` writes).
pub fn write_nodes(
    nodes: &[Node],
    format: PeerFormat,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let texts: Vec<String> = nodes.iter().map(Node::to_string).collect();
    match format {
        PeerFormat::Reth => out.write_all(
            serde_json::to_string_pretty(&texts)
                .expect("strings serialize")
                .as_bytes(),
        ),
        _ => texts.iter().try_for_each(|t| writeln!(out, "{t}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u8, seq: u64) -> Enr<CombinedKey> {
        let key = CombinedKey::secp256k1_from_bytes(&mut [n; 32]).unwrap();
        Enr::builder()
            .ip4([10, 0, 0, n].into())
            .udp4(30303)
            .seq(seq)
            .build(&key)
            .unwrap()
    }

    #[test]
    fn a_kona_file_cut_anywhere_is_refused_whole_or_read_whole() {
        let mut file = Vec::new();
        write_records(&[record(1, 1), record(2, 1)], PeerFormat::Kona, &mut file).unwrap();
        for cut in 0..file.len() {
            assert!(
                parse(&file[..cut], PeerFormat::Kona).is_err(),
                "cut at {cut} of {}",
                file.len()
            );
        }
        let whole = parse(&file, PeerFormat::Kona).unwrap();
        assert_eq!(whole.peers.len(), 2);
        assert!(whole.bad.is_empty());
    }

    #[test]
    fn a_reth_file_cut_anywhere_is_refused_whole_or_read_whole() {
        let nodes: Vec<Node> = ["10.0.0.1:30303", "[2001:db8::1]:30303?discport=30301"]
            .iter()
            .enumerate()
            .map(|(i, end)| {
                format!("enode://{}@{end}", format!("{:02x}", i + 1).repeat(64))
                    .parse()
                    .unwrap()
            })
            .collect();
        let mut file = Vec::new();
        write_nodes(&nodes, PeerFormat::Reth, &mut file).unwrap();
        for cut in 0..file.len() {
            assert!(
                parse(&file[..cut], PeerFormat::Reth).is_err(),
                "cut at {cut}"
            );
        }
        let whole = parse(&file, PeerFormat::Reth).unwrap();
        let read: Vec<Peer> = whole.peers.into_iter().map(|(_, p)| p).collect();
        assert_eq!(read, nodes.into_iter().map(Peer::Node).collect::<Vec<_>>());
    }

    #[test]
    fn a_line_list_cut_in_its_last_line_is_refused() {
        let text = format!(
            "# boot nodes\n{}\n\n{}\n",
            record(1, 1).to_base64(),
            record(2, 1).to_base64()
        );
        let whole = parse(text.as_bytes(), PeerFormat::Enr).unwrap();
        assert_eq!(
            whole.peers.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            [Position::Line(2), Position::Line(4)]
        );
        let cut = &text.as_bytes()[..text.len() - 10];
        let why = parse(cut, PeerFormat::Enr).unwrap_err();
        assert!(why.contains("line 4") && why.contains("cut off"), "{why}");
    }
}

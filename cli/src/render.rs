//! How results are printed: the stable JSON objects and CSV rows of docs/CLI.md, and the
//! words for what an event changed.

use peerlog::inspect::{Change, FileReport, HistoryEntry, VerifyReport};
use std::net::IpAddr;

use peerlog::{Damage, Event, LogRecord, Node, NodeId, NodeRecord, PeerState};
use serde_json::{json, Map, Value};

#[cfg(test)]
use crate::time::iso8601_precise;
use crate::time::{iso8601, opt_time, TimeText};

/// A JSON object with its keys in the order given (serde_json's `Value` sorts them), as one
/// line. Each value is JSON text already; keys need no escaping (they are ours).
pub fn ordered_object<'a>(fields: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let mut object = String::with_capacity(512);
    object.push('{');
    for (i, (key, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            object.push(',');
        }
        object.push('"');
        object.push_str(key);
        object.push_str("\":");
        object.push_str(&value);
    }
    object.push('}');
    object
}

/// `text` as a JSON string. Most of an export's strings (ids, times, addresses, names) need
/// no escaping: those are quoted as they are, the others go through serde_json.
fn json_string(text: &str) -> String {
    if text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return Value::from(text).to_string();
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    quoted.push_str(text);
    quoted.push('"');
    quoted
}

/// `value` as JSON text.
fn json_text(value: impl Into<Value>) -> String {
    value.into().to_string()
}

/// The stable `dump --json` line, keys in the order of docs/CLI.md: the plain statement of
/// what [`PeerJson`] writes, through serde_json, which a test holds it to.
#[cfg(test)]
fn peer_json(peer: &PeerState) -> String {
    let node = peer.node.as_ref();
    let ips: Vec<String> = peer
        .ips
        .iter()
        .map(|l| {
            ordered_object([
                ("ip", json_text(l.ip.to_string())),
                ("last_ping", json_text(opt_time(l.last_ping))),
                ("last_pong", json_text(opt_time(l.last_pong))),
                ("fails", json_text(l.fails)),
            ])
        })
        .collect();
    ordered_object([
        ("id", json_text(peer.id.to_string())),
        ("enode", json_text(node.map(|n| n.to_string()))),
        ("ip", json_text(node.map(|n| n.ip.to_string()))),
        ("udp", json_text(node.map(|n| n.udp))),
        ("tcp", json_text(node.map(|n| n.tcp))),
        (
            "record_seq",
            json_text(peer.record.as_ref().map(|r| r.seq())),
        ),
        (
            "enr",
            json_text(peer.record.as_ref().map(|r| r.to_string())),
        ),
        ("last_ping", json_text(opt_time(peer.last_ping))),
        ("last_pong", json_text(opt_time(peer.last_pong))),
        ("fails", json_text(peer.fails)),
        ("ips", format!("[{}]", ips.join(","))),
        (
            "last_written",
            json_text(iso8601_precise(peer.last_written)),
        ),
    ])
}

/// Writes `dump --json` lines, each exactly [`peer_json`]'s text (what serde_json writes for
/// those values), into a buffer the caller reuses, with no allocation or formatter call for
/// the common fields. No string of the line needs escaping in JSON: ids are hex, addresses
/// and times digits and punctuation, `enode://` URLs both, `enr:` texts URL-safe base64, so
/// each is written between quotes as it is (serde_json escapes only `"`, `\` and control
/// characters).
#[derive(Default)]
pub struct PeerJson {
    /// The peer's own liveness, and that of each of its IPs: each field keeps the texts of
    /// its own recent dates.
    liveness: Liveness,
    ip_liveness: Liveness,
    written: TimeText,
}

/// Writes the liveness of a `dump` line, the peer's own or one IP's: the texts of the recent
/// dates of its last ping and last pong are kept apart, each field's for itself.
#[derive(Default)]
struct Liveness {
    ping: TimeText,
    pong: TimeText,
}

impl Liveness {
    /// The fields of a `dump --json` object: `,"last_ping":…,"last_pong":…,"fails":…`.
    fn push_json(
        &mut self,
        out: &mut Vec<u8>,
        last_ping: Option<std::time::SystemTime>,
        last_pong: Option<std::time::SystemTime>,
        fails: u32,
    ) {
        out.extend_from_slice(b",\"last_ping\":");
        push_json_time(out, &mut self.ping, last_ping);
        out.extend_from_slice(b",\"last_pong\":");
        push_json_time(out, &mut self.pong, last_pong);
        out.extend_from_slice(b",\"fails\":");
        out.extend_from_slice(itoa::Buffer::new().format(fails).as_bytes());
    }

    /// The fields of a text `dump` line: ` ping=… pong=… fails=…`, `-` for a time never set.
    fn push_text(
        &mut self,
        out: &mut Vec<u8>,
        last_ping: Option<std::time::SystemTime>,
        last_pong: Option<std::time::SystemTime>,
        fails: u32,
    ) {
        out.extend_from_slice(b" ping=");
        match last_ping {
            Some(t) => self.ping.push_whole(out, t),
            None => out.push(b'-'),
        }
        out.extend_from_slice(b" pong=");
        match last_pong {
            Some(t) => self.pong.push_whole(out, t),
            None => out.push(b'-'),
        }
        out.extend_from_slice(b" fails=");
        out.extend_from_slice(itoa::Buffer::new().format(fails).as_bytes());
    }
}

impl PeerJson {
    /// Appends `peer`'s line, without the newline.
    pub fn push(&mut self, out: &mut Vec<u8>, peer: &PeerState) {
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(b"{\"id\":\"");
        push_id(out, &peer.id);
        match &peer.node {
            Some(node) => {
                out.extend_from_slice(b"\",\"enode\":\"");
                push_enode(out, node);
                out.extend_from_slice(b"\",\"ip\":\"");
                push_ip(out, node.ip);
                out.extend_from_slice(b"\",\"udp\":");
                out.extend_from_slice(digits.format(node.udp).as_bytes());
                out.extend_from_slice(b",\"tcp\":");
                out.extend_from_slice(digits.format(node.tcp).as_bytes());
            }
            None => {
                out.extend_from_slice(b"\",\"enode\":null,\"ip\":null,\"udp\":null,\"tcp\":null")
            }
        }
        match &peer.record {
            Some(record) => {
                out.extend_from_slice(b",\"record_seq\":");
                out.extend_from_slice(digits.format(record.seq()).as_bytes());
                out.extend_from_slice(b",\"enr\":\"");
                push_enr(out, record);
                out.push(b'"');
            }
            None => out.extend_from_slice(b",\"record_seq\":null,\"enr\":null"),
        }
        self.liveness
            .push_json(out, peer.last_ping, peer.last_pong, peer.fails);
        out.extend_from_slice(b",\"ips\":[");
        for (i, l) in peer.ips.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"ip\":\"");
            push_ip(out, l.ip);
            out.push(b'"');
            self.ip_liveness
                .push_json(out, l.last_ping, l.last_pong, l.fails);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"last_written\":\"");
        self.written.push(out, peer.last_written);
        out.extend_from_slice(b"\"}");
    }
}

/// A time as [`opt_time`]'s JSON: the exact time in quotes, or `null`.
fn push_json_time(out: &mut Vec<u8>, text: &mut TimeText, t: Option<std::time::SystemTime>) {
    match t {
        Some(t) => {
            out.push(b'"');
            text.push(out, t);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
fn time_or_dash(t: Option<std::time::SystemTime>) -> String {
    t.map_or_else(|| "-".to_string(), iso8601)
}

/// The `dump` line of a peer: who (enode URL, with the signed record's seq), its liveness
/// without IP, then per IP, then the signed record's text. The plain statement of what
/// [`PeerLines`] writes, which a test holds it to.
#[cfg(test)]
fn peer_line(peer: &PeerState) -> String {
    let mut line = match (&peer.node, &peer.record) {
        (Some(node), None) => node.to_string(),
        (Some(node), Some(record)) => format!("{node} seq={}", record.seq()),
        (None, Some(record)) => format!(
            "id:{} seq={} (signed record without IP)",
            peer.id,
            record.seq()
        ),
        (None, None) => format!("id:{} (no record)", peer.id),
    };
    line.push_str(&format!(
        " ping={} pong={} fails={}",
        time_or_dash(peer.last_ping),
        time_or_dash(peer.last_pong),
        peer.fails
    ));
    let mut ips: Vec<_> = peer.ips.iter().collect();
    ips.sort_by_key(|l| l.ip);
    for l in ips {
        line.push_str(&format!(
            " [{} ping={} pong={} fails={}]",
            l.ip,
            time_or_dash(l.last_ping),
            time_or_dash(l.last_pong),
            l.fails
        ));
    }
    if let Some(record) = &peer.record {
        line.push_str(&format!(" {record}"));
    }
    line
}

/// Writes `dump` lines, each exactly [`peer_line`]'s text, into a buffer the caller reuses,
/// without a formatter call or an allocation for the common fields (as [`ExportRows`] does
/// for export): a dump writes a line per node of the database.
#[derive(Default)]
pub struct PeerLines {
    liveness: Liveness,
    ip_liveness: Liveness,
    ips: Vec<(IpAddr, usize)>,
}

impl PeerLines {
    /// Appends `peer`'s line, without the newline.
    pub fn push(&mut self, out: &mut Vec<u8>, peer: &PeerState) {
        let mut digits = itoa::Buffer::new();
        match (&peer.node, &peer.record) {
            (Some(node), record) => {
                push_enode(out, node);
                if let Some(record) = record {
                    out.extend_from_slice(b" seq=");
                    out.extend_from_slice(digits.format(record.seq()).as_bytes());
                }
            }
            (None, record) => {
                out.extend_from_slice(b"id:");
                push_id(out, &peer.id);
                match record {
                    Some(record) => {
                        out.extend_from_slice(b" seq=");
                        out.extend_from_slice(digits.format(record.seq()).as_bytes());
                        out.extend_from_slice(b" (signed record without IP)");
                    }
                    None => out.extend_from_slice(b" (no record)"),
                }
            }
        }
        self.liveness
            .push_text(out, peer.last_ping, peer.last_pong, peer.fails);
        self.ips.clear();
        self.ips
            .extend(peer.ips.iter().enumerate().map(|(i, l)| (l.ip, i)));
        self.ips.sort_unstable();
        for &(ip, i) in &self.ips {
            let l = &peer.ips[i];
            out.extend_from_slice(b" [");
            push_ip(out, ip);
            self.ip_liveness
                .push_text(out, l.last_ping, l.last_pong, l.fails);
            out.push(b']');
        }
        if let Some(record) = &peer.record {
            out.push(b' ');
            push_enr(out, record);
        }
    }
}

/// `node` as its `Display` text: `enode://<id>@<ip>:<tcp>`, `?discport=<udp>` when the ports
/// differ, an IPv6 address in brackets.
fn push_enode(out: &mut Vec<u8>, node: &Node) {
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(b"enode://");
    push_id(out, &node.id);
    out.push(b'@');
    match node.ip {
        IpAddr::V4(_) => push_ip(out, node.ip),
        IpAddr::V6(_) => {
            out.push(b'[');
            push_ip(out, node.ip);
            out.push(b']');
        }
    }
    out.push(b':');
    out.extend_from_slice(digits.format(node.tcp).as_bytes());
    if node.udp != node.tcp {
        out.extend_from_slice(b"?discport=");
        out.extend_from_slice(digits.format(node.udp).as_bytes());
    }
}

/// A finding in words, as `verify` prints it: the place (its state is the line's label),
/// and when the log recorded it.
pub fn finding_text(finding: &Damage) -> String {
    match finding.state.recorded_at() {
        Some(at) => format!("{finding:#}; recorded in the log at {}", iso8601(at)),
        None => format!("{finding:#}"),
    }
}

/// The JSON object of a damaged place: the fields every such object has (`kind`, `file`,
/// `offset`, `len`, `lost_first_seq`, `lost_last_seq`), then `more`.
fn damage_json(damage: &Damage, more: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let fields = [
        ("kind", json!(damage.kind.name())),
        ("file", json!(damage.path.display().to_string())),
        ("offset", json!(damage.offset)),
        ("len", json!(damage.len)),
        ("lost_first_seq", json!(damage.lost.map(|l| l.0))),
        ("lost_last_seq", json!(damage.lost.map(|l| l.1))),
    ];
    let map: Map<String, Value> = fields
        .into_iter()
        .chain(more)
        .map(|(key, value)| (key.to_string(), value))
        .collect();
    Value::Object(map)
}

/// The stable JSON object of a loss the log records (its `file` is the segment's file name).
pub fn loss_json(loss: &Damage) -> Value {
    damage_json(loss, [("acknowledged", json!(loss.is_acknowledged()))])
}

/// The stable JSON object of a problem a compaction found.
pub fn problem_json(problem: &Damage) -> Value {
    damage_json(problem, [("detail", json!(format!("{problem:#}")))])
}

/// The stable JSON object of a finding.
pub fn finding_json(finding: &Damage) -> Value {
    let detail = finding.reason.as_deref().unwrap_or(finding.kind.describe());
    damage_json(
        finding,
        [
            ("detail", json!(detail)),
            ("acknowledged", json!(finding.is_acknowledged())),
            ("recorded_at", json!(opt_time(finding.state.recorded_at()))),
        ],
    )
}

/// The stable JSON object of a file report.
pub fn file_json(file: &FileReport) -> Value {
    json!({
        "file": file.path.display().to_string(),
        "role": file.role.name(),
        "size": file.size,
        "records": file.records,
        "first_seq": file.seq_range.map(|r| r.0),
        "last_seq": file.seq_range.map(|r| r.1),
    })
}

/// The stable `verify --json` object.
pub fn verify_json(report: &VerifyReport, strict: bool, accepted: &[Damage]) -> Value {
    json!({
        "intact": report.is_intact(strict),
        "accepted": accepted.iter().map(loss_json).collect::<Vec<_>>(),
        "strict": strict,
        "records": report.records,
        "evicted": report.evicted,
        "ips_evicted": report.ips_evicted,
        "files": report.files.iter().map(file_json).collect::<Vec<_>>(),
        "findings": report.findings.iter().map(finding_json).collect::<Vec<_>>(),
        "ignored": report.ignored.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    })
}

/// The stable `stats --json` object.
pub fn stats_json(s: &peerlog::inspect::Stats) -> Value {
    let events: Map<String, Value> = s
        .events_by_kind
        .iter()
        .map(|(k, v)| (k.name().to_string(), json!(v)))
        .collect();
    json!({
        "nodes": s.nodes,
        "ipv6_nodes": s.ipv6_nodes,
        "ids": s.ids,
        "records": s.records,
        "events": events,
        "record_bytes": s.record_bytes,
        "live_bytes": s.live_bytes,
        "dead_bytes": s.dead_bytes,
        "segments": s.segments,
        "segment_file_bytes": s.segment_file_bytes,
        "archived_segments": s.archived_segments,
        "archived_bytes": s.archived_bytes,
        "first_write": opt_time(s.span.map(|s| s.0)),
        "last_write": opt_time(s.span.map(|s| s.1)),
        "seeds": s.seeds,
        "seed_age_secs": s.seed_age.as_secs(),
        "problems": s.problems,
        "losses": s.losses.iter().map(loss_json).collect::<Vec<_>>(),
    })
}

/// Column names of the CSV export, in order; also the keys of the JSON lines, in the same
/// order. `event_time` was called `at` before, a reserved word in DuckDB's SQL.
pub const EXPORT_COLUMNS: [&str; 12] = [
    "seq",
    "written_at",
    "kind",
    "id",
    "ip",
    "udp",
    "tcp",
    "event_time",
    "fails",
    "record_seq",
    "enr",
    "detail",
];

/// How an exported event's row is laid out: a CSV line, or a JSON object whose keys are
/// [`EXPORT_COLUMNS`] (`null` where the kind has no such field, numbers as numbers).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RowStyle {
    Csv,
    Json,
}

/// What comes before each value of [`EXPORT_COLUMNS`] in a JSON row: its key, after a comma
/// but for the first.
const JSON_KEYS: [&str; 12] = [
    "\"seq\":",
    ",\"written_at\":",
    ",\"kind\":",
    ",\"id\":",
    ",\"ip\":",
    ",\"udp\":",
    ",\"tcp\":",
    ",\"event_time\":",
    ",\"fails\":",
    ",\"record_seq\":",
    ",\"enr\":",
    ",\"detail\":",
];

/// A JSON row's column with no value: its key (as in [`JSON_KEYS`]) and `null`.
const JSON_NULLS: [&str; 12] = [
    "\"seq\":null",
    ",\"written_at\":null",
    ",\"kind\":null",
    ",\"id\":null",
    ",\"ip\":null",
    ",\"udp\":null",
    ",\"tcp\":null",
    ",\"event_time\":null",
    ",\"fails\":null",
    ",\"record_seq\":null",
    ",\"enr\":null",
    ",\"detail\":null",
];

/// Appends the fields of one exported event to a buffer, in the order of [`EXPORT_COLUMNS`]:
/// an export writes millions of rows, each into the same buffer, with no allocation or
/// formatter call for the common fields.
struct Row<'a> {
    out: &'a mut Vec<u8>,
    style: RowStyle,
    column: usize,
    times: &'a mut ExportTimes,
}

/// The texts of the last times an export wrote, per time column.
#[derive(Default)]
struct ExportTimes {
    written_at: TimeText,
    event_time: TimeText,
}

impl Row<'_> {
    /// The separator and, for JSON, the key of the next column.
    fn next(&mut self) {
        match self.style {
            RowStyle::Json => self
                .out
                .extend_from_slice(JSON_KEYS[self.column].as_bytes()),
            RowStyle::Csv if self.column > 0 => self.out.push(b','),
            RowStyle::Csv => {}
        }
        self.column += 1;
    }

    /// A column the kind has no value for.
    fn empty(&mut self) {
        match self.style {
            RowStyle::Json => self
                .out
                .extend_from_slice(JSON_NULLS[self.column].as_bytes()),
            RowStyle::Csv if self.column > 0 => self.out.push(b','),
            RowStyle::Csv => {}
        }
        self.column += 1;
    }

    fn number(&mut self, n: impl itoa::Integer) {
        self.next();
        self.out
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// A text that needs no JSON escaping, written by `write`.
    fn text(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.next();
        let json = self.style == RowStyle::Json;
        if json {
            self.out.push(b'"');
        }
        write(self.out);
        if json {
            self.out.push(b'"');
        }
    }

    /// Any text, escaped for JSON where it needs it.
    fn escaped(&mut self, text: &str) {
        self.next();
        match self.style {
            RowStyle::Csv => self.out.extend_from_slice(text.as_bytes()),
            RowStyle::Json => self.out.extend_from_slice(json_string(text).as_bytes()),
        }
    }

    fn opt_number(&mut self, n: Option<impl itoa::Integer>) {
        match n {
            Some(n) => self.number(n),
            None => self.empty(),
        }
    }

    fn written_at(&mut self, t: std::time::SystemTime) {
        self.quote_after(|row| row.times.written_at.push(row.out, t));
    }

    fn event_time(&mut self, t: Option<std::time::SystemTime>) {
        match t {
            Some(t) => self.quote_after(|row| row.times.event_time.push(row.out, t)),
            None => self.empty(),
        }
    }

    /// A text that needs no JSON escaping, written by `write`, which can use the row.
    fn quote_after(&mut self, write: impl FnOnce(&mut Self)) {
        self.next();
        let json = self.style == RowStyle::Json;
        if json {
            self.out.push(b'"');
        }
        write(self);
        if json {
            self.out.push(b'"');
        }
    }

    fn ip(&mut self, ip: Option<IpAddr>) {
        match ip {
            Some(ip) => self.text(|out| push_ip(out, ip)),
            None => self.empty(),
        }
    }
}

/// `ip` as its `Display` text, written by hand: an IPv6 address in lowercase hex groups
/// without leading zeros, its longest run of two or more zero groups (the first of equal
/// runs) as `::`, an IPv4-mapped one as `::ffff:` and the IPv4 address.
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = [0u8; 16];
            let mut len = 0;
            for octet in v4.octets() {
                let (digits, n) = OCTETS[usize::from(octet)];
                text[len..len + 4].copy_from_slice(&digits);
                len += usize::from(n);
            }
            // Each octet's text was written with a dot after it: the last one goes.
            out.extend_from_slice(&text[..len - 1]);
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                out.extend_from_slice(b"::ffff:");
                return push_ip(out, IpAddr::V4(v4));
            }
            let groups = v6.segments();
            let (mut zeros, mut run) = ((0, 0), (0, 0)); // (start, len)
            for (i, &group) in groups.iter().enumerate() {
                if group != 0 {
                    run = (i + 1, 0);
                    continue;
                }
                run.1 += 1;
                if run.1 > zeros.1 {
                    zeros = run;
                }
            }
            let push_groups = |out: &mut Vec<u8>, groups: &[u16]| {
                for (i, &group) in groups.iter().enumerate() {
                    if i > 0 {
                        out.push(b':');
                    }
                    push_hex_group(out, group);
                }
            };
            if zeros.1 > 1 {
                push_groups(out, &groups[..zeros.0]);
                out.extend_from_slice(b"::");
                push_groups(out, &groups[zeros.0 + zeros.1..]);
            } else {
                push_groups(out, &groups);
            }
        }
    }
}

/// Every byte in decimal followed by a dot, and the length of that.
static OCTETS: [([u8; 4], u8); 256] = {
    let mut octets = [([0; 4], 0); 256];
    let mut n = 0;
    while n < 256 {
        let digits = [(n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8];
        octets[n] = match n {
            0..=9 => ([b'0' + digits[2], b'.', 0, 0], 2),
            10..=99 => ([b'0' + digits[1], b'0' + digits[2], b'.', 0], 3),
            _ => (
                [b'0' + digits[0], b'0' + digits[1], b'0' + digits[2], b'.'],
                4,
            ),
        };
        n += 1;
    }
    octets
};

/// `group` in lowercase hex without leading zeros (`0` for zero).
fn push_hex_group(out: &mut Vec<u8>, group: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = [12, 8, 4, 0].map(|shift| HEX[usize::from(group >> shift & 15)]);
    let skip = (group.leading_zeros() / 4).min(3) as usize;
    out.extend_from_slice(&digits[skip..]);
}

/// Every byte's two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [HEX[byte >> 4], HEX[byte & 15]];
        byte += 1;
    }
    pairs
};

/// `id` as its `Display` text: 128 lowercase hex digits.
fn push_id(out: &mut Vec<u8>, id: &NodeId) {
    let mut text = [0u8; 2 * std::mem::size_of::<NodeId>()];
    for (pair, &byte) in text.chunks_exact_mut(2).zip(&id.0) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
    out.extend_from_slice(&text);
}

/// Writes exported events as rows in one style, into a buffer the caller reuses.
pub struct ExportRows {
    style: RowStyle,
    times: ExportTimes,
}

impl ExportRows {
    pub fn new(style: RowStyle) -> ExportRows {
        ExportRows {
            style,
            times: ExportTimes::default(),
        }
    }

    /// Appends one exported event to `out` as a row, with no newline. No CSV field can hold
    /// a comma or quote (an `enr:` text is URL-safe base64, a loss's text has its commas
    /// replaced).
    pub fn push(&mut self, out: &mut Vec<u8>, record: &LogRecord) {
        let style = self.style;
        if style == RowStyle::Json {
            out.push(b'{');
        }
        let mut row = Row {
            out,
            style,
            column: 0,
            times: &mut self.times,
        };
        push_export_fields(&mut row, record);
        if style == RowStyle::Json {
            out.push(b'}');
        }
    }
}

/// The columns of [`EXPORT_COLUMNS`] of one event, in that order.
fn push_export_fields(row: &mut Row<'_>, record: &LogRecord) {
    let (mut ip, mut udp, mut tcp, mut at, mut fails) = (None, None, None, None, None);
    let (mut record_seq, mut signed, mut detail) = (None, None, None);
    match &record.event {
        Event::NodeUpdated(node) => {
            (ip, udp, tcp) = (Some(node.ip), Some(node.udp), Some(node.tcp))
        }
        Event::Record(record) => {
            if let Some(node) = record.node() {
                (ip, udp, tcp) = (Some(node.ip), Some(node.udp), Some(node.tcp));
            }
            record_seq = Some(record.seq());
            signed = Some(record);
        }
        Event::Ping { at: t, .. } | Event::Pong { at: t, .. } => at = Some(*t),
        Event::FindFails { fails: n, .. } => fails = Some(*n),
        Event::PingFrom { ip: a, at: t, .. } | Event::PongFrom { ip: a, at: t, .. } => {
            (ip, at) = (Some(*a), Some(*t))
        }
        Event::FindFailsAt {
            ip: a, fails: n, ..
        } => (ip, fails) = (Some(*a), Some(*n)),
        Event::IpExpired { ip: a, .. } | Event::IpEvicted { ip: a, .. } => ip = Some(*a),
        Event::Evicted { subnet, .. } => {
            detail = Some(match subnet {
                Some(subnet) => format!("store full; subnet {subnet}"),
                None => "store full; no endpoint".into(),
            })
        }
        Event::LocalSeq { seq } => record_seq = Some(*seq),
        // A text without commas: the CSV fields are not quoted.
        Event::Loss(loss) => detail = Some(loss.to_string().replace(',', ";")),
        _ => {}
    }
    row.number(record.seq);
    row.written_at(record.written_at);
    row.text(|out| out.extend_from_slice(record.event.kind().name().as_bytes()));
    match record.event.id() {
        Some(id) => row.text(|out| push_id(out, id)),
        None => row.empty(),
    }
    row.ip(ip);
    row.opt_number(udp);
    row.opt_number(tcp);
    row.event_time(at);
    row.opt_number(fails);
    row.opt_number(record_seq);
    match signed {
        Some(signed) => row.text(|out| push_enr(out, signed)),
        None => row.empty(),
    }
    match detail {
        Some(detail) => row.escaped(&detail),
        None => row.empty(),
    }
}

/// A signed record's text form (EIP-778), as its `Display`: `enr:` and its RLP in URL-safe
/// base64 without padding.
fn push_enr(out: &mut Vec<u8>, record: &NodeRecord) {
    out.extend_from_slice(b"enr:");
    push_base64(out, record.rlp());
}

/// The URL-safe base64 alphabet.
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The two base64 characters of every 12 bits: a group of 3 bytes is 2 lookups.
static BASE64_PAIRS: [[u8; 2]; 4096] = {
    let mut pairs = [[0; 2]; 4096];
    let mut bits = 0;
    while bits < 4096 {
        pairs[bits] = [BASE64[bits >> 6], BASE64[bits & 63]];
        bits += 1;
    }
    pairs
};

/// `bytes` in URL-safe base64 without padding, as the base64 crate's `URL_SAFE_NO_PAD`
/// writes it.
fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let from = out.len();
    out.resize(from + (bytes.len() * 4).div_ceil(3), 0);
    let text = &mut out[from..];
    let groups = bytes.chunks_exact(3);
    let rest = groups.remainder();
    let mut chars = text.chunks_exact_mut(4);
    for (group, to) in groups.zip(&mut chars) {
        let n = usize::from(group[0]) << 16 | usize::from(group[1]) << 8 | usize::from(group[2]);
        to[..2].copy_from_slice(&BASE64_PAIRS[n >> 12]);
        to[2..].copy_from_slice(&BASE64_PAIRS[n & 0xfff]);
    }
    let to = chars.into_remainder();
    match *rest {
        [a] => {
            to.copy_from_slice(&BASE64_PAIRS[usize::from(a) << 4]);
        }
        [a, b] => {
            let n = usize::from(a) << 10 | usize::from(b) << 2;
            to[..2].copy_from_slice(&BASE64_PAIRS[n >> 6]);
            to[2] = BASE64[n & 63];
        }
        _ => {}
    }
}

/// One exported event as a JSON line: every column of [`EXPORT_COLUMNS`], in that order.
pub fn export_json(record: &LogRecord) -> String {
    let mut out = Vec::with_capacity(512);
    ExportRows::new(RowStyle::Json).push(&mut out, record);
    String::from_utf8(out).expect("the row is UTF-8")
}

/// The stable `history --json` line: the export columns, then where and what.
pub fn history_json(entry: &HistoryEntry) -> String {
    let mut line = export_json(&entry.record);
    line.pop(); // its closing brace
    let extra = [
        ("change", json_text(change_text(&entry.change))),
        ("file", json_text(entry.file.display().to_string())),
        ("offset", json_text(entry.offset)),
        ("archived", json_text(entry.archived)),
        ("compacted", json_text(entry.compacted)),
    ];
    for (key, value) in extra {
        line.push_str(",\"");
        line.push_str(key);
        line.push_str("\":");
        line.push_str(&value);
    }
    line.push('}');
    line
}

/// An endpoint in words: `10.0.0.1 udp 30303 tcp 30303`.
pub fn endpoint_text(node: &Node) -> String {
    format!("{} udp {} tcp {}", node.ip, node.udp, node.tcp)
}

/// What an event changed, in words: `record created: 10.0.0.1 udp 30303 tcp 30303`, ...
pub fn change_text(change: &Change) -> String {
    match change {
        Change::RecordCreated(node) => format!("record created: {}", endpoint_text(node)),
        Change::RecordRewritten(node) => format!("record rewritten: {}", endpoint_text(node)),
        Change::EndpointChanged { from, to } => {
            format!("endpoint {} -> {}", endpoint_text(from), endpoint_text(to))
        }
        Change::PingSent(at) => format!("ping sent at {}", iso8601(*at)),
        Change::PongReceived(at) => format!("pong received at {}", iso8601(*at)),
        Change::FindFails { from, to } => format!("findnode fails {from} -> {to}"),
        Change::Deleted => "deleted: record, ping, pong and fails dropped".into(),
        Change::Expired => "expired: record, ping, pong and fails dropped".into(),
        Change::SignedRecord {
            from_seq,
            to_seq,
            from,
            to,
        } => {
            let place =
                |node: &Option<Node>| node.as_ref().map_or("no IP".to_string(), endpoint_text);
            match from_seq {
                None => format!("signed record created: seq {to_seq}, {}", place(to)),
                Some(from_seq) if from == to => {
                    format!(
                        "record seq {from_seq} -> {to_seq}, endpoint unchanged: {}",
                        place(to)
                    )
                }
                Some(from_seq) => format!(
                    "record seq {from_seq} -> {to_seq}, endpoint {} -> {}",
                    place(from),
                    place(to)
                ),
            }
        }
        Change::PingSentTo(ip, at) => format!("ping sent to {ip} at {}", iso8601(*at)),
        Change::PongReceivedFrom(ip, at) => {
            format!("pong received from {ip} at {}", iso8601(*at))
        }
        Change::FindFailsAt { ip, from, to } => format!("findnode fails at {ip} {from} -> {to}"),
        Change::IpExpired(ip) => format!("expired at {ip}: its ping, pong and fails dropped"),
        Change::Evicted(Some(subnet)) => format!(
            "evicted: the store was full (subnet {subnet}); record, ping, pong and fails dropped"
        ),
        Change::Evicted(None) => {
            "evicted: the store was full (no endpoint); ping, pong and fails dropped".into()
        }
        Change::IpEvicted(ip) => format!(
            "evicted at {ip}: the node held the most IPs and this was the stalest; its ping, pong and fails dropped"
        ),
        Change::Loss(loss) => format!("DAMAGE: {loss}; events about the node may be missing"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with every shape of peer: IPv4, IPv6, different ports, a signed record
    /// with and without IP, only liveness, per-IP slots, times before 1970, with and without
    /// nanoseconds, and in one second.
    fn every_peer_shape() -> Vec<PeerState> {
        use std::time::{Duration, UNIX_EPOCH};

        use peerlog::enr::{CombinedKey, Enr};
        use peerlog::NodeDb;

        let db = NodeDb::in_memory(NodeId([0xee; 64]));
        let key = |n: u8| CombinedKey::secp256k1_from_bytes(&mut [n; 32]).unwrap();
        let at = |secs: i64, nanos: u32| match secs >= 0 {
            true => UNIX_EPOCH + Duration::new(secs as u64, nanos),
            false => UNIX_EPOCH - Duration::new(secs.unsigned_abs(), 0) + Duration::new(0, nanos),
        };
        let id = |n: u8| NodeId([n; 64]);
        let v4: Node = format!("enode://{}@203.0.113.7:30303", "01".repeat(64))
            .parse()
            .unwrap();
        let v6: Node = format!(
            "enode://{}@[2001:db8::7]:30303?discport=30301",
            "02".repeat(64)
        )
        .parse()
        .unwrap();
        db.update_node(&v4).unwrap();
        db.update_node(&v6).unwrap();
        db.update_last_ping(&v4.id, at(1_700_000_000, 0)).unwrap();
        db.update_last_pong(&v4.id, at(1_700_000_000, 5)).unwrap();
        db.update_find_fails(&v4.id, 3).unwrap();
        db.update_last_ping(&v6.id, at(-86_401, 999_999_999))
            .unwrap();
        let signed = Enr::builder()
            .ip4("198.51.100.1".parse().unwrap())
            .udp4(9000)
            .tcp4(9001)
            .seq(7)
            .build(&key(3))
            .unwrap();
        db.update_record(&signed).unwrap();
        let signed_id = NodeId::from_enr(&signed).unwrap();
        for (ip, secs) in [("198.51.100.9", 5), ("10.0.0.1", 6), ("2001:db8::1", 7)] {
            db.update_last_pong_from(&signed_id, ip.parse().unwrap(), at(secs, 0))
                .unwrap();
        }
        db.update_find_fails_at(&signed_id, "10.0.0.1".parse().unwrap(), 2)
            .unwrap();
        let no_ip = Enr::builder().udp4(9000).seq(2).build(&key(4)).unwrap();
        db.update_record(&no_ip).unwrap();
        let v6_signed = Enr::builder()
            .ip6("2001:db8::9".parse().unwrap())
            .udp6(30305)
            .seq(u64::MAX)
            .build(&key(5))
            .unwrap();
        db.update_record(&v6_signed).unwrap();
        db.update_last_ping(&id(9), at(0, 1)).unwrap(); // only liveness
        db.update_last_ping_from(&id(9), "::ffff:10.0.0.3".parse().unwrap(), at(0, 0))
            .unwrap();
        let peers = db.peers();
        assert_eq!(peers.len(), 6);
        peers
    }

    /// `PeerLines` writes exactly `peer_line`'s text, for every shape of peer (per-IP slots
    /// in IP order).
    #[test]
    fn peer_lines_are_peer_line_byte_for_byte() {
        let mut lines = PeerLines::default();
        for peer in &every_peer_shape() {
            let mut out = Vec::new();
            lines.push(&mut out, peer);
            assert_eq!(String::from_utf8(out).unwrap(), peer_line(peer));
        }
    }

    /// `PeerJson` writes exactly what serde_json writes for the values of `peer_json`, for
    /// every shape of peer, twice over (the second time after other peers' times).
    #[test]
    fn peer_json_lines_are_serde_json_byte_for_byte() {
        let mut objects = PeerJson::default();
        let peers = every_peer_shape();
        for peer in peers.iter().chain(&peers) {
            let mut out = Vec::new();
            objects.push(&mut out, peer);
            assert_eq!(String::from_utf8(out).unwrap(), peer_json(peer));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// `PeerJson` and `PeerLines` against their plain statements over arbitrary
        /// endpoints, ports, times (any the log can store, before 1970 too), counts, IPs and
        /// signed records (seq, IPv4 or IPv6, ports).
        #[test]
        fn peer_lines_and_json_match_their_statements_on_arbitrary_peers(
            peers in proptest::collection::vec(arbitrary_peer(), 1..6),
        ) {
            use peerlog::NodeDb;

            let db = NodeDb::in_memory(NodeId([0xee; 64]));
            for peer in &peers {
                peer.apply(&db);
            }
            let (mut objects, mut lines) = (PeerJson::default(), PeerLines::default());
            for peer in db.peers() {
                let mut out = Vec::new();
                objects.push(&mut out, &peer);
                proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), peer_json(&peer));
                let mut out = Vec::new();
                lines.push(&mut out, &peer);
                proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), peer_line(&peer));
            }
        }
    }

    proptest::proptest! {
        /// `push_ip` and `push_id` write the `Display` texts.
        #[test]
        fn ips_and_ids_are_written_as_displayed(
            ip in arbitrary_ip(),
            id in proptest::array::uniform32(proptest::prelude::any::<u8>()),
        ) {
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
            let id = NodeId([id, id.map(|b| !b)].concat().try_into().unwrap());
            let mut out = Vec::new();
            push_id(&mut out, &id);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), id.to_string());
        }
    }

    proptest::proptest! {
        /// `push_base64` writes what the base64 crate writes.
        #[test]
        fn base64_is_the_crates(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            use base64::Engine;
            let mut out = b"x".to_vec();
            push_base64(&mut out, &bytes);
            let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
            proptest::prop_assert_eq!(&out[1..], expected.as_bytes());
        }
    }

    #[test]
    fn ipv6_addresses_are_written_as_displayed() {
        for text in [
            "::",
            "::1",
            "1::",
            "1:0:1:0:1:0:1:0",
            "1:0:0:1:0:0:1:1",
            "0:0:1:0:0:1:0:0",
            "1:0:0:1::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "64:ff9b::10.0.0.1",
            "2001:db8::7",
            "fe80::1:0:0:0",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string(), "{text}");
        }
    }

    /// What one arbitrary peer is given.
    #[derive(Debug)]
    struct ArbitraryPeer {
        id: [u8; 32],
        endpoint: Option<(IpAddr, u16, u16)>,
        signed: Option<(u8, u64, Option<IpAddr>, u16, u16)>,
        ping: Option<i64>,
        pong: Option<i64>,
        fails: u32,
        per_ip: Vec<(IpAddr, Option<i64>, Option<i64>, u32)>,
    }

    fn arbitrary_ip() -> impl proptest::strategy::Strategy<Value = IpAddr> {
        use proptest::prelude::*;
        prop_oneof![
            any::<u32>().prop_map(|n| IpAddr::from(std::net::Ipv4Addr::from(n))),
            any::<u128>().prop_map(|n| IpAddr::from(std::net::Ipv6Addr::from(n))),
            // Runs of zeros, IPv4-mapped and the like.
            (any::<u16>(), 0..8usize, any::<u32>()).prop_map(|(word, at, v4)| {
                let mut words = [0u16; 8];
                words[at] = word;
                match at {
                    5 => IpAddr::from(std::net::Ipv4Addr::from(v4).to_ipv6_mapped()),
                    _ => IpAddr::from(std::net::Ipv6Addr::from(words)),
                }
            }),
        ]
    }

    fn arbitrary_time() -> impl proptest::strategy::Strategy<Value = i64> {
        use proptest::prelude::*;
        prop_oneof![
            any::<i64>(),
            (-3_000_000_000i64..5_000_000_000, 0..3u8).prop_map(|(secs, nanos)| secs
                * 1_000_000_000
                + [0, 1, 999_999_999][nanos as usize]),
        ]
    }

    fn arbitrary_peer() -> impl proptest::strategy::Strategy<Value = ArbitraryPeer> {
        use proptest::prelude::*;
        let endpoint = proptest::option::of((arbitrary_ip(), any::<u16>(), any::<u16>()));
        let signed = proptest::option::of((
            1..4u8,
            any::<u64>(),
            proptest::option::of(arbitrary_ip()),
            any::<u16>(),
            any::<u16>(),
        ));
        let times = (
            proptest::option::of(arbitrary_time()),
            proptest::option::of(arbitrary_time()),
        );
        let per_ip = proptest::collection::vec(
            (
                arbitrary_ip(),
                proptest::option::of(arbitrary_time()),
                proptest::option::of(arbitrary_time()),
                any::<u32>(),
            ),
            0..4,
        );
        (
            any::<[u8; 32]>(),
            endpoint,
            signed,
            times,
            any::<u32>(),
            per_ip,
        )
            .prop_map(|(id, endpoint, signed, (ping, pong), fails, per_ip)| {
                ArbitraryPeer {
                    id,
                    endpoint,
                    signed,
                    ping,
                    pong,
                    fails,
                    per_ip,
                }
            })
    }

    impl ArbitraryPeer {
        /// Gives the database what it holds; what the database refuses (a time it cannot
        /// store, say) is left out.
        fn apply(&self, db: &peerlog::NodeDb) {
            use std::time::{Duration, SystemTime, UNIX_EPOCH};

            use peerlog::enr::{CombinedKey, Enr};

            let at = |nanos: i64| -> SystemTime {
                let d = Duration::from_nanos(nanos.unsigned_abs());
                if nanos >= 0 {
                    UNIX_EPOCH + d
                } else {
                    UNIX_EPOCH - d
                }
            };
            let mut id = NodeId([0; 64]);
            id.0[..32].copy_from_slice(&self.id);
            id.0[32..].copy_from_slice(&self.id);
            if let Some((key, seq, ip, udp, tcp)) = self.signed {
                let key = CombinedKey::secp256k1_from_bytes(&mut [key; 32]).unwrap();
                let mut builder = Enr::builder();
                builder.seq(seq);
                match ip {
                    Some(IpAddr::V4(ip)) => {
                        builder.ip4(ip).udp4(udp).tcp4(tcp);
                    }
                    Some(IpAddr::V6(ip)) => {
                        builder.ip6(ip).udp6(udp).tcp6(tcp);
                    }
                    None => {
                        builder.udp4(udp);
                    }
                }
                let record = builder.build(&key).unwrap();
                let _ = db.update_record(&record);
                id = NodeId::from_enr(&record).unwrap();
            } else if let Some((ip, udp, tcp)) = self.endpoint {
                let _ = db.update_node(&Node::new(id, ip, udp, tcp));
            }
            if let Some(t) = self.ping {
                let _ = db.update_last_ping(&id, at(t));
            }
            if let Some(t) = self.pong {
                let _ = db.update_last_pong(&id, at(t));
            }
            let _ = db.update_find_fails(&id, self.fails);
            for &(ip, ping, pong, fails) in &self.per_ip {
                if let Some(t) = ping {
                    let _ = db.update_last_ping_from(&id, ip, at(t));
                }
                if let Some(t) = pong {
                    let _ = db.update_last_pong_from(&id, ip, at(t));
                }
                let _ = db.update_find_fails_at(&id, ip, fails);
            }
        }
    }

    #[test]
    fn json_strings_are_quoted_and_escaped_where_needed() {
        for text in [
            "",
            "abc",
            "2024-05-01T12:30:45Z",
            "a\"b",
            "back\\slash",
            "tab\there",
        ] {
            let parsed: Value = serde_json::from_str(&json_string(text)).unwrap();
            assert_eq!(parsed, Value::from(text), "{text:?}");
        }
        let object = ordered_object([("b", "1".to_string()), ("a", json_string("x"))]);
        assert_eq!(object, r#"{"b":1,"a":"x"}"#);
    }
}

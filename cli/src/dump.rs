//! `peerlog dump`: the current state, one node a line, as text or JSON.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use peerlog::inspect;
use peerlog::PeerState;

use crate::args::{DumpArgs, RecordKind};
use crate::error::Failure;
use crate::progress::{Meter, Span, LINES_PER_REPORT};
use crate::render;

/// Bytes of lines handed to the output at a time.
const DUMP_CHUNK: usize = 64 << 10;

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

/// Runs `peerlog dump`.
pub fn run(args: DumpArgs, out: &mut impl Write) -> Result<(), Failure> {
    let filter = DumpFilter {
        all: args.all,
        since: args.since,
        kinds: args.kind.into_iter().collect(),
    };
    print(&args.dir, args.json, &filter, out)
}

fn print(dir: &Path, json: bool, filter: &DumpFilter, out: &mut impl Write) -> Result<(), Failure> {
    // Shares of the time (measured at 100 k nodes): reading is most of a text dump, under
    // half of a JSON one. Each peer's state is made as it is printed.
    let read_share = if json { 45 } else { 75 };
    let meter = Meter::bar("reading");
    let reading = meter.step("reading", Span::percent(0, read_share));
    inspect::with_peers(dir, &reading, |peers| -> Result<(), Failure> {
        let printing = meter.output_step("printing", Span::percent(read_share, 100));
        let total = peers.len() as u64;
        // Lines go into one buffer, reused, handed to `out` some 64 KiB at a time (as
        // `export` does): memory stays constant, and formatting, not the disk, bounds a dump.
        let mut lines = Vec::with_capacity(DUMP_CHUNK + 4096);
        let mut text = render::PeerLines::default();
        let mut objects = render::PeerJson::default();
        for (i, peer) in peers.enumerate() {
            if i % LINES_PER_REPORT == 0 {
                printing(i as u64, total);
            }
            if !filter.keeps(&peer) {
                continue;
            }
            if json {
                objects.push(&mut lines, &peer);
            } else {
                text.push(&mut lines, &peer);
            }
            lines.push(b'\n');
            if lines.len() >= DUMP_CHUNK {
                out.write_all(&lines)?;
                lines.clear();
            }
        }
        out.write_all(&lines)?;
        printing(total, total);
        Ok(())
    })?
}

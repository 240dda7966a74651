//! `peerlog dump`: the current state, one node a line, as text or JSON.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use std::sync::mpsc;

use peerlog::inspect::{self, Peers};
use peerlog::PeerState;

use crate::args::{DumpArgs, RecordKind};
use crate::error::Failure;
use crate::progress::{Meter, Span};
use crate::render;

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
    inspect::with_peers(dir, &reading, |mut peers| -> Result<(), Failure> {
        let printing = meter.output_step("printing", Span::percent(read_share, 100));
        let total = peers.len() as u64;
        let lines = || Lines {
            json,
            filter,
            text: render::PeerLines::default(),
            objects: render::PeerJson::default(),
        };
        let mut ours = lines();
        // Lines go into a buffer, reused, handed to `out` a piece of some thousand peers at a
        // time (as `export` does): memory stays constant, and formatting, not the disk,
        // bounds a dump. With a second core, a helper makes every other piece: after the
        // replay, making the states and lines of the peers is most of a dump's time.
        let mut mine = Vec::new();
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            let mut done = 0;
            while peers.len() > 0 {
                let piece = peers.split_front(LINES_PER_PIECE);
                done += piece.len() as u64;
                mine.clear();
                ours.push_to(piece, &mut mine);
                out.write_all(&mine)?;
                printing(done, total);
            }
            return Ok(());
        }
        std::thread::scope(|scope| -> Result<(), Failure> {
            let (to_helper, pieces) = mpsc::sync_channel::<(Peers<'_>, Vec<u8>)>(1);
            let (helper_done, made) = mpsc::sync_channel::<Vec<u8>>(1);
            scope.spawn(move || {
                let mut theirs = lines();
                for (piece, mut bytes) in pieces {
                    bytes.clear();
                    theirs.push_to(piece, &mut bytes);
                    if helper_done.send(bytes).is_err() {
                        break;
                    }
                }
            });
            let mut spare = Vec::new();
            let mut done = 0;
            while peers.len() > 0 {
                // The helper's piece comes first in the output, ours after it.
                let helpers = peers.split_front(LINES_PER_PIECE);
                let next = peers.split_front(LINES_PER_PIECE);
                done += (helpers.len() + next.len()) as u64;
                to_helper
                    .send((helpers, std::mem::take(&mut spare)))
                    .expect("the helper takes pieces until the channel closes");
                mine.clear();
                ours.push_to(next, &mut mine);
                let theirs = made.recv().expect("the helper sends back every piece");
                out.write_all(&theirs)?;
                out.write_all(&mine)?;
                spare = theirs;
                printing(done, total);
            }
            Ok(())
        })
    })?
}

/// Peers a thread makes the lines of at a time.
const LINES_PER_PIECE: usize = 2048;

/// Makes the lines of `dump`, for the peers the filter keeps.
struct Lines<'f> {
    json: bool,
    filter: &'f DumpFilter,
    text: render::PeerLines,
    objects: render::PeerJson,
}

impl Lines<'_> {
    /// Appends the line of each peer of `peers` the filter keeps to `bytes`.
    fn push_to(&mut self, peers: Peers<'_>, bytes: &mut Vec<u8>) {
        for peer in peers {
            if !self.filter.keeps(&peer) {
                continue;
            }
            if self.json {
                self.objects.push(bytes, &peer);
            } else {
                self.text.push(bytes, &peer);
            }
            bytes.push(b'\n');
        }
    }
}

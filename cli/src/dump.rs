//! `peerlog dump`: the current state, one node a line, as text or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use std::sync::{mpsc, Arc, Mutex};

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
    // Shares of the time (measured at 1 M nodes, the lines made on two cores): reading is
    // most of a dump, text or JSON. Each peer's state is made as it is printed.
    let read_share = if json { 65 } else { 70 };
    let meter = Meter::bar("reading");
    let reading = meter.step("reading", Span::percent(0, read_share));
    inspect::with_peers(dir, &reading, |peers| -> Result<(), Failure> {
        let printing = meter.output_step("printing", Span::percent(read_share, 100));
        let total = peers.len() as u64;
        let lines = || Lines {
            json,
            filter,
            text: render::PeerLines::default(),
            objects: render::PeerJson::default(),
        };
        // Lines go into a few buffers, reused, handed to `out` a piece of some thousand peers
        // at a time (as `export` does): memory stays constant, and formatting, not the disk,
        // bounds a dump. After the replay, making the states and lines of the peers is most
        // of a dump's time: with a second core, a helper makes pieces too, whichever is next
        // when it is free, and the pieces are written in order.
        let pieces = Pieces {
            left: Mutex::new((0, peers)),
        };
        let two_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        std::thread::scope(|scope| -> Result<(), Failure> {
            // Dropped when this returns, before the helper is joined: a helper waiting for a
            // buffer or handing a piece back then stops.
            let (free, buffers) = mpsc::channel::<Vec<u8>>();
            for _ in 0..PIECES_AHEAD {
                free.send(Vec::new()).expect("the receiver is here");
            }
            let buffers = Arc::new(Mutex::new(buffers));
            let (made, done) = mpsc::channel::<Made>();
            // Where no thread can be started, the writer makes every piece itself.
            let mut helper = two_cores
                .then(|| {
                    let (pieces, buffers) = (&pieces, Arc::clone(&buffers));
                    let mut theirs = lines();
                    std::thread::Builder::new()
                        .name("peerlog-dump".into())
                        .spawn_scoped(scope, move || {
                            while let Some(made_one) = pieces.make(&buffers, &mut theirs, true) {
                                if made.send(made_one).is_err() {
                                    break;
                                }
                            }
                        })
                        .ok()
                })
                .flatten();
            let mut ours = lines();
            // Pieces made but not written yet, by number; the next to write.
            let mut ready: BTreeMap<usize, Made> = BTreeMap::new();
            let (mut next, mut written) = (0, 0);
            loop {
                while let Ok(made_one) = done.try_recv() {
                    ready.insert(made_one.n, made_one);
                }
                while let Some(made_one) = ready.remove(&next) {
                    out.write_all(&made_one.bytes)?;
                    written += made_one.peers;
                    printing(written, total);
                    // Cannot fail: the receiver is held here too.
                    let _ = free.send(made_one.bytes);
                    next += 1;
                }
                if written == total {
                    printing(total, total);
                    return Ok(());
                }
                // Make a piece here if a buffer is free (and the helper is not waiting for
                // one) and a piece is left; else the piece to write next is the helper's to
                // make, or made already. A helper gone has handed back every piece it made.
                match pieces.make(&buffers, &mut ours, false) {
                    Some(made_one) => {
                        ready.insert(made_one.n, made_one);
                    }
                    None => match done.recv() {
                        Ok(made_one) => {
                            ready.insert(made_one.n, made_one);
                        }
                        // No helper, or it has ended and handed over every piece it made: a
                        // piece is missing only if the helper panicked making it, and then
                        // its panic is the dump's (rather than waiting for the piece forever).
                        Err(_) => match helper.take().map(|helper| helper.join()) {
                            Some(Err(panic)) => std::panic::resume_unwind(panic),
                            Some(Ok(())) => {}
                            None => panic!(
                                "dump: {written} of {total} peers written, and no piece left"
                            ),
                        },
                    },
                }
            }
        })
    })?
}

/// Buffers of pieces made and not written yet, at most.
const PIECES_AHEAD: usize = 4;

/// The lines of one piece: its number, and the peers it holds.
struct Made {
    n: usize,
    peers: u64,
    bytes: Vec<u8>,
}

/// The pieces of a dump, handed out in order, with their numbers.
struct Pieces<'a> {
    left: Mutex<(usize, Peers<'a>)>,
}

impl Pieces<'_> {
    /// The lines of the next piece, made into a free buffer; `None` when no piece is left,
    /// or when no buffer is free (or never will be: the writer stopped). With `wait`, waits
    /// for a buffer, holding the buffers' lock; without, gives up at once, the lock included:
    /// the writer must not wait for the lock while a helper waits for the buffer the writer
    /// would free.
    fn make(
        &self,
        buffers: &Mutex<mpsc::Receiver<Vec<u8>>>,
        lines: &mut Lines<'_>,
        wait: bool,
    ) -> Option<Made> {
        let mut bytes = match wait {
            true => buffers.lock().expect("not poisoned").recv().ok()?,
            false => buffers.try_lock().ok()?.try_recv().ok()?,
        };
        let (n, piece) = {
            let mut left = self.left.lock().expect("not poisoned");
            let (n, peers) = &mut *left;
            if peers.len() == 0 {
                return None;
            }
            *n += 1;
            (*n - 1, peers.split_front(LINES_PER_PIECE))
        };
        let peers = piece.len() as u64;
        bytes.clear();
        lines.push_to(piece, &mut bytes);
        Some(Made { n, peers, bytes })
    }
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

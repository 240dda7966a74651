//! The `ops_model` harness: a database, the log it wrote as the model knows it, and the
//! writes that keep both in step.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use peerlog::testing::{
    list_dir, salt_seed, FailPoints, Listing, ReplayPlan, ScanItem, SegmentFile, SegmentScanner,
    FRAME_HEADER_LEN, HEADER_LEN,
};
use peerlog::{DamageKind, Error, Event, Node, NodeDb, NodeId, Options};

use crate::model::{expiry_key, nanos, observe, observe_local_seq, Model};
use crate::open_segment::fuzz_options;
use crate::ops::{canonical_ips, flood_id, pool_id, pool_ip, pool_record, FLOOD_IDS, IDS};
use crate::scratch::Scratch;

#[derive(Default)]
pub(crate) struct Armed {
    pub(crate) step: Option<&'static str>,
    /// The step that failed since the last look.
    fired: Option<&'static str>,
}

pub(crate) struct Harness {
    pub(crate) scratch: Scratch,
    pub(crate) dir: PathBuf,
    pub(crate) dirs: usize,
    pub(crate) armed: Arc<Mutex<Armed>>,
    pub(crate) self_id: NodeId,
    /// Every record of the log, in sequence order: record `i` has sequence number `i + 1`.
    pub(crate) events: Vec<Event>,
    /// The state `events` amount to.
    pub(crate) model: Model,
    pub(crate) poisoned: bool,
    /// [`Options::max_nodes`].
    pub(crate) max_nodes: usize,
}

impl Harness {
    pub(crate) fn options(&self) -> Options {
        let armed = Arc::clone(&self.armed);
        Options {
            fail_points: FailPoints::new(move |step| {
                let mut armed = armed.lock().unwrap();
                if armed.step == Some(step) {
                    armed.fired = armed.step.take();
                    return Err(std::io::Error::other(format!("injected failure at {step}")));
                }
                Ok(())
            }),
            max_nodes: self.max_nodes,
            ..fuzz_options()
        }
    }

    /// Whether an injected failure fired since the last look. A failed fsync poisons the
    /// database (DESIGN.md), so from then on its writes may fail too.
    pub(crate) fn take_fired(&mut self) -> bool {
        let fired = self.armed.lock().unwrap().fired.take();
        if fired.is_some_and(|step| step.ends_with("fsync")) {
            self.poisoned = true;
        }
        fired.is_some()
    }

    pub(crate) fn disarm(&self) {
        self.armed.lock().unwrap().step = None;
    }

    pub(crate) fn open(&mut self) -> NodeDb {
        self.take_fired();
        // A reopened database is no longer poisoned.
        self.poisoned = false;
        match NodeDb::open_with(&self.dir, 1, self.self_id, self.options()) {
            Ok(db) => db,
            Err(e) => {
                assert!(
                    self.take_fired(),
                    "open failed without an injected failure: {e}"
                );
                self.poisoned = false;
                NodeDb::open_with(&self.dir, 1, self.self_id, self.options())
                    .unwrap_or_else(|e| panic!("open failed after a failed open: {e}"))
            }
        }
    }

    pub(crate) fn close(&mut self, db: NodeDb) {
        self.take_fired();
        if let Err(e) = db.close() {
            assert!(
                self.poisoned || self.take_fired(),
                "close failed without cause: {e}"
            );
        }
    }

    /// Appends an acknowledged record to the model.
    pub(crate) fn push(&mut self, event: Event) {
        self.model.apply(&event);
        self.events.push(event);
    }

    /// Replaces the log's records (after a cut): the model follows.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.events.truncate(len);
        self.model = Model::of(&self.events);
    }

    /// The evictions the model says a write of `event` makes first: of the id the rule
    /// picks when `event` is about an id the full store does not hold, of the stalest IP slot
    /// when it is about a new IP of an id holding the most.
    ///
    /// An entry without any value is dropped by a compaction and so is gone after a reopen
    /// (see [`ModelEntry::is_blank`]), at a moment the model cannot know (compactions also
    /// run in the background): the database says whether it still holds each such id.
    pub(crate) fn evictions_for(&mut self, db: &NodeDb, event: &Event) -> Vec<Event> {
        if !crate::model::holds_id(event) {
            return Vec::new();
        }
        let blanks: Vec<NodeId> = self
            .model
            .entries
            .iter()
            .filter(|(id, e)| e.is_blank() && db.peer(id).is_none())
            .map(|(id, _)| *id)
            .collect();
        for blank in blanks {
            self.model.entries.remove(&blank);
        }
        let written_at = |id: &NodeId| {
            db.peer(id)
                .unwrap_or_else(|| panic!("{id} is in the model, not in the database"))
                .last_written
        };
        self.model.evictions(event, self.max_nodes, written_at)
    }

    /// Makes a write of `event` with `call`, the evictions the model expects first: when
    /// acknowledged, both are applied to the model; an error only with cause, and then the
    /// log says whether the evictions were written before the failure.
    pub(crate) fn write_with(
        &mut self,
        db: &NodeDb,
        event: Event,
        call: impl FnOnce() -> Result<(), Error>,
    ) {
        let evictions = self.evictions_for(db, &event);
        if !evictions.is_empty() && std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
            eprintln!("evicting {evictions:?} for a {}", event.kind().name());
        }
        match call() {
            Ok(()) => {
                for evicted in evictions {
                    self.push(evicted);
                }
                self.push(event);
            }
            Err(e) => {
                self.failed(&e, event.kind().name());
                for evicted in evictions {
                    let seq = self.events.len() as u64 + 1;
                    match self.logged(seq, seq).remove(&seq) {
                        Some(logged) => {
                            assert_eq!(logged, evicted, "a failed write evicted another");
                            self.push(logged);
                        }
                        None => break,
                    }
                }
            }
        }
    }

    /// An error is only allowed after an injected failure or on a poisoned database.
    pub(crate) fn failed(&mut self, e: &Error, what: &str) {
        assert!(
            self.poisoned || self.take_fired(),
            "{what} failed without cause: {e}"
        );
    }

    /// `update_node`: written unless the id has a signed record of seq 1 or more (then
    /// nothing is written, and it still returns `Ok`).
    pub(crate) fn update_node(&mut self, db: &NodeDb, node: Node) {
        let wanted = self
            .model
            .entries
            .get(&node.id)
            .is_none_or(|e| e.record_seq() == 0);
        if wanted {
            let event = Event::NodeUpdated(node.clone());
            self.write_with(db, event, || db.update_node(&node));
        } else if let Err(e) = db.update_node(&node) {
            self.failed(&e, "an ignored update_node");
        }
    }

    /// `update_record` of a pool record: written unless the stored record has a higher seq,
    /// and it says which; the very record already stored is `Ok(true)` with nothing written
    /// (checked before anything else, so even on a poisoned database).
    pub(crate) fn update_record(&mut self, db: &NodeDb, who: u8, variant: u8) {
        let pool = pool_record(who, variant);
        let seq = pool.record.seq();
        let stored = self.model.entries.get(pool.record.id());
        if stored.is_some_and(|e| e.record.as_ref() == Some(&pool.record)) {
            let result = db.update_record(&pool.enr);
            assert!(
                matches!(result, Ok(true)),
                "update_record of the stored record: {result:?}"
            );
            return;
        }
        let wanted = stored.is_none_or(|e| e.record_seq() <= seq);
        let event = Event::Record(pool.record.clone());
        if wanted {
            let mut written = None;
            self.write_with(db, event, || {
                written = Some(db.update_record(&pool.enr)?);
                Ok(())
            });
            assert_ne!(
                written,
                Some(false),
                "update_record of seq {seq} was ignored"
            );
            return;
        }
        match db.update_record(&pool.enr) {
            Ok(written) => {
                assert_eq!(
                    written,
                    wanted,
                    "update_record of seq {seq} over seq {:?}",
                    self.model
                        .entries
                        .get(pool.record.id())
                        .map(|e| e.record_seq())
                );
                if written {
                    self.push(Event::Record(pool.record.clone()));
                }
            }
            Err(e) => self.failed(&e, "update_record"),
        }
    }

    /// The per-IP writes and the local seq; IPs as the log holds them (canonical), so that
    /// the events compare equal to the records read back.
    pub(crate) fn ping_from(&mut self, db: &NodeDb, who: u8, ip: u8, at: SystemTime) {
        let (id, ip) = (pool_id(who), pool_ip(ip));
        let event = Event::PingFrom {
            id,
            ip: ip.to_canonical(),
            at,
        };
        self.write_with(db, event, || db.update_last_ping_from(&id, ip, at));
    }

    pub(crate) fn pong_from(&mut self, db: &NodeDb, who: u8, ip: u8, at: SystemTime) {
        let (id, ip) = (pool_id(who), pool_ip(ip));
        let event = Event::PongFrom {
            id,
            ip: ip.to_canonical(),
            at,
        };
        self.write_with(db, event, || db.update_last_pong_from(&id, ip, at));
    }

    pub(crate) fn fails_at(&mut self, db: &NodeDb, who: u8, ip: u8, fails: u32) {
        let (id, ip) = (pool_id(who), pool_ip(ip));
        let event = Event::FindFailsAt {
            id,
            ip: ip.to_canonical(),
            fails,
        };
        self.write_with(db, event, || db.update_find_fails_at(&id, ip, fails));
    }

    pub(crate) fn local_seq(&mut self, db: &NodeDb, seq: u64) {
        self.write_with(db, Event::LocalSeq { seq }, || db.store_local_seq(seq));
    }

    pub(crate) fn check(&self, db: &NodeDb, when: &str) {
        // The only damage these operations make is a torn tail of the last segment, which the
        // next open cuts before anything can compact it: no compaction ever finds damage, so
        // no loss (kind 13) is ever recorded (one would also be a sequence number too many).
        let losses = db.losses();
        assert!(
            losses.is_empty(),
            "{when}: losses recorded without damage: {losses:?}"
        );
        let model = &self.model;
        let probes = canonical_ips();
        // The bound, and the ids held: the model's (of those without any value, the database
        // may have dropped some at a reopen after a compaction).
        let held = db.peers();
        assert!(
            held.len() <= self.max_nodes,
            "{when}: {} ids held, max_nodes {}",
            held.len(),
            self.max_nodes
        );
        for peer in &held {
            assert!(
                model.entries.contains_key(&peer.id),
                "{when}: {} is held",
                peer.id
            );
        }
        for (id, e) in &model.entries {
            assert!(
                e.is_blank() || held.iter().any(|p| p.id == *id),
                "{when}: {id} is not held"
            );
        }
        let ids = (0..IDS as u8)
            .map(pool_id)
            .chain((0..FLOOD_IDS).map(flood_id));
        for id in ids {
            let expected = model
                .entries
                .get(&id)
                .cloned()
                .unwrap_or_default()
                .observed(&probes);
            assert_eq!(
                observe(db, &id, &probes),
                expected,
                "{when}: state of {id} differs"
            );
        }
        let nodes = model.entries.values().filter(|e| e.has_record()).count();
        assert_eq!(db.len(), nodes, "{when}: node count differs");
        assert_eq!(
            observe_local_seq(db),
            model.local_seq,
            "{when}: local seq differs"
        );
        // Seeds: pongs are decades past or far future, so a day's age splits them. With room
        // for every id, `query_seeds` returns every eligible node.
        let day = Duration::from_secs(24 * 3600);
        let min_pong = nanos(SystemTime::now() - day);
        let mut seeds: Vec<String> = db
            .query_seeds(IDS + usize::from(FLOOD_IDS), day)
            .iter()
            .map(Node::to_string)
            .collect();
        seeds.sort();
        let mut expected: Vec<String> = model
            .entries
            .iter()
            .filter(|(id, e)| e.is_seed(id, &self.self_id, min_pong))
            .filter_map(|(_, e)| e.node.as_ref().map(Node::to_string))
            .collect();
        expected.sort();
        assert_eq!(seeds, expected, "{when}: seeds differ");
    }

    pub(crate) fn check_recovery(&self, db: &NodeDb, when: &str, torn_ok: bool) {
        let summary = db.recovery();
        if std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
            let listing = list_dir(&self.dir, Listing::Strict).expect("listing the database");
            let mut headers: Vec<_> = listing.segments.iter().map(|s| s.header).collect();
            headers.sort_by_key(|h| h.segment_id);
            eprintln!(
                "{when}: {} events, {summary:?}, segments {headers:#?}",
                self.events.len()
            );
        }
        assert_eq!(
            summary.next_seq,
            self.events.len() as u64 + 1,
            "{when}: the log's sequence numbers do not match the acknowledged writes"
        );
        for problem in &summary.problems {
            assert!(
                torn_ok && problem.kind == DamageKind::TornTail,
                "{when}: unexpected problem {problem}"
            );
        }
        self.check(db, when);
    }

    pub(crate) fn next_dir(&mut self) -> PathBuf {
        self.dirs += 1;
        self.scratch.sub(&format!("db{}", self.dirs))
    }

    /// The segment the database appends to (the last of the replay plan), if it is not a
    /// compacted one.
    pub(crate) fn last_segment(&self) -> Option<SegmentFile> {
        let listing = list_dir(&self.dir, Listing::Strict).expect("listing the database");
        ReplayPlan::new(listing.segments)
            .live
            .pop()
            .filter(|s| !s.header.is_compacted())
    }

    /// The records with sequence numbers `first..=last` in the (open) database's live
    /// segments, as the files hold them now.
    pub(crate) fn logged(&self, first: u64, last: u64) -> BTreeMap<u64, Event> {
        let listing = list_dir(&self.dir, Listing::Strict).expect("listing the database");
        let mut found = BTreeMap::new();
        for segment in ReplayPlan::new(listing.segments).live {
            let bytes = fs::read(&segment.path).unwrap();
            for item in SegmentScanner::new(&bytes, salt_seed(segment.header.salt)) {
                if let ScanItem::Record { record, .. } = item {
                    if (first..=last).contains(&record.seq) {
                        found.insert(record.seq, record.event);
                    }
                }
            }
        }
        found
    }

    /// Expiration writes its records in the index's order, which the model does not know:
    /// takes the order of the records from `first` on from the log (a torn tail can cut
    /// the group), after checking they expire the model's ids and IP slots. After a
    /// compaction the group is inside the compacted segment, which is never torn, so only
    /// `expire_nodes` needs it.
    pub(crate) fn expiry_order(&mut self, first: u64) {
        let found = self.logged(first, self.events.len() as u64);
        let group = &mut self.events[first as usize - 1..];
        let mut want: Vec<_> = group.iter().map(expiry_key).collect();
        let mut got: Vec<_> = found.values().map(expiry_key).collect();
        want.sort();
        got.sort();
        assert_eq!(
            got, want,
            "expiration wrote other ids or IPs than the model expired"
        );
        for (slot, event) in group.iter_mut().zip(found.into_values()) {
            *slot = event;
        }
    }

    /// Cuts the closed database's last segment and works out the acknowledged prefix that
    /// must survive: exactly the records whose frames end at or before the cut.
    pub(crate) fn tear(&mut self, cut: u16, garbage: &[u8]) {
        let garbage = &garbage[..garbage.len().min(48)];
        let Some(last) = self.last_segment() else {
            return;
        };
        let bytes = fs::read(&last.path).unwrap();
        let cut = HEADER_LEN + cut as usize % (bytes.len() - HEADER_LEN + 1);
        let mut file = bytes[..cut].to_vec();
        file.extend_from_slice(garbage);
        let mut kept = last.header.first_seq - 1;
        let mut scanner = SegmentScanner::new(&bytes, salt_seed(last.header.salt));
        for item in scanner.by_ref() {
            let ScanItem::Record {
                offset,
                len,
                record,
            } = item
            else {
                panic!("damage in a segment peerlog wrote and closed cleanly");
            };
            let i = (record.seq - 1) as usize;
            let expected = self
                .events
                .get(i)
                .unwrap_or_else(|| panic!("record {} was never acknowledged", record.seq));
            assert_eq!(&record.event, expected, "record {} differs", record.seq);
            // A record survives when the torn file still holds its whole frame with every
            // checksummed byte unchanged. The padding is not checksummed, so garbage that lands
            // there leaves the record intact; and garbage can repeat the very bytes that were
            // cut (fuzz findings in this oracle). Frames are longer than the garbage, so only
            // the frame across the cut can be completed.
            let (offset, len) = (offset as usize, len as usize);
            let covered = FRAME_HEADER_LEN
                + u16::from_le_bytes([bytes[offset + 12], bytes[offset + 13]]) as usize;
            if offset + len <= file.len()
                && file[offset..offset + covered] == bytes[offset..offset + covered]
            {
                kept = record.seq;
            }
        }
        fs::write(&last.path, file).unwrap();
        self.truncate(kept as usize);
    }
}

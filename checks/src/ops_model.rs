//! `ops_model`: API operations against the model, one named step per kind of operation.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use peerlog::testing::set_check_ahead_from;
use peerlog::{Event, Node, NodeDb};

use crate::harness::Harness;
use crate::model::Model;
use crate::ops::{decode_steps, flood_id, flood_ip, pool_id, Op, Step, Time, FAIL_STEPS};
use crate::scratch::{dir_contents, Scratch};

/// An arbitrary sequence of API operations with reopens, crash images, torn tails and injected
/// I/O failures: after each reopen the state equals the model's state for the acknowledged
/// prefix, and the recovery reports no problem but the torn tail it was given.
pub fn check_ops_model(data: &[u8]) {
    // Every segment, however small, replayed with the checksum helper too.
    set_check_ahead_from(0);
    let (max_nodes, steps) = decode_steps(data);
    if std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
        eprintln!("max_nodes {max_nodes}: {steps:#?}");
    }
    let scratch = Scratch::new();
    let mut h = Harness {
        dir: scratch.sub("db0"),
        scratch,
        dirs: 0,
        armed: Arc::default(),
        self_id: pool_id(0),
        events: Vec::new(),
        model: Model::default(),
        poisoned: false,
        max_nodes,
    };
    let mut db = h.open();
    for (n, step) in steps.into_iter().enumerate() {
        h.take_fired();
        db = match step {
            Step::Op(op) => h.op(db, op, n),
            Step::Flood { seed, count } => {
                h.flood(&db, seed, count);
                h.check(&db, &format!("step {n}: after a flood"));
                db
            }
            Step::IpFlood { who, seed, count } => {
                h.ip_flood(&db, who, seed, count);
                h.check(&db, &format!("step {n}: after an IP flood"));
                db
            }
        };
    }
    h.disarm();
    h.close(db);
    let db = h.open();
    h.check_recovery(&db, "final reopen", false);
    h.close(db);
}

impl Harness {
    /// Operation `n`: the database to go on with (another one after a reopen).
    fn op(&mut self, db: NodeDb, op: Op, n: usize) -> NodeDb {
        match op {
            Op::Update {
                who,
                v6,
                ip,
                udp,
                tcp,
            } => {
                let ip = if v6 {
                    IpAddr::V6(Ipv6Addr::from(ip))
                } else {
                    IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
                };
                self.update_node(&db, Node::new(pool_id(who), ip, udp, tcp));
            }
            Op::Ping { who, time } => {
                let (id, at) = (pool_id(who), time.at());
                self.write_with(&db, Event::Ping { id, at }, || db.update_last_ping(&id, at));
            }
            Op::Pong { who, time } => {
                let (id, at) = (pool_id(who), time.at());
                self.write_with(&db, Event::Pong { id, at }, || db.update_last_pong(&id, at));
            }
            Op::Fails { who, fails } => {
                let id = pool_id(who);
                self.write_with(&db, Event::FindFails { id, fails }, || {
                    db.update_find_fails(&id, fails)
                });
            }
            Op::Burst { seed, count } => self.burst(&db, seed, count),
            Op::Delete { who } => self.delete(&db, who),
            Op::Expire | Op::Compact => self.expire_or_compact(&db, &op, n),
            Op::Sync => self.sync(&db, n),
            Op::Reopen => {
                self.close(db);
                let db = self.open();
                self.check_recovery(&db, &format!("op {n}: reopen"), false);
                return db;
            }
            Op::Crash => return self.crash_image(db, n),
            Op::TornTail { cut, garbage } => return self.torn_tail(db, cut, &garbage, n),
            Op::FailNext { step } => {
                self.armed.lock().unwrap().step =
                    Some(FAIL_STEPS[step as usize % FAIL_STEPS.len()]);
            }
            Op::Record { who, variant } => self.update_record(&db, who, variant),
            Op::PingFrom { who, ip, time } => self.ping_from(&db, who, ip, time.at()),
            Op::PongFrom { who, ip, time } => self.pong_from(&db, who, ip, time.at()),
            Op::FailsAt { who, ip, fails } => self.fails_at(&db, who, ip, fails),
            Op::LocalSeq { seq } => self.local_seq(&db, seq),
            Op::BurstV2 { seed, count } => self.burst_v2(&db, seed, count),
        }
        db
    }

    /// `sync`: it fails only with cause, and a failed one poisons the database.
    fn sync(&mut self, db: &NodeDb, n: usize) {
        if let Err(e) = db.sync() {
            assert!(
                self.poisoned || self.take_fired(),
                "op {n}: sync failed without cause: {e}"
            );
            self.poisoned = true;
        }
    }

    /// The files copied while the database is open (what `kill -9` leaves with `Process`
    /// durability), opened in a directory of their own.
    fn crash_image(&mut self, db: NodeDb, n: usize) -> NodeDb {
        let copy = self.next_dir();
        fs::create_dir(&copy).unwrap();
        for (name, bytes) in dir_contents(&self.dir) {
            fs::write(copy.join(name), bytes).unwrap();
        }
        drop(db);
        self.dir = copy;
        let db = self.open();
        self.check_recovery(&db, &format!("op {n}: crash image"), false);
        db
    }

    /// The last segment cut (and garbage appended) after a clean close: the reopen keeps
    /// exactly the records whose frames end before the cut, and the one after it is clean.
    fn torn_tail(&mut self, db: NodeDb, cut: u16, garbage: &[u8], n: usize) -> NodeDb {
        self.close(db);
        self.tear(cut, garbage);
        let db = self.open();
        self.check_recovery(&db, &format!("op {n}: torn tail"), true);
        // The cut was repaired: one more reopen is clean.
        self.close(db);
        let db = self.open();
        self.check_recovery(&db, &format!("op {n}: reopen after torn tail"), false);
        db
    }

    /// Up to 31 writes about ids beyond the pool: unsigned records on a few subnets, and
    /// pongs, so that a full store evicts.
    fn flood(&mut self, db: &NodeDb, seed: u8, count: u8) {
        for k in 0..count % 32 {
            let id = flood_id(seed.wrapping_add(k.wrapping_mul(7)));
            let at = Time {
                past: (seed ^ k).is_multiple_of(3),
                secs: u32::from(k) * 1000 + u32::from(seed),
                nanos: 0,
            }
            .at();
            // Three /24s, one /48, and the IPv4-mapped form of the first /24.
            let ip = match (seed ^ k) % 5 {
                0 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, k.into())),
                1 => IpAddr::V6(Ipv4Addr::new(10, 5, 0, k).to_ipv6_mapped()),
                r => IpAddr::V4(Ipv4Addr::new(10, 5, r, k)),
            };
            match seed.wrapping_add(k) % 3 {
                0 => self.write_with(db, Event::Pong { id, at }, || db.update_last_pong(&id, at)),
                _ => self.update_node(db, Node::new(id, ip, 30303, 30303)),
            }
        }
    }

    /// Up to 31 per-IP writes about one pool id, more than an id holds slots for.
    fn ip_flood(&mut self, db: &NodeDb, who: u8, seed: u8, count: u8) {
        for k in 0..count % 32 {
            let ip = flood_ip(seed.wrapping_add(k.wrapping_mul(5)));
            let at = Time {
                past: (seed ^ k).is_multiple_of(4),
                secs: u32::from(seed ^ k) % 8,
                nanos: 0,
            }
            .at();
            let (id, ip_event) = (pool_id(who), ip.to_canonical());
            match seed.wrapping_add(k) % 3 {
                0 => self.write_with(
                    db,
                    Event::PingFrom {
                        id,
                        ip: ip_event,
                        at,
                    },
                    || db.update_last_ping_from(&id, ip, at),
                ),
                1 => self.write_with(
                    db,
                    Event::PongFrom {
                        id,
                        ip: ip_event,
                        at,
                    },
                    || db.update_last_pong_from(&id, ip, at),
                ),
                _ => {
                    let fails = u32::from(k % 2);
                    self.write_with(
                        db,
                        Event::FindFailsAt {
                            id,
                            ip: ip_event,
                            fails,
                        },
                        || db.update_find_fails_at(&id, ip, fails),
                    )
                }
            }
        }
    }

    /// A burst of format-1 writes about pool ids.
    fn burst(&mut self, db: &NodeDb, seed: u8, count: u8) {
        for k in 0..count % 48 {
            let who = seed.wrapping_add(k);
            let id = pool_id(who);
            let time = Time {
                past: (seed ^ k).is_multiple_of(5),
                secs: u32::from(k) * 1000 + u32::from(seed),
                nanos: u32::from(k),
            };
            let at = time.at();
            match (seed.wrapping_add(k)) % 4 {
                0 => {
                    let ip = IpAddr::V4(Ipv4Addr::new(10, seed, k, who));
                    self.update_node(db, Node::new(id, ip, u16::from(k) * 7, 30303));
                }
                1 => self.write_with(db, Event::Ping { id, at }, || db.update_last_ping(&id, at)),
                2 => self.write_with(db, Event::Pong { id, at }, || db.update_last_pong(&id, at)),
                _ => {
                    let fails = u32::from(k);
                    self.write_with(db, Event::FindFails { id, fails }, || {
                        db.update_find_fails(&id, fails)
                    });
                }
            }
        }
    }

    /// `delete_node` of a pool id.
    fn delete(&mut self, db: &NodeDb, who: u8) {
        let id = pool_id(who);
        let entry = self.model.entries.get(&id).cloned();
        let result = db.delete_node(&id);
        match entry {
            None => result.expect("deleting an unknown id wrote nothing and cannot fail"),
            // An entry without any value (a fail count of 0, IP slots with nothing
            // but a fail count of 0) leaves no event in a compaction, so after one and
            // a reopen the index no longer has it, and deleting it writes nothing;
            // before, it writes a record. Both are invisible through the API: the log
            // says which happened.
            Some(e) if e.is_blank() && result.is_ok() => {
                let seq = self.events.len() as u64 + 1;
                if let Some(event) = self.logged(seq, seq).remove(&seq) {
                    assert_eq!(event, Event::NodeDeleted { id });
                    self.push(event);
                }
            }
            Some(_) => match result {
                Ok(()) => self.push(Event::NodeDeleted { id }),
                Err(e) => self.failed(&e, "delete"),
            },
        }
    }

    /// `expire_nodes` or `compact`: the model's expiries, checked.
    fn expire_or_compact(&mut self, db: &NodeDb, op: &Op, n: usize) {
        // Several records: an injected failure part-way would leave an unknown prefix.
        self.disarm();
        let (expired, with_record) = self.model.expired(&self.self_id);
        let result = match op {
            Op::Expire => db.expire_nodes(),
            _ => db.compact().map(|stats| stats.nodes_expired),
        };
        match result {
            Ok(dropped) => {
                assert_eq!(dropped, with_record, "op {n}: expired node count");
                let first = self.events.len() as u64 + 1;
                for event in expired {
                    self.push(event);
                }
                if matches!(op, Op::Expire) {
                    self.expiry_order(first);
                }
            }
            Err(e) => {
                // A poisoned database refuses the first expiry record (and then
                // compaction), so nothing changed.
                assert!(self.poisoned, "op {n}: {op:?} failed without cause: {e}");
            }
        }
        self.check(db, &format!("op {n}: after {op:?}"));
    }

    /// A burst of format-2 writes: signed records, per-IP liveness, the local seq.
    fn burst_v2(&mut self, db: &NodeDb, seed: u8, count: u8) {
        for k in 0..count % 48 {
            let who = seed.wrapping_add(k);
            let ip = seed.wrapping_mul(3).wrapping_add(k);
            let at = Time {
                past: (seed ^ k).is_multiple_of(5),
                secs: u32::from(k) * 1000 + u32::from(seed),
                nanos: u32::from(k),
            }
            .at();
            match (seed.wrapping_add(k)) % 5 {
                0 => self.update_record(db, who, k / 5),
                1 => self.ping_from(db, who, ip, at),
                2 => self.pong_from(db, who, ip, at),
                3 => self.fails_at(db, who, ip, u32::from(k)),
                _ => self.local_seq(db, u64::from(seed) << 8 | u64::from(k)),
            }
        }
    }
}

//! `ops_model`: API operations against the model.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use peerlog::testing::set_check_ahead_from;
use peerlog::{Event, Node};

use std::sync::Arc;

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
        let op = match step {
            Step::Op(op) => op,
            Step::Flood { seed, count } => {
                for k in 0..count % 32 {
                    let id = flood_id(seed.wrapping_add(k.wrapping_mul(7)));
                    let at = Time {
                        past: (seed ^ k) % 3 == 0,
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
                        0 => h.write_with(&db, Event::Pong { id, at }, || {
                            db.update_last_pong(&id, at)
                        }),
                        _ => h.update_node(&db, Node::new(id, ip, 30303, 30303)),
                    }
                }
                h.check(&db, &format!("step {n}: after a flood"));
                continue;
            }
            Step::IpFlood { who, seed, count } => {
                for k in 0..count % 32 {
                    let ip = flood_ip(seed.wrapping_add(k.wrapping_mul(5)));
                    let at = Time {
                        past: (seed ^ k) % 4 == 0,
                        secs: u32::from(seed ^ k) % 8,
                        nanos: 0,
                    }
                    .at();
                    let (id, ip_event) = (pool_id(who), ip.to_canonical());
                    match seed.wrapping_add(k) % 3 {
                        0 => h.write_with(
                            &db,
                            Event::PingFrom {
                                id,
                                ip: ip_event,
                                at,
                            },
                            || db.update_last_ping_from(&id, ip, at),
                        ),
                        1 => h.write_with(
                            &db,
                            Event::PongFrom {
                                id,
                                ip: ip_event,
                                at,
                            },
                            || db.update_last_pong_from(&id, ip, at),
                        ),
                        _ => {
                            let fails = u32::from(k % 2);
                            h.write_with(
                                &db,
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
                h.check(&db, &format!("step {n}: after an IP flood"));
                continue;
            }
        };
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
                h.update_node(&db, Node::new(pool_id(who), ip, udp, tcp));
            }
            Op::Ping { who, time } => {
                let (id, at) = (pool_id(who), time.at());
                h.write_with(&db, Event::Ping { id, at }, || db.update_last_ping(&id, at));
            }
            Op::Pong { who, time } => {
                let (id, at) = (pool_id(who), time.at());
                h.write_with(&db, Event::Pong { id, at }, || db.update_last_pong(&id, at));
            }
            Op::Fails { who, fails } => {
                let id = pool_id(who);
                h.write_with(&db, Event::FindFails { id, fails }, || {
                    db.update_find_fails(&id, fails)
                });
            }
            Op::Burst { seed, count } => {
                for k in 0..count % 48 {
                    let who = seed.wrapping_add(k);
                    let id = pool_id(who);
                    let time = Time {
                        past: (seed ^ k) % 5 == 0,
                        secs: u32::from(k) * 1000 + u32::from(seed),
                        nanos: u32::from(k),
                    };
                    let at = time.at();
                    match (seed.wrapping_add(k)) % 4 {
                        0 => {
                            let ip = IpAddr::V4(Ipv4Addr::new(10, seed, k, who));
                            h.update_node(&db, Node::new(id, ip, u16::from(k) * 7, 30303));
                        }
                        1 => h.write_with(&db, Event::Ping { id, at }, || {
                            db.update_last_ping(&id, at)
                        }),
                        2 => h.write_with(&db, Event::Pong { id, at }, || {
                            db.update_last_pong(&id, at)
                        }),
                        _ => {
                            let fails = u32::from(k);
                            h.write_with(&db, Event::FindFails { id, fails }, || {
                                db.update_find_fails(&id, fails)
                            });
                        }
                    }
                }
            }
            Op::Delete { who } => {
                let id = pool_id(who);
                let entry = h.model.entries.get(&id).cloned();
                let result = db.delete_node(&id);
                match entry {
                    None => result.expect("deleting an unknown id wrote nothing and cannot fail"),
                    // An entry without any value (a fail count of 0, IP slots with nothing
                    // but a fail count of 0) leaves no event in a compaction, so after one and
                    // a reopen the index no longer has it, and deleting it writes nothing;
                    // before, it writes a record. Both are invisible through the API: the log
                    // says which happened.
                    Some(e) if e.is_blank() && result.is_ok() => {
                        let seq = h.events.len() as u64 + 1;
                        if let Some(event) = h.logged(seq, seq).remove(&seq) {
                            assert_eq!(event, Event::NodeDeleted { id });
                            h.push(event);
                        }
                    }
                    Some(_) => match result {
                        Ok(()) => h.push(Event::NodeDeleted { id }),
                        Err(e) => h.failed(&e, "delete"),
                    },
                }
            }
            Op::Expire | Op::Compact => {
                // Several records: an injected failure part-way would leave an unknown prefix.
                h.disarm();
                let (expired, with_record) = h.model.expired(&h.self_id);
                let result = match op {
                    Op::Expire => db.expire_nodes(),
                    _ => db.compact().map(|stats| stats.nodes_expired),
                };
                match result {
                    Ok(dropped) => {
                        assert_eq!(dropped, with_record, "op {n}: expired node count");
                        let first = h.events.len() as u64 + 1;
                        for event in expired {
                            h.push(event);
                        }
                        if matches!(op, Op::Expire) {
                            h.expiry_order(first);
                        }
                    }
                    Err(e) => {
                        // A poisoned database refuses the first expiry record (and then
                        // compaction), so nothing changed.
                        assert!(h.poisoned, "op {n}: {op:?} failed without cause: {e}");
                    }
                }
                h.check(&db, &format!("op {n}: after {op:?}"));
            }
            Op::Sync => {
                if let Err(e) = db.sync() {
                    assert!(
                        h.poisoned || h.take_fired(),
                        "op {n}: sync failed without cause: {e}"
                    );
                    h.poisoned = true;
                }
            }
            Op::Reopen => {
                h.close(db);
                db = h.open();
                h.check_recovery(&db, &format!("op {n}: reopen"), false);
            }
            Op::Crash => {
                let copy = h.next_dir();
                fs::create_dir(&copy).unwrap();
                for (name, bytes) in dir_contents(&h.dir) {
                    fs::write(copy.join(name), bytes).unwrap();
                }
                drop(db);
                h.dir = copy;
                db = h.open();
                h.check_recovery(&db, &format!("op {n}: crash image"), false);
            }
            Op::TornTail { cut, garbage } => {
                h.close(db);
                h.tear(cut, &garbage);
                db = h.open();
                h.check_recovery(&db, &format!("op {n}: torn tail"), true);
                // The cut was repaired: one more reopen is clean.
                h.close(db);
                db = h.open();
                h.check_recovery(&db, &format!("op {n}: reopen after torn tail"), false);
            }
            Op::FailNext { step } => {
                h.armed.lock().unwrap().step = Some(FAIL_STEPS[step as usize % FAIL_STEPS.len()]);
            }
            Op::Record { who, variant } => h.update_record(&db, who, variant),
            Op::PingFrom { who, ip, time } => h.ping_from(&db, who, ip, time.at()),
            Op::PongFrom { who, ip, time } => h.pong_from(&db, who, ip, time.at()),
            Op::FailsAt { who, ip, fails } => h.fails_at(&db, who, ip, fails),
            Op::LocalSeq { seq } => h.local_seq(&db, seq),
            Op::BurstV2 { seed, count } => {
                for k in 0..count % 48 {
                    let who = seed.wrapping_add(k);
                    let ip = seed.wrapping_mul(3).wrapping_add(k);
                    let at = Time {
                        past: (seed ^ k) % 5 == 0,
                        secs: u32::from(k) * 1000 + u32::from(seed),
                        nanos: u32::from(k),
                    }
                    .at();
                    match (seed.wrapping_add(k)) % 5 {
                        0 => h.update_record(&db, who, k / 5),
                        1 => h.ping_from(&db, who, ip, at),
                        2 => h.pong_from(&db, who, ip, at),
                        3 => h.fails_at(&db, who, ip, u32::from(k)),
                        _ => h.local_seq(&db, u64::from(seed) << 8 | u64::from(k)),
                    }
                }
            }
        }
    }
    h.disarm();
    h.close(db);
    let db = h.open();
    h.check_recovery(&db, "final reopen", false);
    h.close(db);
}

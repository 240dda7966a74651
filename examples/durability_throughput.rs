//! Write throughput in each durability mode, measured in one run on the same disk.
//!
//! ```text
//! cargo run --release --example durability_throughput [seconds per case] [directory]
//! ```
//!
//! Cases: the default mode (`Process`: acknowledged writes survive `kill -9`); group commit
//! with 1, 4 and 16 threads, each doing `write` then `sync()` (every counted write is on
//! stable storage when counted); sync-each-write with one thread. The databases are created in
//! a temporary directory under `directory` (default: the system's temporary directory), which
//! decides which disk the `fdatasync`s go to.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use peerlog::{Durability, Node, NodeDb, NodeId, Options};

fn id(thread: u64, n: u64) -> NodeId {
    let mut bytes = [0x42; 64];
    bytes[..8].copy_from_slice(&thread.to_be_bytes());
    // A few thousand distinct ids per thread, like a discovery table.
    bytes[8..16].copy_from_slice(&(n % 4096).to_be_bytes());
    NodeId(bytes)
}

/// One write: a pong (the most frequent event in discovery), and every 4th a node record.
fn write(db: &NodeDb, thread: u64, n: u64) {
    let id = id(thread, n);
    if n.is_multiple_of(4) {
        let node = Node::new(id, IpAddr::V4(Ipv4Addr::from(n as u32)), 30303, 30303);
        db.update_node(&node).unwrap();
    } else {
        db.update_last_pong(&id, SystemTime::now()).unwrap();
    }
}

/// Runs `threads` writers for `time`; returns writes per second.
fn measure(
    base: &Path,
    durability: Durability,
    threads: u64,
    sync_each: bool,
    time: Duration,
) -> f64 {
    let dir = tempfile::tempdir_in(base).expect("creating a temporary directory");
    let options = Options {
        durability,
        ..Options::default()
    };
    let db = Arc::new(NodeDb::open_with(dir.path(), 1, NodeId([0xee; 64]), options).unwrap());
    let start = Instant::now();
    let until = start + time;
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < until {
                    for _ in 0..16 {
                        write(&db, thread, n);
                        if sync_each {
                            db.sync().unwrap();
                        }
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let writes: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let elapsed = start.elapsed();
    Arc::into_inner(db).unwrap().close().unwrap();
    writes as f64 / elapsed.as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args
        .next()
        .map(|s| s.parse().expect("seconds per case"))
        .unwrap_or(2.0);
    let base: PathBuf = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let time = Duration::from_secs_f64(seconds);
    let group = Durability::GroupCommit {
        max_delay: Duration::from_millis(10),
    };
    let cases: [(&str, Durability, u64, bool); 6] = [
        ("Process, 1 thread, write", Durability::Process, 1, false),
        ("group commit, 1 thread, write+sync()", group, 1, true),
        ("group commit, 4 threads, write+sync()", group, 4, true),
        ("group commit, 16 threads, write+sync()", group, 16, true),
        ("group commit, 1 thread, write (no sync)", group, 1, false),
        (
            "sync-each-write, 1 thread, write",
            Durability::SyncEachWrite,
            1,
            false,
        ),
    ];
    println!("{seconds} s per case, databases under {}", base.display());
    for (name, durability, threads, sync_each) in cases {
        let rate = measure(&base, durability, threads, sync_each, time);
        println!("{name:<42} {rate:>12.0} writes/s");
    }
}

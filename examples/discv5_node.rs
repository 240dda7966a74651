//! A discv5 node ([sigp/discv5](https://github.com/sigp/discv5) 0.12) whose peer cache is
//! peerlog: it finds its peers again after a restart, or a `kill -9`, without any bootnode.
//!
//! Two nodes on 127.0.0.1, in two terminals:
//!
//! ```text
//! cargo run --example discv5_node -- --port 9000 --db /tmp/node-a --key-file /tmp/node-a.key
//! # copy the `enr:-…` that the first line shows, then in the second terminal:
//! cargo run --example discv5_node -- --port 9001 --db /tmp/node-b --key-file /tmp/node-b.key \
//!     --bootnode enr:-…
//! ```
//!
//! Both show `connected 1` within a few seconds. Stop node b (Ctrl-C or `kill -9`) and start
//! it again without `--bootnode`: it reconnects to node a from the record peerlog kept, with a
//! higher `seq` for its own record. The key file (hex secret key) is created when missing,
//! readable by its owner only (0600).
//!
//! Arguments: `--port P --db DIR --key-file FILE [--bootnode ENR]...`
//!
//! Output (one line each, for people and for `tests/discv5.rs`):
//!
//! ```text
//! enr enr:-…                          this node's record, at start
//! seq 1754321098766                   its seq: one above the last one peerlog stored
//! seeds 3 records 5                   records from peerlog added to the table, records kept
//! connected 2 table 4 cached 5        every second: connected / all table entries, records kept
//! ```
//!
//! What goes into peerlog: every `Discovered` record (`update_record`: the higher seq wins);
//! a `SessionEstablished` as the record plus a pong from the session's IP; and every second,
//! because discv5 drops events when its channel is full, the records of the routing table and
//! a pong for each connected entry. At start, `query_seed_records` gives the records to add to
//! the table: peers with a pong from their record's IP within a day.

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use discv5::{ConfigBuilder, Discv5, Enr, Event, ListenConfig};
use peerlog::enr::{self, CombinedKey};
use peerlog::{NodeDb, NodeId};

/// The protocol version the database is opened with: a database written with another one is
/// wiped.
const PROTOCOL_VERSION: u64 = 5;
/// Records asked from peerlog at start.
const SEEDS: usize = 30;
/// Only peers that answered within this time are seeds.
const SEED_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// A connected table entry gets a new pong in peerlog when its last one is older than this
/// (a session or a record change is written at once).
const PONG_REFRESH: Duration = Duration::from_secs(60);

struct Args {
    port: u16,
    db: PathBuf,
    key_file: PathBuf,
    bootnodes: Vec<Enr>,
}

const USAGE: &str = "usage: discv5_node --port P --db DIR --key-file FILE [--bootnode ENR]...";

fn parse_args() -> Result<Args, String> {
    let (mut port, mut db, mut key_file, mut bootnodes) = (None, None, None, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = Some(value.parse().map_err(|e| format!("--port {value}: {e}"))?),
            "--db" => db = Some(PathBuf::from(value)),
            "--key-file" => key_file = Some(PathBuf::from(value)),
            "--bootnode" => bootnodes.push(value.parse().map_err(|e| format!("--bootnode: {e}"))?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(Args {
        port: port.ok_or("--port is required")?,
        db: db.ok_or("--db is required")?,
        key_file: key_file.ok_or("--key-file is required")?,
        bootnodes,
    })
}

/// The secp256k1 secret key in `path` (hex), created when the file is missing.
fn load_or_create_key(path: &PathBuf) -> Result<CombinedKey, Box<dyn Error>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut secret = hex::decode(text.trim())?;
            Ok(CombinedKey::secp256k1_from_bytes(&mut secret)?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = CombinedKey::generate_secp256k1();
            // A secret: readable by its owner only (0600, as peerlog's own files), whatever
            // the umask, and never over a file that appeared meanwhile.
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            file.write_all(hex::encode(key.encode()).as_bytes())?;
            file.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e.into()),
    }
}

/// peerlog as the node's peer cache.
struct PeerCache {
    db: NodeDb,
    self_id: NodeId,
}

impl PeerCache {
    /// Stores `record` (peerlog keeps the one of the highest seq, and writes nothing for a
    /// record it already has); returns its id. Records peerlog does not store (not "v4", i.e.
    /// not secp256k1) and our own are skipped.
    fn record(&self, record: &Enr) -> Result<Option<NodeId>, peerlog::Error> {
        let Ok(id) = NodeId::from_enr(record) else {
            return Ok(None);
        };
        if id == self.self_id {
            return Ok(None);
        }
        self.db.update_record(record)?;
        Ok(Some(id))
    }

    /// Stores `record` and a pong from `ip`: the peer answered from there.
    fn live(&self, record: &Enr, ip: IpAddr) -> Result<(), peerlog::Error> {
        if let Some(id) = self.record(record)? {
            self.db.update_last_pong_from(&id, ip, SystemTime::now())?;
        }
        Ok(())
    }

    /// The routing table into peerlog: every entry's record, and a pong for each connected
    /// entry (from the IP of its record) unless it has a recent one. Returns (connected, entries).
    fn snapshot(&self, discv5: &Discv5) -> Result<(usize, usize), peerlog::Error> {
        let entries = discv5.table_entries();
        let mut connected = 0;
        for (_, record, status) in &entries {
            let id = self.record(record)?;
            if !status.is_connected() {
                continue;
            }
            connected += 1;
            if let (Some(id), Some(ip)) = (id, record.ip4()) {
                let ip = IpAddr::V4(ip);
                let fresh = self
                    .db
                    .last_pong_from(&id, ip)
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age < PONG_REFRESH);
                if !fresh {
                    self.db.update_last_pong_from(&id, ip, SystemTime::now())?;
                }
            }
        }
        Ok((connected, entries.len()))
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let key = load_or_create_key(&args.key_file)?;
    // peerlog names a node by its public key.
    let self_id = NodeId::from_key(&key)?;
    let db = NodeDb::open(&args.db, PROTOCOL_VERSION, self_id)?;
    db.ensure_expirer();

    // Our own record, one seq above the last one (never backwards, even after a crash or a
    // wipe), stored before anyone can see it.
    let seq = db.local_seq() + 1;
    let local = Enr::builder()
        .ip4(Ipv4Addr::LOCALHOST)
        .udp4(args.port)
        .seq(seq)
        .build(&key)?;
    db.store_local_seq(seq)?;
    println!("enr {}", local.to_base64());
    println!("seq {seq}");

    // The defaults work on loopback (no IP limits, no packet filter); shorter timeouts make a
    // small network converge and notice dead peers faster.
    let listen = ListenConfig::Ipv4 {
        ip: Ipv4Addr::LOCALHOST,
        port: args.port,
    };
    let config = ConfigBuilder::new(listen)
        .query_peer_timeout(Duration::from_secs(1))
        .query_timeout(Duration::from_secs(5))
        .ping_interval(Duration::from_secs(5))
        .build();
    let mut discv5 = Discv5::new(local, key, config)?;

    // Seeds from peerlog and the bootnodes go into the routing table before the start.
    let seeds = db.query_seed_records::<CombinedKey>(SEEDS, SEED_MAX_AGE);
    for record in seeds.iter().chain(&args.bootnodes) {
        if let Err(e) = discv5.add_enr(record.clone()) {
            eprintln!("not added {}: {e}", record.to_base64());
        }
    }
    println!("seeds {} records {}", seeds.len(), db.len());

    discv5.start().await.map_err(|e| format!("start: {e}"))?;
    let mut events = discv5
        .event_stream()
        .await
        .map_err(|e| format!("event stream: {e}"))?;
    let discv5 = Arc::new(discv5);
    let cache = PeerCache { db, self_id };
    let mut stored_seq = seq;

    let mut query = tokio::time::interval(Duration::from_secs(1));
    let mut status = tokio::time::interval(Duration::from_secs(1));
    let query_running = Arc::new(AtomicBool::new(false));
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Discovered(record)) => {
                    cache.record(&record)?;
                }
                Some(Event::SessionEstablished(record, addr)) => cache.live(&record, addr.ip())?,
                Some(_) => {}
                None => break,
            },
            _ = query.tick() => {
                // A lookup of a random id, one at a time (the future is 'static: spawn it).
                if !query_running.swap(true, Ordering::SeqCst) {
                    let lookup = discv5.find_node(enr::NodeId::random());
                    let running = query_running.clone();
                    tokio::spawn(async move {
                        let _ = lookup.await;
                        running.store(false, Ordering::SeqCst);
                    });
                }
            }
            _ = status.tick() => {
                let (connected, table) = cache.snapshot(&discv5)?;
                // discv5 bumps our record's seq itself when it learns a new address of ours.
                let seq = discv5.local_enr().seq();
                if seq > stored_seq {
                    cache.db.store_local_seq(seq)?;
                    stored_seq = seq;
                }
                println!("connected {connected} table {table} cached {}", cache.db.len());
            }
        }
    }
    cache.db.close()?;
    Ok(())
}

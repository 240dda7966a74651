//! A discv5 node ([sigp/discv5](https://github.com/sigp/discv5) 0.12) whose peer cache is
//! peerlog, through `peerlog-discv5`: it finds its peers again after a restart, or a
//! `kill -9`, without any bootnode.
//!
//! Two nodes on 127.0.0.1, in two terminals:
//!
//! ```text
//! cargo run -p peerlog-discv5 --example discv5_node -- --port 9000 --db /tmp/node-a --key-file /tmp/node-a.key
//! # copy the `enr:-…` that the first line shows, then in the second terminal:
//! cargo run -p peerlog-discv5 --example discv5_node -- --port 9001 --db /tmp/node-b --key-file /tmp/node-b.key \
//!     --bootnode enr:-…
//! ```
//!
//! Both show `connected 1` within a few seconds. Stop node b (Ctrl-C or `kill -9`) and start
//! it again without `--bootnode`: it reconnects to node a from the records peerlog kept, with
//! a higher `seq` for its own record. The key file (the secret key in hex, mode 0600) is
//! created when missing.
//!
//! Output (one line each, for people and for `tests/rejoin.rs`):
//!
//! ```text
//! enr enr:-…                          this node's record, at start
//! seq 1754321098766                   its seq: one above the last one peerlog stored
//! seeds 3 records 5                   records from peerlog added to the table, records kept
//! connected 2 table 4 cached 5        every second: connected / all table entries, records kept
//! ```

use std::error::Error;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use discv5::{ConfigBuilder, Discv5, Enr, ListenConfig};
use peerlog::enr::{self, CombinedKey};
use peerlog::{NodeDb, NodeId};

/// The protocol version the database is opened with (another one wipes it).
const PROTOCOL_VERSION: u64 = 5;

const USAGE: &str = "usage: discv5_node --port P --db DIR --key-file FILE [--bootnode ENR]...";

struct Args {
    port: u16,
    db: PathBuf,
    key_file: PathBuf,
    bootnodes: Vec<Enr>,
}

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

/// The secp256k1 secret key in `path` (hex), created (mode 0600) when the file is missing.
fn load_or_create_key(path: &Path) -> Result<CombinedKey, Box<dyn Error>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut secret = hex::decode(text.trim())?;
            Ok(CombinedKey::secp256k1_from_bytes(&mut secret)?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = CombinedKey::generate_secp256k1();
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
    let db = Arc::new(NodeDb::open(
        &args.db,
        PROTOCOL_VERSION,
        NodeId::from_key(&key)?,
    )?);
    db.ensure_expirer();

    // Our record, one seq above the last one peerlog stored (never backwards).
    let mut builder = Enr::builder();
    builder.ip4(Ipv4Addr::LOCALHOST).udp4(args.port);
    let local = peerlog_discv5::local_enr(&db, &key, builder)?;
    println!("enr {}", local.to_base64());
    println!("seq {}", local.seq());

    // Shorter timeouts than the defaults make a small network converge faster.
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
    for record in &args.bootnodes {
        if let Err(e) = discv5.add_enr(record.clone()) {
            eprintln!("not added {}: {e}", record.to_base64());
        }
    }
    discv5.start().await.map_err(|e| format!("start: {e}"))?;
    let discv5 = Arc::new(discv5);

    // peerlog as the peer cache: seeds now (peers that answered within a day), then events,
    // a table snapshot every second, and the local seq.
    // Every node of this example runs on 127.0.0.1, one /24: no spread over subnets here (a
    // node on the Internet keeps the default of 2 seeds a subnet).
    let cache_config = peerlog_discv5::Config::default()
        .snapshot_interval(Duration::from_secs(1))
        .seed_max_age(Duration::from_secs(86_400))
        .seeds_per_subnet(usize::MAX);
    let cache = peerlog_discv5::attach(discv5.clone(), db.clone(), cache_config).await?;
    println!("seeds {} records {}", cache.seeded_at_start(), db.len());

    let mut status = tokio::time::interval(Duration::from_secs(1));
    let lookup_running = Arc::new(AtomicBool::new(false));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = status.tick() => {
                // A lookup of a random id, one at a time, keeps the table moving.
                if !lookup_running.swap(true, Ordering::SeqCst) {
                    let lookup = discv5.find_node(enr::NodeId::random());
                    let running = lookup_running.clone();
                    tokio::spawn(async move {
                        let _ = lookup.await;
                        running.store(false, Ordering::SeqCst);
                    });
                }
                let entries = discv5.table_entries();
                let connected = entries.iter().filter(|(_, _, s)| s.is_connected()).count();
                println!("connected {connected} table {} cached {}", entries.len(), db.len());
            }
        }
    }
    let stats = cache.stop().await?;
    eprintln!("stopped: {stats:?}");
    Ok(())
}

//! More events than discv5's event channel holds: 150 peers on 127.0.0.1 open sessions with
//! one node at once while nobody reads its event stream, so discv5 keeps at most 30 events
//! (its channel's size) and drops the rest. The events that survived go through the
//! cache's event path (`PeerCache::on_event`), and the periodic snapshot still records every
//! routing table entry, with a pong for each connected one.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use discv5::{ConfigBuilder, Discv5, Enr, Event, ListenConfig};
use peerlog::enr::CombinedKey;
use peerlog::{Durability, NodeDb, NodeId, Options};

const PEERS: usize = 150;

/// Distinct free UDP ports on 127.0.0.1 (all bound at once, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

/// A discv5 node on 127.0.0.1:`port`; the hub's event channel holds 30 events (it does not
/// report discovered peers), the peers wait long for answers (debug builds sign slowly).
fn node(port: u16, hub: bool) -> Discv5 {
    let key = CombinedKey::generate_secp256k1();
    let local = Enr::builder()
        .ip4(Ipv4Addr::LOCALHOST)
        .udp4(port)
        .build(&key)
        .unwrap();
    let listen = ListenConfig::Ipv4 {
        ip: Ipv4Addr::LOCALHOST,
        port,
    };
    let mut config = ConfigBuilder::new(listen);
    config
        .request_timeout(Duration::from_secs(10))
        .request_retries(2);
    if hub {
        config.disable_report_discovered_peers();
    }
    let config = config.build();
    Discv5::new(local, key, config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_records_every_table_entry_when_discv5_drops_events() {
    let started = Instant::now();
    let ports = free_ports(PEERS + 1);
    let dir = tempfile::tempdir().unwrap();

    let mut hub = node(ports[0], true);
    hub.start().await.unwrap();
    let hub_enr = hub.local_enr();
    let self_id = NodeId::from_enr(&hub_enr).unwrap();
    let hub = Arc::new(hub);
    // Every write synced: a slow database, as on a busy disk.
    let options = Options {
        durability: Durability::SyncEachWrite,
        ..Options::default()
    };
    let db = Arc::new(NodeDb::open_with(dir.path(), 5, self_id, options).unwrap());
    // The test holds discv5's one event stream and reads nothing until the flood is over.
    let mut events = hub.event_stream().await.unwrap();
    let config = peerlog_discv5::Config::default().snapshot_interval(Duration::from_millis(500));
    let cache = peerlog_discv5::attach_without_events(hub.clone(), db.clone(), config);

    // The flood: every peer pings the hub at once (a session each).
    let mut peers = Vec::new();
    for &port in &ports[1..] {
        let mut peer = node(port, false);
        peer.start().await.unwrap();
        peers.push(Arc::new(peer));
    }
    let pings: Vec<_> = peers
        .iter()
        .map(|peer| {
            let ping = peer.send_ping(hub_enr.clone());
            tokio::spawn(ping)
        })
        .collect();
    let mut answered = 0;
    for ping in pings {
        if matches!(ping.await, Ok(Ok(_))) {
            answered += 1;
        }
    }
    // More sessions than the hub's channel holds events (30): some events were dropped.
    assert!(
        answered > 30,
        "only {answered} of {PEERS} peers reached the hub"
    );

    // What survived in discv5's channel goes through the cache's event path.
    let mut sessions = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event, Event::SessionEstablished(..)) {
            sessions += 1;
        }
        cache.on_event(&event);
    }
    eprintln!(
        "{answered} sessions opened, {sessions} SessionEstablished events kept by discv5, table {}",
        hub.table_entries().len()
    );
    assert!(
        sessions < answered,
        "discv5 kept every event ({sessions} of {answered}): no flood"
    );

    // The next snapshots record every entry of the table, events or not.
    let missing = |db: &NodeDb| -> Vec<String> {
        hub.table_entries()
            .iter()
            .filter_map(|(_, record, status)| {
                let id = NodeId::from_enr(record).unwrap();
                let ip = IpAddr::V4(record.ip4().unwrap());
                let stored = db.record::<CombinedKey>(&id);
                let ok = stored.is_some_and(|r| r.seq() >= record.seq())
                    && (!status.is_connected() || db.last_pong_from(&id, ip).is_some());
                (!ok).then(|| format!("{id} connected={}", status.is_connected()))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = missing(&db);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "table entries not in the database after 20 s: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let table: HashSet<NodeId> = hub
        .table_entries()
        .iter()
        .map(|(_, r, _)| NodeId::from_enr(r).unwrap())
        .collect();
    assert!(table.len() >= 16, "the table holds {} entries", table.len());

    let stats = cache.stop().await.unwrap();
    assert_eq!(stats.errors, 0);
    assert!(stats.snapshots >= 1);
    eprintln!("{stats:?}; {:?}", started.elapsed());
    drop(peers); // each shuts its service down
}

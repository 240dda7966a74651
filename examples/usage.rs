//! The README's library example, as a program: `cargo run --example usage`.
//! `tests/readme.rs` runs it and checks that the README shows exactly these lines (between
//! the markers, plus the `use` lines), so the README cannot drift from code that works.

use std::time::{Duration, SystemTime};

use peerlog::{Durability, Node, NodeDb, NodeId, Options};

pub fn main() -> Result<(), peerlog::Error> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("nodes");
    // README begin
    let me: NodeId = "11".repeat(64).parse()?;
    // Protocol version 5. Opening with another version later wipes the database.
    let db = NodeDb::open(&path, 5, me)?;

    let peer: Node = format!(
        "enode://{}@203.0.113.7:30303?discport=30301",
        "22".repeat(64)
    )
    .parse()?;
    db.update_node(&peer)?;
    db.update_last_ping(&peer.id, SystemTime::now())?;
    db.update_last_pong(&peer.id, SystemTime::now())?;
    db.update_find_fails(&peer.id, 1)?;

    // Up to 30 random peers that answered within 5 days, never ourselves, all equally likely.
    let seeds = db.query_seeds(30, Duration::from_secs(5 * 86_400));
    assert_eq!(seeds, vec![peer.clone()]);

    db.ensure_expirer(); // drop nodes silent for 24 h, every hour, in the background
    db.close()?;

    // Power-loss safety at high throughput: one fdatasync shared by many writes.
    let opts = Options {
        durability: Durability::GroupCommit {
            max_delay: Duration::from_millis(10),
        },
        ..Options::default()
    };
    let db = NodeDb::open_with(&path, 5, me, opts)?;
    assert_eq!(db.node(&peer.id), Some(peer));
    assert!(db.recovery().problems.is_empty()); // what opening found: damage, torn tail, holes
    db.sync()?; // everything so far is on stable storage
                // README end
    Ok(())
}

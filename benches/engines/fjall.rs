//! fjall 3, an LSM tree. Default: every write goes to the OS (one `write()` of its journal
//! per operation), not to disk: the same guarantee as peerlog's `Durability::Process`.
//! `sync_each` adds `persist(SyncData)` after each operation, matching `SyncEachWrite`.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

pub struct Fjall {
    db: Database,
    nodes: Keyspace,
    sync_each: bool,
}

impl Fjall {
    pub fn open(dir: &Path, sync_each: bool) -> Fjall {
        let db = Database::builder(dir).open().expect("open fjall");
        let nodes = db
            .keyspace("nodes", KeyspaceCreateOptions::default)
            .expect("fjall keyspace");
        Fjall {
            db,
            nodes,
            sync_each,
        }
    }

    fn persist(&self) {
        if self.sync_each {
            self.db
                .persist(PersistMode::SyncData)
                .expect("fjall persist");
        }
    }
}

impl super::Engine for Fjall {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.nodes.insert(key, value).expect("fjall insert");
        self.persist();
    }

    fn delete(&mut self, key: &[u8]) {
        self.nodes.remove(key).expect("fjall remove");
        self.persist();
    }
}

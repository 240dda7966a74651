//! redb 3, a copy-on-write B-tree. One write transaction per operation. Its default,
//! `Durability::Immediate`, fsyncs every commit: the same guarantee as peerlog's
//! `SyncEachWrite`. `Durability::None` commits without any guarantee (a crash rolls back to
//! the last durable commit), weaker than peerlog's default; shown for reference only.

use std::path::Path;

use redb::{Database, Durability, TableDefinition};

const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("nodes");

pub struct Redb {
    db: Database,
    durability: Durability,
}

impl Redb {
    pub fn open(dir: &Path, durable: bool) -> Redb {
        let db = Database::create(dir.join("nodes.redb")).expect("open redb");
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        Redb { db, durability }
    }

    fn commit(&mut self, change: impl FnOnce(&mut redb::Table<&[u8], &[u8]>)) {
        let mut tx = self.db.begin_write().expect("redb begin");
        tx.set_durability(self.durability).expect("redb durability");
        {
            let mut table = tx.open_table(NODES).expect("redb table");
            change(&mut table);
        }
        tx.commit().expect("redb commit");
    }

    /// Loads a whole workload quickly (one durable transaction per 10 000 operations), to
    /// prepare a database for the reopen benchmark; the final state is the same.
    pub fn load(&mut self, ops: impl Iterator<Item = crate::common::Op>) {
        let mut batch = Batch::default();
        let mut ops = ops.peekable();
        while ops.peek().is_some() {
            batch.0.clear();
            for op in ops.by_ref().take(10_000) {
                super::apply(&mut batch, &op);
            }
            let durability = std::mem::replace(&mut self.durability, Durability::Immediate);
            self.commit(|table| {
                for (key, value) in &batch.0 {
                    match value {
                        Some(value) => table.insert(key.as_slice(), value.as_slice()),
                        None => table.remove(key.as_slice()),
                    }
                    .expect("redb load");
                }
            });
            self.durability = durability;
        }
    }
}

/// Operations collected for one transaction.
#[derive(Default)]
struct Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl super::Engine for Batch {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.0.push((key.to_vec(), Some(value.to_vec())));
    }

    fn delete(&mut self, key: &[u8]) {
        self.0.push((key.to_vec(), None));
    }
}

impl super::Engine for Redb {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        self.commit(|table| {
            table.insert(key, value).expect("redb insert");
        });
    }

    fn delete(&mut self, key: &[u8]) {
        self.commit(|table| {
            table.remove(key).expect("redb remove");
        });
    }
}

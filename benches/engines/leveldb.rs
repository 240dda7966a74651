//! rusty-leveldb 3, the LevelDB that go-ethereum's nodedb uses, in Rust. Its `put` appends
//! to an 8 KiB user-space buffer and never reaches the OS until that fills: *buffered*, weaker
//! than peerlog's default. `flush_each` writes each operation as a batch with `sync = true`,
//! which in rusty-leveldb flushes the buffer to the OS (one `write()`, no fsync): the same
//! guarantee as go-ethereum's goleveldb default and peerlog's `Durability::Process`.

use std::path::Path;

use rusty_leveldb::{Options, WriteBatch, DB};

pub struct Leveldb {
    db: DB,
    flush_each: bool,
}

impl Leveldb {
    pub fn open(dir: &Path, flush_each: bool) -> Leveldb {
        let options = Options {
            create_if_missing: true,
            ..Options::default()
        };
        Leveldb {
            db: DB::open(dir, options).expect("open rusty-leveldb"),
            flush_each,
        }
    }

    pub fn close(mut self) {
        self.db.close().expect("close rusty-leveldb");
    }
}

impl super::Engine for Leveldb {
    fn put(&mut self, key: &[u8], value: &[u8]) {
        if self.flush_each {
            let mut batch = WriteBatch::default();
            batch.put(key, value);
            self.db.write(batch, true).expect("leveldb write");
        } else {
            self.db.put(key, value).expect("leveldb put");
        }
    }

    fn delete(&mut self, key: &[u8]) {
        if self.flush_each {
            let mut batch = WriteBatch::default();
            batch.delete(key);
            self.db.write(batch, true).expect("leveldb write");
        } else {
            self.db.delete(key).expect("leveldb delete");
        }
    }
}

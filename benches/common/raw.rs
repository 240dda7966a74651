//! The raw baselines, shared by `baseline.rs`, `replay.rs` and `ratios.rs`: the identical
//! record bytes written or scanned without peerlog.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use memmap2::Mmap;

use super::{frame_len, segment_files, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};

/// Size of the preallocated file of [`prealloc_fdatasync_each`].
const PREALLOC: u64 = 256 << 20;

fn fresh_file(dir: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("raw.log"))
        .expect("raw file")
}

/// Times writing `iters` frames (cycling) to a fresh file in `dir`, one `write()` each, with
/// one `fdatasync()` every `sync_every` records (never if 0).
pub fn append(frames: &[Vec<u8>], dir: &Path, iters: u64, sync_every: u64) -> Duration {
    let mut file = fresh_file(dir);
    let started = Instant::now();
    for i in 0..iters {
        file.write_all(&frames[i as usize % frames.len()]).unwrap();
        if sync_every != 0 && (i + 1) % sync_every == 0 {
            file.sync_data().unwrap();
        }
    }
    if sync_every != 0 && !iters.is_multiple_of(sync_every) {
        file.sync_data().unwrap();
    }
    started.elapsed()
}

/// Times writing `iters` frames through a 64 KiB `BufWriter`, flushed at the end.
pub fn buffered(frames: &[Vec<u8>], dir: &Path, iters: u64) -> Duration {
    let mut out = BufWriter::with_capacity(64 << 10, fresh_file(dir));
    let started = Instant::now();
    for i in 0..iters {
        out.write_all(&frames[i as usize % frames.len()]).unwrap();
    }
    out.flush().unwrap();
    started.elapsed()
}

/// Times `pwrite()` + `fdatasync()` of `iters` frames into a file preallocated with
/// `fallocate`, as peerlog preallocates its segments.
pub fn prealloc_fdatasync_each(frames: &[Vec<u8>], dir: &Path, iters: u64) -> Duration {
    let file = fresh_file(dir);
    fs4::fs_std::FileExt::allocate(&file, PREALLOC).unwrap();
    file.sync_all().unwrap();
    let mut pos = 0u64;
    let started = Instant::now();
    for i in 0..iters {
        let frame = &frames[i as usize % frames.len()];
        if pos + frame.len() as u64 > PREALLOC {
            pos = 0;
        }
        file.write_all_at(frame, pos).unwrap();
        pos += frame.len() as u64;
        file.sync_data().unwrap();
    }
    started.elapsed()
}

/// Maps every segment of `dir` and checks each record's salted CRC-32, decoding nothing;
/// returns the records.
pub fn mmap_crc_scan(dir: &Path) -> u64 {
    let mut records = 0;
    for path in segment_files(dir) {
        let file = File::open(&path).expect("open segment");
        // SAFETY: the benchmark's files are not modified while mapped.
        let map = unsafe { Mmap::map(&file) }.expect("map segment");
        let salt: [u8; 8] = map[24..32].try_into().unwrap();
        let seed = crc32fast::hash(&salt);
        let mut pos = SEGMENT_HEADER_LEN;
        while let Some(len) = frame_len(&map[pos..]) {
            let payload = u16::from_le_bytes([map[pos + 12], map[pos + 13]]) as usize;
            let stored = u32::from_le_bytes(map[pos..pos + 4].try_into().unwrap());
            let mut hasher = crc32fast::Hasher::new_with_initial(seed);
            hasher.update(&map[pos + 4..pos + FRAME_HEADER_LEN + payload]);
            assert_eq!(hasher.finalize(), stored, "{} at {pos}", path.display());
            records += 1;
            pos += len;
        }
    }
    records
}

/// The ceiling of group commit without peerlog: `threads` threads each `pwrite()` a frame into
/// a preallocated file, then meet at a barrier whose leader runs one `fdatasync()` for all of
/// them while they wait at a second barrier: perfect batching, no bookkeeping. With
/// `fdatasync` false, only the two barriers: what waking the threads costs per round.
/// Returns the time for `iters` writes in all (each thread does the same share of them).
pub fn barrier_group_commit(
    frames: &[Vec<u8>],
    dir: &Path,
    threads: u64,
    iters: u64,
    fdatasync: bool,
) -> Duration {
    let file = fresh_file(dir);
    fs4::fs_std::FileExt::allocate(&file, PREALLOC).unwrap();
    file.sync_all().unwrap();
    let rounds = iters.div_ceil(threads);
    let next = std::sync::atomic::AtomicU64::new(0);
    let (written, synced) = (
        std::sync::Barrier::new(threads as usize),
        std::sync::Barrier::new(threads as usize),
    );
    let ready = std::sync::Barrier::new(threads as usize + 1);
    let elapsed = std::thread::scope(|s| {
        for t in 0..threads {
            let (file, next, written, synced, ready) = (&file, &next, &written, &synced, &ready);
            s.spawn(move || {
                ready.wait();
                for round in 0..rounds {
                    let frame = &frames[((round * threads + t) as usize) % frames.len()];
                    let len = frame.len() as u64;
                    let at = next.fetch_add(len, std::sync::atomic::Ordering::Relaxed) % PREALLOC;
                    file.write_all_at(frame, at.min(PREALLOC - len)).unwrap();
                    if written.wait().is_leader() && fdatasync {
                        file.sync_data().unwrap();
                    }
                    synced.wait();
                }
                ready.wait();
            });
        }
        ready.wait();
        let started = Instant::now();
        ready.wait();
        started.elapsed()
    });
    elapsed.mul_f64(iters as f64 / (rounds * threads) as f64)
}

/// The ceiling of a *gathering* group commit without peerlog, built from the cheapest
/// primitives peerlog can use: `threads` threads each store a frame into a preallocated file
/// mapped in memory, as peerlog appends to its segments (an `fdatasync` then writes back the
/// pages the stores dirtied, and the next store to a page written back faults to dirty it
/// again, as in peerlog), and register (an atomic counter); the last of a round to register runs one
/// `fdatasync()` for all of them (none if `fdatasync` is false), then opens the next round and
/// unparks the others, each of which unparks another (the wake-ups are shared, as peerlog
/// shares them). No bookkeeping, no lock, every `fdatasync` covers every thread: a round costs
/// one `fdatasync` plus one round of wake-ups, the least a round can cost when each thread
/// has one write in flight and all of them are to share it. Returns the time for `iters`
/// writes in all (each thread does the same share of them).
pub fn gathered_group_commit(
    frames: &[Vec<u8>],
    dir: &Path,
    threads: u64,
    iters: u64,
    fdatasync: bool,
) -> Duration {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Mutex;

    // One file for every call, preallocated once, and stores that go on where the last call
    // left off: as peerlog appends to a segment it keeps. A fresh file per call would free the
    // last one's 256 MiB first, and on ext4 mounted with `discard` the next journal commits
    // (which these `fdatasync`s wait for) would discard those blocks.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = dir.join("gathered.log");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .expect("raw file");
    if file.metadata().unwrap().len() < PREALLOC {
        fs4::fs_std::FileExt::allocate(&file, PREALLOC).unwrap();
        file.sync_all().unwrap();
    }
    // SAFETY: the file is this bench's own, preallocated to PREALLOC bytes before it is
    // mapped and never shrunk while mapped, so every store below the length is backed.
    let map = memmap2::MmapRaw::map_raw(&file).unwrap();
    let base = map.as_mut_ptr() as usize;
    let rounds = iters.div_ceil(threads);
    let next = &NEXT;
    // Threads registered in the current round, and the rounds completed.
    let arrived = AtomicUsize::new(0);
    let completed = AtomicU64::new(0);
    let parked: Mutex<Vec<std::thread::Thread>> = Mutex::new(Vec::new());
    let to_wake: Mutex<Vec<std::thread::Thread>> = Mutex::new(Vec::new());
    let wake_one = |to_wake: &Mutex<Vec<std::thread::Thread>>| {
        let next = to_wake.lock().unwrap().pop();
        next.map(|t| t.unpark()).is_some()
    };
    let ready = std::sync::Barrier::new(threads as usize + 1);
    let elapsed = std::thread::scope(|s| {
        for t in 0..threads {
            let (file, arrived, completed, parked, to_wake, ready) =
                (&file, &arrived, &completed, &parked, &to_wake, &ready);
            s.spawn(move || {
                ready.wait();
                for round in 0..rounds {
                    let frame = &frames[((round * threads + t) as usize) % frames.len()];
                    let len = frame.len() as u64;
                    let at = next.fetch_add(len, Ordering::Relaxed) % PREALLOC;
                    let at = at.min(PREALLOC - len) as usize;
                    // SAFETY: `at + len` is within the mapping (PREALLOC bytes, all backed by
                    // the file), and the ranges the threads store into are disjoint (each
                    // takes its own from `next`) except after wrapping around 256 MiB, far
                    // beyond any round's writes: no two threads store to the same bytes at
                    // once, and nothing reads them.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            frame.as_ptr(),
                            (base + at) as *mut u8,
                            frame.len(),
                        );
                    }
                    // Registered under the lock of the parked list, so that the last to
                    // arrive finds every other one in it.
                    let mut list = parked.lock().unwrap();
                    if arrived.fetch_add(1, Ordering::AcqRel) + 1 == threads as usize {
                        let others = std::mem::take(&mut *list);
                        drop(list);
                        if fdatasync {
                            file.sync_data().unwrap();
                        }
                        arrived.store(0, Ordering::Release);
                        completed.store(round + 1, Ordering::Release);
                        to_wake.lock().unwrap().extend(others);
                        while wake_one(to_wake) {}
                    } else {
                        list.push(std::thread::current());
                        drop(list);
                        while completed.load(Ordering::Acquire) <= round {
                            std::thread::park();
                        }
                        wake_one(to_wake);
                    }
                }
                ready.wait();
            });
        }
        ready.wait();
        let started = Instant::now();
        ready.wait();
        started.elapsed()
    });
    elapsed.mul_f64(iters as f64 / (rounds * threads) as f64)
}

//! One rule for what a database directory and its `archive/` may hold (docs/FORMAT.md,
//! "Files in a database directory"): files and directories not named like peerlog's are
//! ignored by `NodeDb::open` and every reader, and never removed or changed; only a file
//! named like a segment whose header cannot be read is refused (and reported by `verify`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use peerlog::inspect::{self, no_progress, InspectError};
use peerlog::{Error, NodeDb, Options};

mod common;
use common::{at, id, node};

const VERSION: u64 = 3;

fn options() -> Options {
    Options {
        segment_size: 4096,
        keep_history: true,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    }
}

/// A database with an archive: 40 nodes pinged, compacted with history kept, then 20 more.
fn database(dir: &Path) {
    let db = NodeDb::open_with(dir, VERSION, id(0), options()).unwrap();
    for n in 1..=40 {
        db.update_node(&node(n)).unwrap();
        db.update_last_ping(&id(n), at(n)).unwrap();
    }
    db.compact().unwrap();
    for n in 41..=60 {
        db.update_node(&node(n)).unwrap();
    }
    db.close().unwrap();
    assert!(dir.join(peerlog::ARCHIVE_DIR).read_dir().unwrap().count() > 0);
}

/// What an operator or a file system leaves beside a database: files and directories with
/// names peerlog never gives (a mount point's `lost+found/`, notes, a name that is not UTF-8,
/// `.tmp` files that are not a segment's), and `damaged/` folders holding what a salvage moved
/// there (never read, although named like segments). Returns every path created.
fn add_strays(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let archive = dir.join("archive");
    let mut made = Vec::new();
    let mut file = |path: PathBuf, bytes: &[u8]| {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        made.push(path);
    };
    file(dir.join("notes.txt"), b"my notes");
    file(dir.join("lost+found/#1234"), b"a block fsck found");
    file(dir.join("download.tmp"), b"someone else's");
    file(dir.join("0000000000000001.seg.bak"), b"a backup");
    file(
        dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9")),
        b"latin-1 name",
    );
    file(
        dir.join("damaged/0000000000000005.seg"),
        b"moved aside earlier",
    );
    file(archive.join("README"), b"kept by hand");
    file(
        archive.join("old/0000000000000001.seg"),
        b"in a folder of its own",
    );
    file(
        archive.join("damaged/0000000000000001.seg"),
        b"moved aside earlier",
    );
    made
}

/// Every file under `dir`, with its bytes (directories as their paths alone).
fn tree(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.push((path.clone(), None));
            all.extend(tree(&path));
        } else {
            all.push((path.clone(), Some(fs::read(&path).unwrap())));
        }
    }
    all.sort();
    all
}

/// The stray files among `tree`.
fn strays_in(tree: &[(PathBuf, Option<Vec<u8>>)], strays: &[PathBuf]) -> Vec<(PathBuf, Vec<u8>)> {
    tree.iter()
        .filter(|(p, _)| strays.contains(p))
        .map(|(p, b)| (p.clone(), b.clone().unwrap_or_default()))
        .collect()
}

/// Everything every reader says about `dir`, as text to compare.
fn readings(dir: &Path) -> Vec<String> {
    let mut history = Vec::new();
    for n in [1, 41] {
        let entries = inspect::history(dir, &id(n), &no_progress).unwrap();
        history.push(format!(
            "{:?}",
            entries
                .iter()
                .map(|e| (&e.record, &e.file, e.offset, e.archived))
                .collect::<Vec<_>>()
        ));
    }
    let mut with_archive = Vec::new();
    inspect::export_with_archive_each(dir, &no_progress, |r| {
        with_archive.push(r);
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    let verify = inspect::verify(dir, &no_progress).unwrap();
    vec![
        format!("{:?}", inspect::state(dir, &no_progress).unwrap().peers),
        format!(
            "{:?}",
            inspect::stats(
                dir,
                &id(0),
                std::time::Duration::from_secs(60),
                &no_progress
            )
            .unwrap()
        ),
        format!("{:?} {:?}", verify.files, verify.findings),
        format!("{:?}", inspect::export(dir, &no_progress).unwrap()),
        format!("{with_archive:?}"),
        format!("{:?}", inspect::segments(dir).unwrap()),
    ]
    .into_iter()
    .chain(history)
    .collect()
}

/// Every reader gives what it gave without the strays, `verify` lists them as ignored (not
/// damage), and `NodeDb::open` opens, reads everything, writes and compacts (with history
/// kept); no stray is removed or changed by any of it.
#[test]
fn stray_files_and_directories_are_ignored_by_open_and_every_reader() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    database(dir);
    let clean = readings(dir);
    let strays = add_strays(dir);
    let before = strays_in(&tree(dir), &strays);
    assert_eq!(before.len(), strays.len());

    assert_eq!(readings(dir), clean, "a reader saw a stray file");
    let report = inspect::verify(dir, &no_progress).unwrap();
    assert!(report.is_intact(true), "{:?}", report.findings);
    let mut expected: Vec<PathBuf> = [
        "0000000000000001.seg.bak",
        "caf\u{fffd}",
        "download.tmp",
        "lost+found",
        "notes.txt",
        "archive/README",
        "archive/old",
    ]
    .iter()
    .map(|name| dir.join(name))
    .collect();
    let mut ignored: Vec<String> = report
        .ignored
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    ignored.sort();
    expected.sort();
    let expected: Vec<String> = expected
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(ignored, expected);
    assert_eq!(strays_in(&tree(dir), &strays), before);

    let db = NodeDb::open_with(dir, VERSION, id(0), options()).unwrap();
    assert_eq!(db.len(), 60);
    assert_eq!(db.node(&id(7)), Some(node(7)));
    assert_eq!(db.last_ping(&id(7)), Some(at(7)));
    db.update_node(&node(61)).unwrap();
    db.compact().unwrap();
    db.close().unwrap();
    let db = NodeDb::open_with(dir, VERSION, id(0), options()).unwrap();
    assert_eq!((db.len(), db.node(&id(61))), (61, Some(node(61))));
    db.close().unwrap();
    assert_eq!(
        strays_in(&tree(dir), &strays),
        before,
        "a stray was removed or changed"
    );
}

/// A protocol version change wipes the database, and only the database: strays, `damaged/`
/// folders and `archive/` with the strays in it stay (its segments go).
#[test]
fn a_version_wipe_removes_only_peerlog_s_segments() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    database(dir);
    let strays = add_strays(dir);
    let before = strays_in(&tree(dir), &strays);
    let db = NodeDb::open_with(dir, VERSION + 1, id(0), options()).unwrap();
    assert_eq!(db.len(), 0);
    db.close().unwrap();
    let after = tree(dir);
    assert_eq!(strays_in(&after, &strays), before);
    let archived_segments: Vec<_> = fs::read_dir(dir.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    assert!(archived_segments.is_empty(), "{archived_segments:?}");
}

/// With `wipe_on_version_change` off, another protocol version is refused, naming both
/// versions, and the directory (segments, `archive/`, strays) stays byte for byte; the version
/// `inspect::protocol_version` reads then opens it with everything in it.
#[test]
fn a_refused_version_change_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    database(dir);
    add_strays(dir);
    let before = tree(dir);
    let keep = Options {
        wipe_on_version_change: false,
        ..options()
    };
    match NodeDb::open_with(dir, VERSION + 1, id(0), keep.clone()) {
        Err(Error::VersionMismatch { found, given, .. }) => {
            assert_eq!((found, given), (VERSION, VERSION + 1));
        }
        other => panic!(
            "expected VersionMismatch, got {:?}",
            other.map(|db| db.len())
        ),
    }
    assert_eq!(tree(dir), before);
    let version = inspect::protocol_version(dir).unwrap();
    assert_eq!(version, VERSION);
    let db = NodeDb::open_with(dir, version, id(0), keep).unwrap();
    assert_eq!(db.len(), 60);
    db.close().unwrap();
}

/// A file named like a segment is a segment: in `archive/`, one whose header cannot be read
/// fails the readers of the archive with an error naming it (`verify` reports it), as one in
/// the directory fails `open`.
#[test]
fn a_file_named_like_a_segment_is_judged_by_its_header() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    database(dir);
    let bad = dir.join("archive/0000000000000099.seg");
    fs::write(&bad, b"PEERLOG\0 but cut").unwrap();
    let refused = |e: Result<_, InspectError>| match e {
        Err(InspectError::Db(Error::DamagedHeader { path, reason })) => {
            assert_eq!(path, bad);
            assert_eq!(reason, "header is 16 bytes, expected 64");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a damaged archived segment was read"),
    };
    refused(inspect::stats(dir, &id(0), Default::default(), &no_progress).map(|_| ()));
    refused(inspect::history(dir, &id(1), &no_progress).map(|_| ()));
    refused(inspect::export_with_archive_each(dir, &no_progress, |_| {
        std::ops::ControlFlow::Continue(())
    }));
    let report = inspect::verify(dir, &no_progress).unwrap();
    let findings: Vec<_> = report.findings.iter().map(|f| (&f.path, f.len)).collect();
    assert_eq!(findings, [(&bad, 16)]);
    // The live log does not read the archive.
    let db = NodeDb::open_with(dir, VERSION, id(0), options()).unwrap();
    assert_eq!(db.len(), 60);
    db.close().unwrap();

    let live = dir.join("0000000000000099.seg");
    fs::write(&live, b"").unwrap();
    match NodeDb::open_with(dir, VERSION, id(0), options()) {
        Err(Error::DamagedHeader { path, reason }) => {
            assert_eq!((path, reason.as_str()), (live, "the file is empty"))
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("opened with an empty segment"),
    }
}

/// The warnings this test binary logs, for the test that counts them.
struct Warnings(Mutex<Vec<String>>);

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static WARNINGS: Warnings = Warnings(Mutex::new(Vec::new()));

/// A node lists its directory at every open and compaction: a file it ignores is warned about
/// the first time only, while `verify` lists it every time.
#[test]
fn a_stray_file_is_warned_about_once_however_often_the_directory_is_listed() {
    log::set_logger(&WARNINGS).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().unwrap();
    database(dir.path());
    fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    fs::write(dir.path().join("archive").join("README"), "mine").unwrap();
    for _ in 0..3 {
        let db = NodeDb::open_with(dir.path(), VERSION, id(0), options()).unwrap();
        db.update_node(&node(61)).unwrap();
        db.compact().unwrap();
        db.close().unwrap();
        let report = inspect::verify(dir.path(), &no_progress).unwrap();
        assert_eq!(report.ignored.len(), 2, "{:?}", report.ignored);
    }
    let warnings = WARNINGS.0.lock().unwrap();
    for (folder, name) in [
        (dir.path().to_path_buf(), "notes.txt"),
        (dir.path().join("archive"), "README"),
    ] {
        let about = format!("{}: ignoring {name}:", folder.display());
        let count = warnings.iter().filter(|w| w.starts_with(&about)).count();
        assert_eq!(count, 1, "warnings about {name}: {warnings:#?}");
    }
}

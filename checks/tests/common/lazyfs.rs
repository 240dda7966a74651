//! LazyFS for the power-loss tests: finding the binary (or saying why they are skipped), and
//! a mount of a root directory whose unsynced writes a crash drops, with its faults FIFO.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// LazyFS's cache. With eviction off, writes beyond it go straight to the root (durable
/// without fsync), so it must exceed what a round writes (a few MiB).
const LAZYFS_CACHE: &str = "64mb";

/// Where LazyFS is, or why the tests are skipped.
pub struct LazyFs {
    pub binary: PathBuf,
    pub lib: Option<OsString>,
}

/// Writes to stderr past libtest's capture, so that a skip or a summary shows in `cargo test`.
pub fn note(text: &str) {
    let _ = writeln!(io::stderr(), "{text}");
}

pub fn lazyfs() -> Option<LazyFs> {
    let Some(binary) = std::env::var_os("PEERLOG_LAZYFS") else {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            note(
                "power-loss tests skipped: PEERLOG_LAZYFS is not set (the path of a LazyFS \
             binary; .ci/run builds one where it can and sets it)",
            )
        });
        return None;
    };
    // Asked for, it must run: a broken setup fails rather than skips.
    let binary = PathBuf::from(binary);
    assert!(
        binary.is_file(),
        "PEERLOG_LAZYFS={} is not a file",
        binary.display()
    );
    if let Err(e) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        panic!(
            "PEERLOG_LAZYFS is set but /dev/fuse cannot be opened ({e}): FUSE needs it (and root)"
        );
    }
    let fusermount = Command::new("fusermount3")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        fusermount.is_ok(),
        "PEERLOG_LAZYFS is set but fusermount3 is not on PATH: {fusermount:?}"
    );
    Some(LazyFs {
        binary,
        lib: std::env::var_os("PEERLOG_LAZYFS_LIB"),
    })
}

/// A LazyFS mount of `root` at `mnt`.
pub struct Mount {
    pub root: PathBuf,
    pub mnt: PathBuf,
    pub fifo: PathBuf,
    pub process: Child,
}

impl Mount {
    pub fn start(lazyfs: &LazyFs, base: &Path, n: usize) -> Mount {
        let root = base.join("root");
        let mnt = base.join("mnt");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&mnt).unwrap();
        let fifo = base.join("faults.fifo");
        let log = base.join(format!("lazyfs{n}.log"));
        let config = base.join(format!("lazyfs{n}.toml"));
        fs::write(
            &config,
            format!(
                "[faults]\nfifo_path=\"{}\"\n[cache]\napply_eviction=false\n\
                 [cache.simple]\ncustom_size=\"{LAZYFS_CACHE}\"\nblocks_per_page=1\n\
                 [filesystem]\nlog_all_operations=false\nlogfile=\"\"\n",
                fifo.display()
            ),
        )
        .unwrap();
        let mut command = Command::new(&lazyfs.binary);
        // LazyFS keeps only its first 10 arguments: one `-o` with every option.
        command
            .arg(&mnt)
            .arg("--config-path")
            .arg(&config)
            .arg("-f")
            .arg("-o")
            .arg(format!(
                "allow_other,modules=subdir,subdir={}",
                root.display()
            ))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(log.with_extension("stderr")).unwrap());
        if let Some(lib) = &lazyfs.lib {
            command.env("LD_LIBRARY_PATH", lib);
        }
        // SAFETY: setrlimit is async-signal-safe. No core file when LazyFS aborts (it does on
        // a clean unmount) or crashes.
        unsafe {
            command.pre_exec(|| {
                let none = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                Ok(())
            });
        }
        let mut process = command.spawn().expect("starting LazyFS");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
            let target = mnt.to_str().unwrap();
            if mounts.lines().any(|l| l.split(' ').nth(1) == Some(target)) {
                break;
            }
            if let Some(status) = process.try_wait().unwrap() {
                panic!(
                    "LazyFS exited ({status}) before mounting; its log {}:\n{}",
                    log.display(),
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "LazyFS did not mount in 20 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        Mount {
            root,
            mnt,
            fifo,
            process,
        }
    }

    /// Sends one command to LazyFS's faults FIFO. Arming is asynchronous: LazyFS reads it soon
    /// after, not before this returns.
    pub fn command(&mut self, command: &str) -> io::Result<()> {
        let line = format!("{command}\n");
        // LazyFS reads the FIFO 100 bytes at a time; a longer command is split silently.
        assert!(line.len() <= 100, "LazyFS command too long: {command}");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // Non-blocking: with nobody reading (LazyFS gone) a plain open blocks forever.
            match fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.fifo)
            {
                Ok(mut fifo) => return fifo.write_all(line.as_bytes()),
                Err(e)
                    if e.raw_os_error() == Some(libc::ENXIO)
                        && Instant::now() < deadline
                        && self.process.try_wait()?.is_none() =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn kill(&mut self) {
        let _ = self.process.kill();
    }

    pub fn exited(&mut self) -> bool {
        self.process.try_wait().unwrap().is_some()
    }

    /// Waits for LazyFS to end, then unmounts (lazily: a dead file system stays mounted, "not
    /// connected", until then). Returns how it ended.
    pub fn finish(mut self) -> String {
        let status = self.process.wait().unwrap();
        let _ = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
        match status.signal() {
            Some(s) => format!("signal {s}"),
            None => format!("exit {}", status.code().unwrap_or(-1)),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.process.try_wait().ok().flatten().is_none() {
            let _ = self.process.kill();
            let _ = self.process.wait();
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.mnt)
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

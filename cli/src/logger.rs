//! The library's log messages on stderr: warnings and errors (damage found while opening or
//! compacting a database) by default, more with `PEERLOG_LOG=info` or `debug`.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        // One line per message, as every other line peerlog prints on stderr.
        let message = record.args().to_string().replace('\n', " ");
        crate::progress::suspend(|| eprintln!("peerlog: {level}: {message}"));
    }

    fn flush(&self) {}
}

/// Installs the logger, at the level `PEERLOG_LOG` names (`error`, `warn`, `info`, `debug`,
/// `trace`, `off`), `warn` when it is unset or not a level.
pub fn install() {
    let level = std::env::var("PEERLOG_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Warn);
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(level);
    }
}

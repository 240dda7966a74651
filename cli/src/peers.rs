//! The peer file formats `import` reads and `seeds` writes, and when imported peers were last
//! known alive: what the arguments name, below the commands that use them.

use std::time::SystemTime;

use clap::ValueEnum;

/// A file of peers, in the shape a client writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PeerFormat {
    /// reth's known-peers.json: a pretty JSON array of enode URLs
    Reth,
    /// kona's bootstore.json: a compact JSON array of ENRs
    Kona,
    /// One ENR a line (`enr:-...`)
    Enr,
    /// One enode URL a line
    Enode,
}

impl PeerFormat {
    pub fn name(self) -> &'static str {
        match self {
            PeerFormat::Reth => "reth",
            PeerFormat::Kona => "kona",
            PeerFormat::Enr => "enr",
            PeerFormat::Enode => "enode",
        }
    }

    /// Whether the format holds signed records (ENRs) rather than enode URLs.
    pub fn holds_records(self) -> bool {
        matches!(self, PeerFormat::Kona | PeerFormat::Enr)
    }
}

/// When imported peers were last known alive (`--pong-at`).
#[derive(Clone, Copy, Debug)]
pub enum PongAt {
    /// At this time.
    Time(SystemTime),
    /// At the file's modification time.
    Mtime,
}

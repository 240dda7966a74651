//! Reading a log for audit: history, verification, statistics and export (used by the `peerlog` command).

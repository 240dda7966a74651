//! Helpers of the tests in `checks/tests/`: peerlog's own test helpers (`tests/common/`,
//! included from there: node ids and signed records numbered by `n`, scratch directories), and
//! the LazyFS mount of the power-loss tests (`lazyfs`).
#![allow(dead_code, unused_imports)]

pub mod lazyfs;

#[path = "../../../tests/common/mod.rs"]
mod peerlog_common;

pub use peerlog_common::*;

//! Helpers of the tests that re-execute their own binary as a child process (the crash and
//! power-loss tests): a seeded mixer, the environment a child is started with, and its lines
//! to the parent.

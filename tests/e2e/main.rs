//! End-to-end tests of the `mockforge` binary: each test starts the real process on loopback
//! ports with its own data directory and talks to it over HTTP.

mod commands;
mod harness;
mod round_trip;

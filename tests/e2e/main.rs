//! End-to-end tests of the `mockforge` binary: each test starts the real process on loopback
//! ports with its own data directory and talks to it over HTTP.

mod commands;
mod harness;
mod multi_node;
mod plugins;
mod round_trip;

//! Integration tests of the edge: a real server on loopback, the real engine and an in-memory
//! control plane.

mod chaos;
mod connection;
mod hot_swap;
mod lifecycle;
mod limits;
mod plugins;
mod routing;
mod support;
mod telemetry;

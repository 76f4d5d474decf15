//! Integration tests of the edge: a real server on loopback, the real engine and an in-memory
//! control plane.

mod chaos;
mod connection;
mod lifecycle;
mod limits;
mod plugins;
mod proxy;
mod routing;
mod support;
mod telemetry;

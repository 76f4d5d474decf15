//! Integration tests of the edge: a real server on loopback, the real engine and an in-memory
//! control plane.

mod chaos;
mod connection;
mod connection_limit;
mod hot_swap;
mod lifecycle;
mod limits;
mod plugins;
mod proxy;
mod quota_sync;
mod remote_plugins;
mod routing;
mod support;
mod telemetry;
mod tls;

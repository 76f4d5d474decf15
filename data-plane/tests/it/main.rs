//! Integration tests of the edge: a real server on loopback, the real engine and an in-memory
//! control plane.

mod connection;
mod lifecycle;
mod routing;
mod support;

//! Integration tests: each test starts the real control plane on a loopback port with its own
//! database (see `harness`).

mod harness;

mod auth;
mod deployments;
mod health;
mod lifecycle;
mod organizations;
mod redis;
mod tokens;

//! Integration tests: each test starts the real control plane on a loopback port with its own
//! database (see `harness`).

mod harness;

mod accounts;
mod auth;
mod billing;
mod deployments;
mod evidence;
mod health;
mod legal;
mod lifecycle;
mod marketplace;
mod organizations;
mod redis;
mod security;
mod settings;
mod tokens;
mod usage;

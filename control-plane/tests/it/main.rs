//! Integration tests: each test starts the real control plane on a loopback port with its own
//! database (see `harness`).

mod harness;

mod accounts;
mod admin;
mod auth;
mod billing;
mod deployments;
mod evidence;
mod gdpr;
mod health;
mod legal;
mod lifecycle;
mod marketplace;
mod oauth;
mod organizations;
mod redis;
mod security;
mod settings;
mod tokens;
mod usage;
mod verification;

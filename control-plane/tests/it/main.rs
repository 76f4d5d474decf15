//! Integration tests: each test starts the real control plane on a loopback port with its own
//! database (see `harness`).

mod harness;

mod accounts;
mod admin;
mod auth;
mod billing;
mod deployment_config;
mod deployments;
mod documents;
mod evidence;
mod fake_s3;
mod gdpr;
mod health;
mod legal;
mod lifecycle;
mod limit_overrides;
mod marketplace;
mod marketplace_s3;
mod oauth;
mod openapi;
mod organizations;
mod redis;
mod replicas;
mod request_id;
mod security;
mod settings;
mod storage_quota;
mod tokens;
mod usage;
mod verification;

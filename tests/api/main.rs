//! The integration suite: the real application over real HTTP, one binary so it compiles once.
//! Runs on SQLite by default and on PostgreSQL when `TEST_DATABASE_URL` is set.

mod accounts;
mod admin;
mod admin_users;
mod apps;
mod audit;
mod bad_input;
mod cli;
mod cors;
mod hash_queue;
mod health;
mod helpers;
mod identity_sync;
mod import;
mod inspect;
mod login;
mod mail;
mod memory;
mod metrics;
mod migrations;
mod mock_layer;
mod openapi;
mod persistence;
mod replicas;
mod shutdown;
mod store;
mod throttle;
mod tokens;

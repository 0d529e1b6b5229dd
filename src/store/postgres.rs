//! What is particular to PostgreSQL: connection options and migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::DatabaseUrl;

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Ten connections per process: several replicas must stay under PostgreSQL's default limit of
/// 100 connections in total. TLS, timeouts and the like come from the URL's query parameters
/// (`sslmode=verify-full`, …).
pub(super) async fn connect(url: &DatabaseUrl) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url.expose())?.application_name("layer-idp");
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

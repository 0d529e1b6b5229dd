//! What is particular to PostgreSQL: connection options and migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::DatabaseUrl;

/// Connections opened before the first request and kept open while idle. Opening one costs a
/// backend process and, by default, a TLS handshake: about 90 ms on a busy 2-core host, and
/// every request waiting on the pool waits that long (the slowest 1 % of identity tokens at
/// half load, before this: DEVELOPERS.md, "Issue 12, third pass"). The token path alone keeps
/// two busy (its session reads and its nonce ledger); two more serve everything else.
pub(super) const MIN_CONNECTIONS: u32 = 4;

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Ten connections per process at most: several replicas must stay under PostgreSQL's default
/// limit of 100 connections in total. TLS, timeouts and the like come from the URL's query
/// parameters (`sslmode=verify-full`, …).
pub(super) async fn connect(url: &DatabaseUrl) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url.expose())?.application_name("layer-idp");
    PgPoolOptions::new()
        .max_connections(10)
        .min_connections(MIN_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

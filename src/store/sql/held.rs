//! A pooled connection that one serial caller keeps between its calls.
//!
//! The token path's batches (`idp/session_lookups.rs`, `idp/nonces.rs`) each run one query
//! after another on one task. Through the pool, every query paid two more round trips to the
//! connection: sqlx pings a connection when it goes back to the pool (in a task of its own), and
//! on PostgreSQL again when it is taken out. On SQLite a round trip is a wake-up of the
//! connection's thread each way; on PostgreSQL a trip to the server, and while those pings were
//! in flight the pool opened extra connections, each a new server process and TLS handshake
//! that every waiting request sat through (DEVELOPERS.md, "Issue 12, third pass").
//!
//! So such a caller leases a connection and hands it back here, not to the pool. A kept
//! connection is used again only while its caller is busy: one idle for [`IDLE`] or held for
//! [`LIFETIME`] goes back to the pool (which pings it, and on PostgreSQL recycles it at its
//! lifetime), and the next call takes a tested one. A call that fails drops its lease, so a
//! broken connection is never kept, and once the store starts closing nothing is kept (a pool
//! closes only when all of its connections are back). Two callers sharing one [`Held`] stay
//! correct (the second takes a connection of its own from the pool, and one of the two goes
//! back to it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Database, Postgres, Sqlite};

/// A kept connection idle this long goes back to the pool.
pub(super) const IDLE: Duration = Duration::from_secs(1);
/// A connection is kept this long at most, busy or not.
pub(super) const LIFETIME: Duration = Duration::from_secs(60);

/// A connection out of the pool, and when it was taken out and last handed back.
pub(super) struct Lease<DB: Database> {
    pub conn: PoolConnection<DB>,
    taken: Instant,
    returned: Instant,
    /// Whether this lease was kept from an earlier call (for tests).
    pub kept: bool,
}

/// The slot of one caller.
pub(super) struct Held {
    sqlite: Mutex<Option<Lease<Sqlite>>>,
    postgres: Mutex<Option<Lease<Postgres>>>,
    /// How long a kept connection may sit idle; zero keeps none.
    idle: Duration,
    /// Set by [`Held::release`]: the pools are closing, and nothing is kept any more.
    released: AtomicBool,
}

/// The slot for connections of `DB`: each database has its own, so the store's code, written
/// once for both, takes the right one by type.
pub(super) trait Slot<DB: Database> {
    fn slot(&self) -> &Mutex<Option<Lease<DB>>>;
}

impl Slot<Sqlite> for Held {
    fn slot(&self) -> &Mutex<Option<Lease<Sqlite>>> {
        &self.sqlite
    }
}

impl Slot<Postgres> for Held {
    fn slot(&self) -> &Mutex<Option<Lease<Postgres>>> {
        &self.postgres
    }
}

impl Held {
    /// Keeps the caller's connection while the caller is busy.
    pub fn keeping() -> Self {
        Self::with_idle(IDLE)
    }

    /// Keeps nothing: every lease comes from the pool and goes back to it (for a pool whose
    /// connection others need between this caller's calls).
    pub fn passing_through() -> Self {
        Self::with_idle(Duration::ZERO)
    }

    fn with_idle(idle: Duration) -> Self {
        Self {
            sqlite: Mutex::new(None),
            postgres: Mutex::new(None),
            idle,
            released: AtomicBool::new(false),
        }
    }

    /// The kept connection if it is still fresh, else one from `pool`.
    pub async fn lease<DB: Database>(&self, pool: &sqlx::Pool<DB>) -> Result<Lease<DB>, sqlx::Error>
    where
        Self: Slot<DB>,
    {
        let kept = lock(self.slot()).take();
        // A stale one is dropped here, which sends it back to the pool.
        if let Some(mut lease) = kept
            && lease.returned.elapsed() < self.idle
            && lease.taken.elapsed() < LIFETIME
        {
            lease.kept = true;
            return Ok(lease);
        }
        let now = Instant::now();
        Ok(Lease {
            conn: pool.acquire().await?,
            taken: now,
            returned: now,
            kept: false,
        })
    }

    /// Keeps `lease` for the next call. A lease not handed back (the call failed) goes to the
    /// pool when dropped.
    pub fn keep<DB: Database>(&self, mut lease: Lease<DB>)
    where
        Self: Slot<DB>,
    {
        if self.idle.is_zero() {
            return; // back to the pool
        }
        lease.returned = Instant::now();
        let mut slot = lock(self.slot());
        // Checked under the slot's lock, which `release` takes after setting the flag: a call
        // that finishes while the pools close cannot keep its connection from them.
        if self.released.load(Ordering::SeqCst) {
            return;
        }
        // Whatever was kept meanwhile (by a second caller) goes back to the pool.
        drop(slot.replace(lease));
    }

    /// Hands every kept connection back to its pool, and keeps none from now on: a pool
    /// closes once all of its connections are back, so this comes first.
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        drop(lock(&self.sqlite).take());
        drop(lock(&self.postgres).take());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while a slot is locked; a poisoned one still holds a sound value.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    async fn pool() -> sqlx::SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(2)
            .connect("sqlite::memory:")
            .await
            .expect("an in-memory database")
    }

    /// A mark only the connection it is made on can see (`sqlite::memory:` is one database per
    /// connection).
    async fn marked(lease: &mut Lease<Sqlite>) -> bool {
        sqlx::query("CREATE TABLE IF NOT EXISTS mark (x)")
            .execute(&mut *lease.conn)
            .await
            .expect("create");
        let marks: i64 = sqlx::query_scalar("SELECT count(*) FROM mark")
            .fetch_one(&mut *lease.conn)
            .await
            .expect("count");
        sqlx::query("INSERT INTO mark VALUES (1)")
            .execute(&mut *lease.conn)
            .await
            .expect("insert");
        marks > 0
    }

    #[tokio::test]
    async fn a_busy_caller_gets_its_own_connection_back() {
        let pool = pool().await;
        let held = Held::keeping();
        let mut first = held.lease(&pool).await.unwrap();
        assert!(!first.kept);
        assert!(!marked(&mut first).await);
        held.keep(first);
        let mut second = held.lease(&pool).await.unwrap();
        assert!(second.kept);
        assert!(marked(&mut second).await, "the same connection as before");
    }

    #[tokio::test]
    async fn an_idle_or_failed_lease_goes_back_to_the_pool() {
        let pool = pool().await;
        let held = Held::keeping();
        // Kept, then left idle past the limit (the clock moved back instead of waiting).
        let lease = held.lease(&pool).await.unwrap();
        held.keep(lease);
        lock(&held.sqlite).as_mut().unwrap().returned -= IDLE;
        let lease = held.lease(&pool).await.unwrap();
        assert!(!lease.kept, "idle longer than the limit");
        // Kept, busy, but taken out longer ago than the lifetime.
        held.keep(lease);
        lock(&held.sqlite).as_mut().unwrap().taken -= LIFETIME;
        let lease = held.lease(&pool).await.unwrap();
        assert!(!lease.kept, "held longer than the lifetime");
        drop(lease);

        let through = Held::passing_through();
        let lease = through.lease(&pool).await.unwrap();
        through.keep(lease);
        assert!(lock(&through.sqlite).is_none(), "nothing kept");

        let held = Held::keeping();
        let lease = held.lease(&pool).await.unwrap();
        // The call failed: the caller drops the lease instead of keeping it.
        drop(lease);
        assert!(!held.lease(&pool).await.unwrap().kept);
    }

    #[tokio::test]
    async fn release_empties_the_slots_so_the_pool_can_close() {
        let pool = pool().await;
        let held = Held::keeping();
        let kept = held.lease(&pool).await.unwrap();
        // A batch still running while the store closes: its lease comes back after the
        // release, and must not be kept.
        let late = held.lease(&pool).await.unwrap();
        held.keep(kept);
        held.release();
        held.keep(late);
        assert!(
            lock(&held.sqlite).is_none(),
            "nothing kept after the release"
        );
        // Closing waits for every connection to come back: without the release, for ever.
        // The bound only turns that hang into a failure.
        tokio::time::timeout(Duration::from_secs(60), pool.close())
            .await
            .expect("the pool closed");
    }
}

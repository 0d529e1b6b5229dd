//! Session lookups, read in batches.
//!
//! Every request that carries a session token reads its session and user from the database,
//! never from a cache: a revoked, expired or disabled session is refused by every replica from
//! the moment the change commits. One read per request was the largest cost of an identity
//! token after the RSA signature: sqlx runs each SQLite connection on a thread of its own, and
//! waking that thread, and being woken back, cost far more CPU than the query (DEVELOPERS.md,
//! "Benchmark: identity tokens per second"). So lookups go to one task, which reads every
//! lookup that arrived while its previous read was in flight with one query — as the nonce
//! ledger writes. Each lookup is still answered by a read that began after it was asked. A lone
//! request costs one read, as before.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, User};

/// Lookups read by one query at most (one bind parameter each, and the time).
const MAX_BATCH: usize = 256;
/// Lookups waiting for the reader at most; senders wait beyond that (backpressure).
const QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
#[error("the session could not be read")]
pub struct LookupError;

struct Lookup {
    token_hash: Vec<u8>,
    now: i64,
    reply: oneshot::Sender<Result<Option<User>, LookupError>>,
}

/// A handle to the reader task; cheap to clone. The task ends when the last handle is dropped.
#[derive(Clone)]
pub struct SessionLookups {
    lookups: mpsc::Sender<Lookup>,
}

impl SessionLookups {
    /// Starts the reader task on the current Tokio runtime; the time each read took goes to
    /// `durations`.
    pub fn start(store: Arc<dyn Store>, durations: Histogram) -> Self {
        let (lookups, queue) = mpsc::channel(QUEUE);
        tokio::spawn(read_sessions(store, queue, durations));
        Self { lookups }
    }

    /// The enabled user owning the session whose token hashes to `token_hash`, if it is
    /// unexpired at `now`.
    pub async fn find(&self, token_hash: Vec<u8>, now: i64) -> Result<Option<User>, LookupError> {
        let (reply, answer) = oneshot::channel();
        let lookup = Lookup {
            token_hash,
            now,
            reply,
        };
        self.lookups.send(lookup).await.map_err(|_| LookupError)?;
        answer.await.map_err(|_| LookupError)?
    }
}

async fn read_sessions(
    store: Arc<dyn Store>,
    mut queue: mpsc::Receiver<Lookup>,
    durations: Histogram,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // The query takes the earliest time of the batch; each lookup then checks its own.
        let earliest = batch.iter().map(|l| l.now).min().unwrap_or_default();
        let hashes: Vec<&[u8]> = batch.iter().map(|l| l.token_hash.as_slice()).collect();
        let started = Instant::now();
        let result = store.find_session_users(&hashes, earliest).await;
        durations.observe(started.elapsed().as_secs_f64());
        drop(hashes);
        match result {
            Ok(owners) => {
                for lookup in batch.drain(..) {
                    let user = owners
                        .iter()
                        .find(|o| o.token_hash == lookup.token_hash && o.expires_at > lookup.now)
                        .map(|o| o.user.clone());
                    // A requester that gave up is no longer listening; nothing to do.
                    let _ = lookup.reply.send(Ok(user));
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, lookups = batch.len(), "reading sessions failed");
                for lookup in batch.drain(..) {
                    let _ = lookup.reply.send(Err(LookupError));
                }
            }
        }
    }
}

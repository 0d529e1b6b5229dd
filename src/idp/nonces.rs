//! The ledger of signed nonces, written in batches.
//!
//! Every identity token costs one database write: the SHA-256 of its nonce, so that the nonce
//! is never signed twice, by this process or by a replica. One write per token made the commit
//! the bottleneck of token issuance (SQLite admits one writer at a time; a queue of writers
//! also waits on whichever busy HTTP worker holds the connection). So claims go to one writer
//! task, which takes every claim that arrived while its previous write was in flight and
//! records them with one statement and one commit — group commit. A lone request still costs
//! one write; under load, the cost per token falls with the batch size.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, oneshot};

use super::throttle::Success;
use crate::store::{NonceClaim, NonceRecord, Store};

/// Claims written by one statement at most (3 bind parameters each; SQLite allows 32 766).
const MAX_BATCH: usize = 256;
/// Claims waiting for the writer at most; senders wait beyond that (backpressure).
const QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
#[error("the signed-nonce ledger could not record the nonce")]
pub struct LedgerError;

struct Claim {
    nonce_hash: [u8; 32],
    user_id: String,
    expires_at: i64,
    login: Option<Success>,
    reply: oneshot::Sender<Result<NonceRecord, LedgerError>>,
}

/// A handle to the writer task; cheap to clone. The task ends when the last handle is dropped.
#[derive(Clone)]
pub struct NonceLedger {
    claims: mpsc::Sender<Claim>,
}

impl NonceLedger {
    /// Starts the writer task on the current Tokio runtime; each write's size goes to
    /// `batch_sizes`, and the time it took to `durations`.
    pub fn start(store: Arc<dyn Store>, batch_sizes: Histogram, durations: Histogram) -> Self {
        let (claims, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write_claims(store, queue, batch_sizes, durations));
        Self { claims }
    }

    /// Records that `nonce_hash` is about to be signed for `user_id`, unless it already was,
    /// and the password login it answers, if any (for the throttling rules).
    pub async fn claim(
        &self,
        nonce_hash: [u8; 32],
        user_id: &str,
        expires_at: i64,
        login: Option<Success>,
    ) -> Result<NonceRecord, LedgerError> {
        let (reply, answer) = oneshot::channel();
        let claim = Claim {
            nonce_hash,
            user_id: user_id.to_owned(),
            expires_at,
            login,
            reply,
        };
        self.claims.send(claim).await.map_err(|_| LedgerError)?;
        answer.await.map_err(|_| LedgerError)?
    }
}

async fn write_claims(
    store: Arc<dyn Store>,
    mut queue: mpsc::Receiver<Claim>,
    batch_sizes: Histogram,
    durations: Histogram,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        batch_sizes.observe(batch.len() as f64);
        let claims: Vec<NonceClaim<'_>> = batch
            .iter()
            .map(|c| NonceClaim {
                nonce_hash: &c.nonce_hash,
                user_id: &c.user_id,
                expires_at: c.expires_at,
                login: c.login.as_ref().map(Success::record),
            })
            .collect();
        let started = Instant::now();
        let result = store.record_signed_nonces(&claims).await;
        durations.observe(started.elapsed().as_secs_f64());
        drop(claims);
        match result {
            Ok(records) => {
                for (claim, record) in batch.drain(..).zip(records) {
                    // A requester that gave up is no longer listening; nothing to do.
                    let _ = claim.reply.send(Ok(record));
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, claims = batch.len(), "recording signed nonces failed");
                for claim in batch.drain(..) {
                    let _ = claim.reply.send(Err(LedgerError));
                }
            }
        }
    }
}

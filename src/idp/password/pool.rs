//! The hashing threads: a fixed set (`max_concurrent_hashes`), each with its own argon2
//! [`Scratch`] buffer, fed from the [`FairQueue`].
//!
//! Why not tokio's blocking pool: its threads come and go, each allocates its own argon2
//! memory from its own allocator arena, and glibc keeps those arenas' pages after the hash, so
//! a flood left the process at 1 GiB resident. Here at most `threads` buffers exist, a busy
//! thread reuses its buffer from hash to hash, and a thread that finds the queue empty
//! releases it before answering, so when the last answer of a burst has been sent the memory
//! is back with the system.
//!
//! A caller waits at most the queue timeout for its job to *start*; a job that has started
//! runs to the end. A caller that gives up (timeout, or the client went away and its future
//! was dropped) takes its job back out of the queue, so no thread hashes for nobody.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use super::argon2id::Scratch;
use super::queue::{FairQueue, Lane, Refusal, Source, Ticket};

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The queue was full, or this source had its share of it.
    Full(Refusal),
    /// No thread took it within the queue timeout.
    TimedOut,
    /// The job panicked, or the pool is shutting down.
    Lost,
}

type Reply = Box<dyn FnOnce() + Send>;

/// A queued job: runs inside the caller's span and returns how to deliver its result, so the
/// thread can release its memory before the caller hears back.
struct Job {
    span: tracing::Span,
    work: Box<dyn FnOnce(&mut Scratch) -> Reply + Send>,
}

struct State {
    queue: FairQueue<Job>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held (jobs run outside it), so a poisoned
        // lock still guards consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The hashing threads and their queue. Dropping the pool stops the threads once the queue
/// is empty.
pub struct Pool {
    shared: Arc<Shared>,
    queue_timeout: Duration,
}

/// Sizes of the queue.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub threads: usize,
    pub memory_kib: u32,
    pub queue_timeout: Duration,
    pub capacity: usize,
    pub per_source: usize,
}

impl Pool {
    pub fn start(settings: PoolSettings) -> std::io::Result<Self> {
        let pool = Self::without_threads(settings);
        for i in 0..settings.threads {
            let shared = pool.shared.clone();
            let memory_kib = settings.memory_kib;
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&shared, Scratch::new(memory_kib)))?;
        }
        Ok(pool)
    }

    /// The queue alone; tests run its jobs by hand with [`Pool::run_next_here`].
    fn without_threads(settings: PoolSettings) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: FairQueue::new(settings.threads, settings.capacity, settings.per_source),
                    closed: false,
                }),
                wake: Condvar::new(),
            }),
            queue_timeout: settings.queue_timeout,
        }
    }

    /// Runs `work` on a hashing thread, in the caller's span, once it is this source's turn.
    pub async fn run<T, F>(&self, lane: Lane, source: Source, work: F) -> Result<T, Rejected>
    where
        T: Send + 'static,
        F: FnOnce(&mut Scratch) -> T + Send + 'static,
    {
        let (tx, mut rx) = oneshot::channel();
        let job = Job {
            span: tracing::Span::current(),
            work: Box::new(move |scratch| {
                let result = work(scratch);
                Box::new(move || {
                    // The caller may have gone; nobody is left to tell.
                    let _ = tx.send(result);
                })
            }),
        };
        let ticket = {
            let mut state = self.shared.lock();
            state
                .queue
                .push(lane, source, job)
                .map_err(Rejected::Full)?
        };
        self.shared.wake.notify_one();
        let mut waiting = Waiting {
            shared: &self.shared,
            ticket: Some(ticket),
        };
        tokio::select! {
            result = &mut rx => return result.map_err(|_| Rejected::Lost),
            () = tokio::time::sleep(self.queue_timeout) => {}
        }
        if waiting.withdraw() {
            return Err(Rejected::TimedOut);
        }
        // It started before the timeout: wait for it to finish.
        rx.await.map_err(|_| Rejected::Lost)
    }

    /// Jobs waiting for a thread (read by the metrics at each scrape).
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Runs the next job on the calling thread, as a hashing thread would. For tests.
    #[cfg(test)]
    pub fn run_next_here(&self, scratch: &mut Scratch) -> bool {
        let next = self.shared.lock().queue.pop();
        let Some((lane, job)) = next else {
            return false;
        };
        let reply = job.span.in_scope(|| (job.work)(scratch));
        self.shared.lock().queue.finished(lane);
        reply();
        true
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

/// A caller's claim on its queued job; withdrawing (or dropping) takes the job back out if no
/// thread has taken it yet.
struct Waiting<'a> {
    shared: &'a Shared,
    ticket: Option<Ticket>,
}

impl Waiting<'_> {
    /// True if the job was still waiting and is now gone.
    fn withdraw(&mut self) -> bool {
        let Some(ticket) = self.ticket.take() else {
            return false;
        };
        let removed = self.shared.lock().queue.remove(ticket);
        // Dropped outside the lock: the job owns the reply channel and the password.
        removed.is_some()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// A hashing thread's loop. Its buffer is released (outside the lock: unmapping takes a
/// moment) whenever it has nothing it may run, and before it answers the last job of a burst.
fn work(shared: &Shared, mut scratch: Scratch) {
    let mut state = shared.lock();
    loop {
        let Some((lane, job)) = state.queue.pop() else {
            if state.closed {
                return;
            }
            if scratch.is_allocated() {
                // Nothing this thread may run now (the queue is empty, or holds only sign-ups
                // over their share): no buffer while it sleeps.
                drop(state);
                scratch.release();
                state = shared.lock();
                continue;
            }
            state = shared
                .wake
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            continue;
        };
        drop(state);
        let Job { span, work } = job;
        // A panic inside argon2 must not take the thread (and its slot) with it; the caller
        // sees its reply channel close and answers 500.
        let reply = span
            .in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| work(&mut scratch))).ok());
        state = shared.lock();
        state.queue.finished(lane);
        let idle = state.queue.is_empty();
        drop(state);
        if idle {
            // Released before answering, so when a burst's last answer is out the memory is
            // back with the system.
            scratch.release();
        }
        if let Some(reply) = reply {
            reply();
        }
        state = shared.lock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(threads: usize) -> PoolSettings {
        PoolSettings {
            threads,
            memory_kib: 64,
            queue_timeout: Duration::from_millis(500),
            capacity: 100,
            per_source: 4,
        }
    }

    fn from(last: u8) -> Source {
        Source::of(std::net::IpAddr::from([127, 0, 0, last]))
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_no_thread_takes_within_the_timeout_is_refused_and_leaves_the_queue() {
        let pool = Pool::without_threads(settings(1));
        let result = pool.run(Lane::Login, from(1), |_| ()).await;
        assert_eq!(result, Err(Rejected::TimedOut));
        assert_eq!(pool.queued(), 0, "the timed-out job left no trace");
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_started_in_time_is_waited_for_past_the_timeout() {
        let pool = Arc::new(Pool::without_threads(settings(1)));
        let caller = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(Lane::Login, from(1), |_| 42).await }
        });
        // Let the caller queue its job (no time passes while a task is runnable).
        while pool.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(pool.run_next_here(&mut Scratch::new(64)));
        assert_eq!(caller.await.unwrap(), Ok(42));
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_goes_away_takes_its_job_out_of_the_queue() {
        let pool = Arc::new(Pool::without_threads(settings(1)));
        let caller = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(Lane::Login, from(1), |_| ()).await }
        });
        while pool.queued() == 0 {
            tokio::task::yield_now().await;
        }
        caller.abort();
        let _ = caller.await;
        assert_eq!(pool.queued(), 0);
        assert!(!pool.run_next_here(&mut Scratch::new(64)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_over_its_share_is_refused_at_once_while_others_are_queued() {
        let pool = Arc::new(Pool::without_threads(settings(1)));
        let mut flood = Vec::new();
        for _ in 0..4 {
            let pool = pool.clone();
            flood.push(tokio::spawn(async move {
                pool.run(Lane::Login, from(1), |_| "flood").await
            }));
        }
        while pool.queued() < 4 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            pool.run(Lane::Login, from(1), |_| "one too many").await,
            Err(Rejected::Full(Refusal::SourceFull))
        );
        let real = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(Lane::Login, from(2), |_| "real").await }
        });
        while pool.queued() < 5 {
            tokio::task::yield_now().await;
        }
        // One flood job, then the real login: it does not wait behind the other three.
        let mut scratch = Scratch::new(64);
        assert!(pool.run_next_here(&mut scratch));
        assert!(pool.run_next_here(&mut scratch));
        assert_eq!(real.await.unwrap(), Ok("real"));
        assert_eq!(pool.queued(), 3);
        while pool.run_next_here(&mut scratch) {}
        for f in flood {
            assert_eq!(f.await.unwrap(), Ok("flood"));
        }
    }

    #[tokio::test]
    async fn threads_reuse_their_memory_while_busy_and_release_it_when_idle() {
        // A generous timeout: this test runs real threads, and no job may time out.
        let pool = Pool::start(PoolSettings {
            queue_timeout: Duration::from_secs(600),
            ..settings(1)
        })
        .unwrap();
        let params = argon2::Params::new(64, 1, 1, None).unwrap();
        // Hold the only thread until three more jobs are queued behind it.
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let first = pool.run(Lane::Login, from(1), move |scratch| {
            gate.recv().unwrap();
            super::super::argon2id::hash(&params, b"pw", scratch).unwrap();
            scratch.is_allocated()
        });
        let later = |n: u8| {
            pool.run(Lane::Login, from(n), |scratch| {
                // Allocated on entry means the previous job's buffer was kept for this one.
                scratch.is_allocated()
            })
        };
        let opener = async {
            while pool.shared.lock().queue.len() > 2 {
                tokio::task::yield_now().await;
            }
            open.send(()).unwrap();
        };
        let (first, second, third, ()) = tokio::join!(first, later(2), later(3), opener);
        assert_eq!(first, Ok(true));
        assert_eq!(second, Ok(true), "the buffer is reused while jobs wait");
        assert_eq!(third, Ok(true));
        let after_idle = pool
            .run(Lane::Login, from(1), |scratch| scratch.is_allocated())
            .await;
        assert_eq!(after_idle, Ok(false), "an idle thread gave its buffer back");
    }
}

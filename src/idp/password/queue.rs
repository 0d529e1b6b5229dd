//! The hashing queue's scheduling rules, as a plain data structure (no threads, no clocks) so
//! they can be tested step by step.
//!
//! - Two lanes. Logins (and every other check of an existing password) come first; sign-ups
//!   get one dispatch in [`SIGN_UP_EVERY`] while logins wait, so neither lane starves the
//!   other, and never more than half the hashing threads at once (at least one).
//! - Within a lane, sources take turns (round-robin): a flood from one address waits behind
//!   its own earlier jobs, not in front of everyone else's.
//! - A source holds at most `per_source` waiting jobs in a lane, and the whole queue at most
//!   `capacity`; beyond that a job is refused at once (the caller answers 503).
//!
//! A source is the client address, with IPv6 addresses grouped by /64 (one host usually owns
//! a whole /64, so counting single IPv6 addresses would let it take any share it likes).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// While logins wait, every this-many-th dispatch goes to a waiting sign-up.
pub const SIGN_UP_EVERY: u32 = 4;

/// Which kind of work a hash is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Checking a password someone already has (login, `current_password`), and hashes an
    /// authenticated user or an administrator asks for.
    Login,
    /// Hashing the password of an anonymous sign-up.
    SignUp,
}

/// Whose turn a job takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A network client: an IPv4 address or an IPv6 /64.
    Net(IpAddr),
    /// The command line (one process, one operator).
    Local,
}

impl Source {
    pub fn of(addr: IpAddr) -> Self {
        let addr = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
            v4 => v4,
        };
        Source::Net(addr)
    }
}

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This source already has its share of waiting jobs in this lane.
    SourceFull,
    /// The whole queue is full.
    QueueFull,
}

/// A queued job's handle, for taking it back out (timeout, client gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    lane: Lane,
    source: Source,
    id: u64,
}

#[derive(Debug)]
struct LaneQueue<J> {
    /// Sources with waiting jobs, in turn order.
    turns: VecDeque<Source>,
    waiting: HashMap<Source, VecDeque<(u64, J)>>,
}

impl<J> LaneQueue<J> {
    fn new() -> Self {
        Self {
            turns: VecDeque::new(),
            waiting: HashMap::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    fn waiting_for(&self, source: Source) -> usize {
        self.waiting.get(&source).map_or(0, VecDeque::len)
    }

    fn push(&mut self, source: Source, id: u64, job: J) {
        let jobs = self.waiting.entry(source).or_default();
        if jobs.is_empty() {
            self.turns.push_back(source);
        }
        jobs.push_back((id, job));
    }

    /// The next source's oldest job; that source goes to the back of the line.
    fn pop(&mut self) -> Option<J> {
        let source = self.turns.pop_front()?;
        let jobs = self.waiting.get_mut(&source)?;
        let (_, job) = jobs.pop_front()?;
        if jobs.is_empty() {
            self.waiting.remove(&source);
        } else {
            self.turns.push_back(source);
        }
        Some(job)
    }

    fn remove(&mut self, source: Source, id: u64) -> Option<J> {
        let jobs = self.waiting.get_mut(&source)?;
        let at = jobs.iter().position(|(queued, _)| *queued == id)?;
        let (_, job) = jobs.remove(at)?;
        if jobs.is_empty() {
            self.waiting.remove(&source);
            self.turns.retain(|s| *s != source);
        }
        Some(job)
    }
}

/// The queue of jobs waiting for a hashing thread.
#[derive(Debug)]
pub struct FairQueue<J> {
    login: LaneQueue<J>,
    sign_up: LaneQueue<J>,
    len: usize,
    capacity: usize,
    per_source: usize,
    /// Sign-ups being hashed now, and the most allowed at once.
    running_sign_ups: usize,
    sign_up_slots: usize,
    /// Login dispatches since the last sign-up dispatch.
    logins_in_a_row: u32,
    next_id: u64,
}

impl<J> FairQueue<J> {
    /// `threads` is the number of hashing threads; sign-ups may use at most half (at least one).
    pub fn new(threads: usize, capacity: usize, per_source: usize) -> Self {
        Self {
            login: LaneQueue::new(),
            sign_up: LaneQueue::new(),
            len: 0,
            capacity,
            per_source,
            running_sign_ups: 0,
            sign_up_slots: (threads / 2).max(1),
            logins_in_a_row: 0,
            next_id: 0,
        }
    }

    /// Jobs waiting (not the ones running).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn lane(&mut self, lane: Lane) -> &mut LaneQueue<J> {
        match lane {
            Lane::Login => &mut self.login,
            Lane::SignUp => &mut self.sign_up,
        }
    }

    /// Queues a job, or says why not.
    pub fn push(&mut self, lane: Lane, source: Source, job: J) -> Result<Ticket, Refusal> {
        if self.len >= self.capacity {
            return Err(Refusal::QueueFull);
        }
        let per_source = self.per_source;
        if self.lane(lane).waiting_for(source) >= per_source {
            return Err(Refusal::SourceFull);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.lane(lane).push(source, id, job);
        self.len += 1;
        Ok(Ticket { lane, source, id })
    }

    /// Takes a job back out if it is still waiting (it has not been handed to a thread).
    pub fn remove(&mut self, ticket: Ticket) -> Option<J> {
        let job = self.lane(ticket.lane).remove(ticket.source, ticket.id)?;
        self.len -= 1;
        Some(job)
    }

    /// The job a free hashing thread should run next, and its lane (pass it to
    /// [`FairQueue::finished`] when the job is done).
    pub fn pop(&mut self) -> Option<(Lane, J)> {
        let sign_up_may_run =
            !self.sign_up.is_empty() && self.running_sign_ups < self.sign_up_slots;
        let lane = match (self.login.is_empty(), sign_up_may_run) {
            (true, false) => return None,
            (false, false) => Lane::Login,
            (true, true) => Lane::SignUp,
            (false, true) if self.logins_in_a_row + 1 >= SIGN_UP_EVERY => Lane::SignUp,
            (false, true) => Lane::Login,
        };
        let job = self.lane(lane).pop()?;
        self.len -= 1;
        match lane {
            Lane::Login => self.logins_in_a_row = self.logins_in_a_row.saturating_add(1),
            Lane::SignUp => {
                self.logins_in_a_row = 0;
                self.running_sign_ups += 1;
            }
        }
        Some((lane, job))
    }

    /// A job handed out by [`FairQueue::pop`] has finished.
    pub fn finished(&mut self, lane: Lane) {
        if lane == Lane::SignUp {
            self.running_sign_ups = self.running_sign_ups.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> Source {
        Source::of(IpAddr::from([127, 0, 0, last]))
    }

    /// Pops everything, returning the job labels in order (finishing each job at once).
    fn drain(queue: &mut FairQueue<&'static str>) -> Vec<&'static str> {
        let mut order = Vec::new();
        while let Some((lane, job)) = queue.pop() {
            queue.finished(lane);
            order.push(job);
        }
        order
    }

    #[test]
    fn sources_take_turns_so_a_flood_does_not_delay_a_later_login() {
        let mut queue = FairQueue::new(2, 100, 10);
        for _ in 0..6 {
            queue.push(Lane::Login, addr(1), "flood").unwrap();
        }
        queue.push(Lane::Login, addr(2), "real").unwrap();
        queue.push(Lane::Login, addr(3), "other").unwrap();
        let order = drain(&mut queue);
        assert_eq!(
            order,
            [
                "flood", "real", "other", "flood", "flood", "flood", "flood", "flood"
            ]
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn one_source_cannot_hold_more_than_its_share_of_waiting_jobs() {
        let mut queue = FairQueue::new(2, 100, 3);
        for _ in 0..3 {
            queue.push(Lane::Login, addr(1), "flood").unwrap();
        }
        assert_eq!(
            queue.push(Lane::Login, addr(1), "flood"),
            Err(Refusal::SourceFull)
        );
        // Others are unaffected, and so is the same source's other lane.
        queue.push(Lane::Login, addr(2), "real").unwrap();
        queue.push(Lane::SignUp, addr(1), "sign-up").unwrap();
        // A job handed to a thread frees its place.
        queue.pop().unwrap();
        queue.push(Lane::Login, addr(1), "flood").unwrap();
    }

    #[test]
    fn an_ipv6_host_counts_as_one_source_per_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(Source::of(mapped), addr(1));
        let mut queue = FairQueue::new(2, 100, 1);
        queue.push(Lane::Login, Source::of(a), "a").unwrap();
        assert_eq!(
            queue.push(Lane::Login, Source::of(b), "b"),
            Err(Refusal::SourceFull)
        );
    }

    #[test]
    fn the_whole_queue_is_bounded() {
        let mut queue = FairQueue::new(2, 3, 10);
        for i in 0..3 {
            queue.push(Lane::Login, addr(i), "job").unwrap();
        }
        assert_eq!(
            queue.push(Lane::Login, addr(9), "job"),
            Err(Refusal::QueueFull)
        );
        assert_eq!(queue.len(), 3);
    }

    #[test]
    fn sign_ups_never_hold_more_than_half_the_threads() {
        let mut queue = FairQueue::new(4, 100, 10);
        for i in 0..4 {
            queue.push(Lane::SignUp, addr(i), "sign-up").unwrap();
        }
        // Two threads take sign-ups; the other two find nothing they may run.
        assert_eq!(queue.pop().map(|(l, _)| l), Some(Lane::SignUp));
        assert_eq!(queue.pop().map(|(l, _)| l), Some(Lane::SignUp));
        assert!(queue.pop().is_none());
        // A login arriving now runs at once on a free thread.
        queue.push(Lane::Login, addr(7), "login").unwrap();
        assert_eq!(queue.pop(), Some((Lane::Login, "login")));
        // When a sign-up finishes, the next may start.
        queue.finished(Lane::SignUp);
        assert_eq!(queue.pop().map(|(l, _)| l), Some(Lane::SignUp));
        assert!(queue.pop().is_none());
    }

    #[test]
    fn with_one_thread_a_sign_up_may_run_but_logins_go_first() {
        let mut queue = FairQueue::new(1, 100, 10);
        queue.push(Lane::SignUp, addr(1), "sign-up").unwrap();
        queue.push(Lane::Login, addr(2), "login").unwrap();
        assert_eq!(drain(&mut queue), ["login", "sign-up"]);
    }

    #[test]
    fn a_login_flood_leaves_sign_ups_one_dispatch_in_four() {
        let mut queue = FairQueue::new(2, 100, 20);
        for _ in 0..10 {
            queue.push(Lane::Login, addr(1), "L").unwrap();
        }
        for _ in 0..3 {
            queue.push(Lane::SignUp, addr(2), "S").unwrap();
        }
        let order = drain(&mut queue).concat();
        assert_eq!(order, "LLLSLLLSLLLSL");
    }

    #[test]
    fn a_removed_job_is_never_handed_out_and_frees_its_place() {
        let mut queue = FairQueue::new(2, 100, 1);
        let first = queue.push(Lane::Login, addr(1), "gone").unwrap();
        queue.push(Lane::Login, addr(2), "kept").unwrap();
        assert_eq!(queue.remove(first), Some("gone"));
        assert_eq!(queue.remove(first), None, "removing twice is harmless");
        queue.push(Lane::Login, addr(1), "again").unwrap();
        assert_eq!(drain(&mut queue), ["kept", "again"]);
        assert_eq!(queue.len(), 0);
    }
}

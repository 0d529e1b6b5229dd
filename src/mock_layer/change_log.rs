//! What `Event.replay` can re-send: the changes and operations pushed to each user, kept per
//! user and bounded per user and per app.
//!
//! Per user, because replay is per user: one busy conversation must not push everyone
//! else's history out, as a single log per app did. Bounded three ways, all configurable:
//! entries per user, bytes per user, and bytes per app. At the app's cap the *largest* log
//! gives up its oldest entry first (an ordered index by size finds it in O(log n)), so the
//! users who cause the traffic pay for it. The index names logs by number, not by user: it
//! is updated on every record, once per receiver of every change.
//!
//! Dropping an entry is remembered: a replay from a time at or before the newest change
//! dropped for that user cannot be complete, and [`ChangeLog::since`] says so instead of
//! answering with part of the history.
//!
//! Bodies are stored as the JSON text that was pushed (shared with the sockets' queues), so
//! the byte caps measure what is really kept.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// The kinds of packet the server sends besides responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Change,
    Signal,
    Operation,
}

impl PacketKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PacketKind::Change => "change",
            PacketKind::Signal => "signal",
            PacketKind::Operation => "operation",
        }
    }
}

/// A packet as the world hands it to a socket or keeps it for replay: its kind, the world
/// time it happened at (the packet's `timestamp`), and its `body` as JSON text.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub kind: PacketKind,
    pub at_ms: i64,
    pub body: Arc<str>,
    /// The oldest Client API that may see it: changes only Client API 3.0 clients (the
    /// XDK) understand, such as a new response-summary part, skip 2.0 sockets (the WebSDK),
    /// live and on replay.
    pub min_api: ClientApi,
}

/// The Client API version a socket speaks, from its subprotocol (`layer-2.0`, `layer-3.0`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClientApi {
    #[default]
    V2,
    V3,
}

impl ClientApi {
    /// From the subprotocol the handshake chose.
    pub fn from_protocol(protocol: Option<&str>) -> Self {
        match protocol {
            Some("layer-3.0") => Self::V3,
            _ => Self::V2,
        }
    }
}

/// How much the log may keep (`[mock_layer]` `replay_*`).
#[derive(Debug, Clone, Copy)]
pub struct ReplayLimits {
    pub entries_per_user: usize,
    pub bytes_per_user: usize,
    pub bytes_per_app: usize,
}

/// What a kept entry costs besides its body: the queue slot and the `Arc`.
const ENTRY_OVERHEAD: usize = 64;

fn cost(entry: &Outbound) -> usize {
    entry.body.len() + ENTRY_OVERHEAD
}

struct UserLog {
    /// Oldest first; `at_ms` never decreases (the world's clock does not go back).
    entries: VecDeque<Outbound>,
    bytes: usize,
    /// The time of the newest entry dropped, if any was.
    dropped_through_ms: Option<i64>,
}

/// A replay that cannot be complete: the log dropped changes for this user that happened
/// at or after the time asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incomplete {
    /// Replays from after this time are complete.
    pub dropped_through_ms: i64,
}

pub struct ChangeLog {
    /// Each user's log's number in `logs`; logs are never removed.
    users: HashMap<String, usize>,
    logs: Vec<UserLog>,
    /// `(bytes, log number)` for every log: the largest is the last.
    by_size: BTreeSet<(usize, usize)>,
    total_bytes: usize,
    limits: ReplayLimits,
}

impl ChangeLog {
    pub fn new(limits: ReplayLimits) -> Self {
        Self {
            users: HashMap::new(),
            logs: Vec::new(),
            by_size: BTreeSet::new(),
            total_bytes: 0,
            limits,
        }
    }

    /// Keeps `entry` for `user`, then drops what the caps no longer allow.
    pub fn record(&mut self, user: &str, entry: Outbound) {
        // Every change is recorded once per receiver: no allocation for the user's name
        // unless this is their first entry.
        let number = match self.users.get(user) {
            Some(number) => *number,
            None => {
                let number = self.logs.len();
                self.logs.push(UserLog {
                    entries: VecDeque::new(),
                    bytes: 0,
                    dropped_through_ms: None,
                });
                self.users.insert(user.to_owned(), number);
                self.by_size.insert((0, number));
                number
            }
        };
        let Some(log) = self.logs.get_mut(number) else {
            return;
        };
        self.by_size.remove(&(log.bytes, number));
        log.bytes = log.bytes.saturating_add(cost(&entry));
        self.total_bytes = self.total_bytes.saturating_add(cost(&entry));
        log.entries.push_back(entry);
        while log.entries.len() > self.limits.entries_per_user
            || log.bytes > self.limits.bytes_per_user
        {
            if !drop_oldest(log, &mut self.total_bytes) {
                break;
            }
        }
        self.by_size.insert((log.bytes, number));
        while self.total_bytes > self.limits.bytes_per_app {
            let Some((_, largest)) = self.by_size.pop_last() else {
                break;
            };
            let Some(log) = self.logs.get_mut(largest) else {
                continue;
            };
            let dropped = drop_oldest(log, &mut self.total_bytes);
            self.by_size.insert((log.bytes, largest));
            if !dropped {
                break;
            }
        }
    }

    /// Everything kept for `user` that happened at or after `from_ms`, oldest first — or
    /// [`Incomplete`] if some of it was dropped.
    pub fn since(&self, user: &str, from_ms: i64) -> Result<Vec<Outbound>, Incomplete> {
        let Some(log) = self.users.get(user).and_then(|n| self.logs.get(*n)) else {
            return Ok(Vec::new());
        };
        if let Some(dropped_through_ms) = log.dropped_through_ms
            && from_ms <= dropped_through_ms
        {
            return Err(Incomplete { dropped_through_ms });
        }
        let first = log.entries.partition_point(|e| e.at_ms < from_ms);
        Ok(log.entries.range(first..).cloned().collect())
    }

    /// Bytes kept for the whole app.
    #[cfg(test)]
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }
}

/// Drops a log's oldest entry; false if it had none.
fn drop_oldest(log: &mut UserLog, total_bytes: &mut usize) -> bool {
    let Some(oldest) = log.entries.pop_front() else {
        return false;
    };
    log.bytes = log.bytes.saturating_sub(cost(&oldest));
    *total_bytes = total_bytes.saturating_sub(cost(&oldest));
    log.dropped_through_ms = Some(oldest.at_ms);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: i64, size: usize) -> Outbound {
        Outbound {
            min_api: ClientApi::V2,
            kind: PacketKind::Change,
            at_ms,
            body: "x".repeat(size).into(),
        }
    }

    fn limits(
        entries_per_user: usize,
        bytes_per_user: usize,
        bytes_per_app: usize,
    ) -> ReplayLimits {
        ReplayLimits {
            entries_per_user,
            bytes_per_user,
            bytes_per_app,
        }
    }

    fn times(entries: &[Outbound]) -> Vec<i64> {
        entries.iter().map(|e| e.at_ms).collect()
    }

    #[test]
    fn a_replay_starts_at_from_and_includes_changes_at_that_very_time() {
        let mut log = ChangeLog::new(limits(100, 1 << 20, 1 << 20));
        for at in [10, 20, 20, 30] {
            log.record("bob", entry(at, 10));
        }
        assert_eq!(times(&log.since("bob", 20).unwrap()), [20, 20, 30]);
        assert_eq!(times(&log.since("bob", 31).unwrap()), Vec::<i64>::new());
        assert!(log.since("nobody", 0).unwrap().is_empty());
    }

    #[test]
    fn each_user_keeps_their_own_history() {
        let mut log = ChangeLog::new(limits(3, 1 << 20, 1 << 20));
        log.record("quiet", entry(1, 10));
        for at in 2..100 {
            log.record("busy", entry(at, 10));
        }
        assert_eq!(
            times(&log.since("quiet", 0).unwrap()),
            [1],
            "untouched by the busy one"
        );
        assert_eq!(times(&log.since("busy", 97).unwrap()), [97, 98, 99]);
        assert_eq!(
            log.since("busy", 96).unwrap_err(),
            Incomplete {
                dropped_through_ms: 96
            },
            "a replay reaching into what was dropped is incomplete, not partial"
        );
    }

    #[test]
    fn bytes_are_capped_per_user_and_per_app_largest_log_first() {
        let per_entry = 100 + ENTRY_OVERHEAD;
        let mut log = ChangeLog::new(limits(1000, 5 * per_entry, 8 * per_entry));
        for at in 0..10 {
            log.record("busy", entry(at, 100));
        }
        assert_eq!(
            log.since("busy", 5).unwrap().len(),
            5,
            "5 entries fit per user"
        );
        for at in 10..13 {
            log.record("quiet", entry(at, 100));
        }
        // 5 + 3 = 8 entries fit the app; one more and the busy log gives one up.
        assert_eq!(log.total_bytes(), 8 * per_entry);
        log.record("quiet", entry(13, 100));
        assert_eq!(log.total_bytes(), 8 * per_entry);
        assert_eq!(times(&log.since("quiet", 0).unwrap()), [10, 11, 12, 13]);
        assert_eq!(log.since("busy", 5).unwrap_err().dropped_through_ms, 5);
        assert_eq!(times(&log.since("busy", 6).unwrap()), [6, 7, 8, 9]);
    }
}

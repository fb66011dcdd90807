//! The newest log entries, read once and shared by every session of this
//! process ([`LogTail`]).
//!
//! When a push commits, every live session wakes and reads the log from
//! its cursor to the new head: a hundred sessions read the same entries a
//! hundred times. On SQLite that is a read of this process's page cache;
//! on PostgreSQL each read ships the rows again over the network (the
//! ingest profile of issue 15: 210,000 rows shipped for 10,000 changes,
//! PostgreSQL at 59% of the machine). The tail holds the entries after a
//! point, fetched once, and serves the sessions' reads that fall inside it.
//!
//! Why serving from memory returns what a read of the database would:
//! - Entries below a committed head never change and none appear later
//!   (seq is visible in commit order, without gaps), except through
//!   erasure, which empties them.
//! - A live session reads "everything after my cursor" (`upto` =
//!   `u64::MAX`). The tail answers it only from a fetch that began after
//!   the read was asked for: that fetch saw every commit the read could
//!   have seen (in particular the one whose wake caused the read). A fetch
//!   records the head it read up to, so the answer is the database's at
//!   that moment.
//! - Before serving entries that an earlier fetch read, the tail asks the
//!   database which of their documents are erased (one small query). If
//!   any is, it forgets everything and the read goes to the database. The
//!   answer is then what a read made at the moment of that check would
//!   have returned. Entries that a fetch begun after the read was asked
//!   for read need no check: that fetch left out what was erased before
//!   it, so every erasure committed before the read was asked (the
//!   typical live read: its own wake's fetch).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use muster_core::sync::storage::{Batch, LogEntry, SResult};

/// At most this many entries are held (about 1 KB each for a contact):
/// more than a group commit writes at once (about 5,000 in the two-relay
/// ingest), so that sessions a group behind still read from memory.
const MOST_ENTRIES: usize = 16_384;
/// At most about this many bytes of entry data are held.
const MOST_BYTES: usize = 8 << 20;
/// What one fetch reads at most. Sessions further behind move through
/// the tail fetch by fetch.
const FETCH: Batch = Batch {
    entries: 4_096,
    bytes: 2 << 20,
};
/// A read that starts further than this above the tail restarts the tail
/// there (nobody reads the old one).
const REACH: u64 = 2_048;

/// Where the tail reads from: the database.
pub trait TailSource {
    /// The entries with seq in `(after, upto]`, at most `most`, as
    /// [`RelayStorage::entries_after`](muster_core::sync::storage::RelayStorage::entries_after)
    /// returns them.
    fn read(&self, after: u64, upto: u64, most: Batch) -> SResult<Vec<LogEntry>>;
    /// The entries after `after` up to the head, at most `most`, and that
    /// head (the newest committed seq) as the same read saw it.
    fn read_to_head(&self, after: u64, most: Batch) -> SResult<(Vec<LogEntry>, u64)>;
    /// Which of `docs` are erased now.
    fn erased(&self, docs: &[&str]) -> SResult<Vec<String>>;
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct LogTail {
    state: Mutex<State>,
    fetched: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The entries with seq in `(lo, covered]` that the database returns
    /// for that range, in order, each with the number of the fetch that
    /// read it.
    entries: VecDeque<(u64, LogEntry)>,
    lo: u64,
    covered: u64,
    bytes: usize,
    /// How many fetches have begun; a fetch's number is the count after
    /// it began.
    started: u64,
    /// The number of the fetch that found `covered` to be the head (none
    /// when the last fetch stopped at its own limit).
    head_by: Option<u64>,
    /// Whether a session is fetching more now (the others wait for it).
    fetching: bool,
    /// How many reads wait for a fetch now.
    waiting: usize,
}

/// How a read is served.
enum Plan {
    /// From the tail: the entries, and whether all of them were read by a
    /// fetch begun after the read was asked for (no erasure check needed).
    Serve(Vec<LogEntry>, bool),
    /// Fetch from `from` to the head (at most [`FETCH`]) into the tail,
    /// as fetch number `number`, then look again.
    Fetch { from: u64, number: u64 },
    /// From the database, below the tail.
    Direct,
}

impl LogTail {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries with seq in `(after, upto]`, at most `most`, as
    /// `source.read` would return them. `upto` is at most a committed
    /// head, or `u64::MAX` for "up to the head".
    pub fn entries_after(
        &self,
        source: &impl TailSource,
        after: u64,
        upto: u64,
        most: Batch,
    ) -> SResult<Vec<LogEntry>> {
        // Fetches numbered above this began after the read was asked for.
        let arrived = self.state().started;
        loop {
            match self.plan(after, upto, most, arrived) {
                Plan::Direct => return source.read(after, upto, most),
                Plan::Serve(entries, fresh) => {
                    let mut docs: Vec<&str> = entries.iter().map(|e| e.doc.as_str()).collect();
                    docs.sort_unstable();
                    docs.dedup();
                    if fresh || docs.is_empty() || source.erased(&docs)?.is_empty() {
                        return Ok(entries);
                    }
                    // Erased since it was fetched: start again from the
                    // database.
                    self.forget();
                    return source.read(after, upto, most);
                }
                Plan::Fetch { from, number } => {
                    let fetched = source.read_to_head(from, FETCH);
                    let mut s = self.state();
                    s.fetching = false;
                    self.fetched.notify_all();
                    let (fetched, head) = fetched?;
                    // Still where it was fetched from (nothing forgot it).
                    if s.covered != from {
                        continue;
                    }
                    let bytes: usize = fetched.iter().map(|e| e.data.len()).sum();
                    match fetched.last() {
                        // Stopped at its limit: complete to its last entry.
                        Some(last) if FETCH.is_full(fetched.len(), bytes) => {
                            s.covered = last.seq;
                            s.head_by = None;
                        }
                        _ => {
                            s.covered = head.max(from);
                            s.head_by = Some(number);
                        }
                    }
                    s.bytes += bytes;
                    s.entries.extend(fetched.into_iter().map(|e| (number, e)));
                    while s.entries.len() > MOST_ENTRIES || s.bytes > MOST_BYTES {
                        let Some((_, old)) = s.entries.pop_front() else {
                            break;
                        };
                        s.bytes -= old.data.len();
                        s.lo = old.seq;
                    }
                }
            }
        }
    }

    /// Decides how to serve a read asked for when `arrived` fetches had
    /// begun, waiting while another session fetches.
    fn plan(&self, after: u64, upto: u64, most: Batch, arrived: u64) -> Plan {
        let mut s = self.state();
        loop {
            if upto <= after {
                return Plan::Serve(Vec::new(), true);
            }
            if after < s.lo {
                return Plan::Direct;
            }
            if after <= s.covered {
                let start = s.entries.partition_point(|(_, e)| e.seq <= after);
                let (mut out, mut bytes, mut done, mut fresh) = (Vec::new(), 0, false, true);
                for (by, e) in s.entries.range(start..) {
                    if e.seq > upto || most.is_full(out.len(), bytes) {
                        done = true;
                        break;
                    }
                    bytes += e.data.len();
                    fresh &= *by > arrived;
                    out.push(e.clone());
                }
                // Complete: the batch is full, the range ends inside the
                // tail, or the tail ends at a head read after the read
                // was asked for.
                if done
                    || most.is_full(out.len(), bytes)
                    || upto <= s.covered
                    || s.head_by.is_some_and(|n| n > arrived)
                {
                    return Plan::Serve(out, fresh);
                }
            }
            if s.fetching {
                s.waiting += 1;
                s = self.fetched.wait(s).unwrap_or_else(|p| p.into_inner());
                s.waiting -= 1;
                continue;
            }
            if after > s.covered && after - s.covered > REACH {
                // Everyone reading is far past the tail: it starts again
                // here.
                s.entries.clear();
                s.bytes = 0;
                s.lo = after;
                s.covered = after;
                s.head_by = None;
            }
            s.fetching = true;
            s.started += 1;
            return Plan::Fetch {
                from: s.covered,
                number: s.started,
            };
        }
    }

    /// Drops everything held.
    fn forget(&self) {
        let mut s = self.state();
        s.entries.clear();
        s.bytes = 0;
        s.lo = 0;
        s.covered = 0;
        s.head_by = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A log in memory, read as the database would be.
    #[derive(Default)]
    struct Log {
        entries: Mutex<Vec<LogEntry>>,
        erased: Mutex<HashSet<String>>,
        reads: AtomicUsize,
    }

    impl TailSource for Log {
        fn read(&self, after: u64, upto: u64, most: Batch) -> SResult<Vec<LogEntry>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            let erased = self.erased.lock().unwrap();
            let (mut out, mut bytes) = (Vec::new(), 0);
            for e in self.entries.lock().unwrap().iter() {
                if e.seq <= after || e.seq > upto || erased.contains(&e.doc) {
                    continue;
                }
                if most.is_full(out.len(), bytes) {
                    break;
                }
                bytes += e.data.len();
                out.push(e.clone());
            }
            Ok(out)
        }

        fn read_to_head(&self, after: u64, most: Batch) -> SResult<(Vec<LogEntry>, u64)> {
            let head = self.entries.lock().unwrap().len() as u64;
            Ok((self.read(after, head, most)?, head))
        }

        fn erased(&self, docs: &[&str]) -> SResult<Vec<String>> {
            let erased = self.erased.lock().unwrap();
            Ok(docs
                .iter()
                .filter(|d| erased.contains(**d))
                .map(|d| d.to_string())
                .collect())
        }
    }

    impl Log {
        fn push(&self, n: u64) {
            let mut e = self.entries.lock().unwrap();
            for _ in 0..n {
                let seq = e.len() as u64 + 1;
                e.push(LogEntry {
                    seq,
                    doc: format!("c_{}", seq % 7),
                    hash: [seq as u8; 32],
                    data: vec![1; 10],
                    device: "d".into(),
                    chain: [0; 32],
                    first_seq: seq,
                });
            }
        }

        fn via(&self, tail: &LogTail, after: u64, upto: u64, most: Batch) -> Vec<LogEntry> {
            tail.entries_after(self, after, upto, most).unwrap()
        }
    }

    fn seqs(v: &[LogEntry]) -> Vec<u64> {
        v.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn every_read_returns_what_the_log_returns() {
        let (log, tail) = (Log::default(), LogTail::default());
        log.push(50);
        let most = Batch {
            entries: 7,
            bytes: usize::MAX,
        };
        for (after, upto) in [(40, 50), (45, 50), (0, 50), (49, 50), (50, 50), (30, 44)] {
            for m in [Batch::ALL, most] {
                assert_eq!(
                    seqs(&log.via(&tail, after, upto, m)),
                    seqs(&log.read(after, upto, m).unwrap()),
                    "({after}, {upto}]"
                );
            }
        }
        // Byte limits too: at least one entry, then up to about the bytes.
        let bytes = Batch {
            entries: usize::MAX,
            bytes: 25,
        };
        assert_eq!(seqs(&log.via(&tail, 40, 50, bytes)), vec![41, 42, 43]);
    }

    #[test]
    fn sessions_at_the_head_share_one_read_of_the_database() {
        let (log, tail) = (Arc::new(Log::default()), Arc::new(LogTail::default()));
        log.push(100);
        log.via(&tail, 100, 100, Batch::ALL);
        for round in 0..5 {
            log.push(10);
            let head = 110 + round * 10;
            let before = log.reads.load(Ordering::Relaxed);
            let threads: Vec<_> = (0..20)
                .map(|_| {
                    let (log, tail) = (log.clone(), tail.clone());
                    std::thread::spawn(move || seqs(&log.via(&tail, head - 10, head, Batch::ALL)))
                })
                .collect();
            for t in threads {
                assert_eq!(t.join().unwrap(), ((head - 9)..=head).collect::<Vec<_>>());
            }
            assert_eq!(
                log.reads.load(Ordering::Relaxed) - before,
                1,
                "round {round}"
            );
        }
    }

    #[test]
    fn a_read_to_the_head_sees_every_commit_made_before_it_was_asked() {
        let (log, tail) = (Log::default(), LogTail::default());
        log.push(10);
        assert_eq!(
            seqs(&log.via(&tail, 0, u64::MAX, Batch::ALL)),
            (1..=10).collect::<Vec<_>>()
        );
        log.push(5);
        // The tail ends at 10, read before these were committed.
        assert_eq!(
            seqs(&log.via(&tail, 10, u64::MAX, Batch::ALL)),
            (11..=15).collect::<Vec<_>>()
        );
        assert_eq!(
            seqs(&log.via(&tail, 3, u64::MAX, Batch::ALL)),
            (4..=15).collect::<Vec<_>>()
        );
        assert!(log.via(&tail, 15, u64::MAX, Batch::ALL).is_empty());
        // A small batch is served from the tail alone.
        let before = log.reads.load(Ordering::Relaxed);
        let two = Batch {
            entries: 2,
            bytes: usize::MAX,
        };
        assert_eq!(seqs(&log.via(&tail, 5, u64::MAX, two)), vec![6, 7]);
        assert_eq!(log.reads.load(Ordering::Relaxed), before);
    }

    /// A source that cannot be read to its head until the test opens it.
    struct Gated {
        log: Log,
        open: Mutex<bool>,
        opened: Condvar,
    }

    impl TailSource for Gated {
        fn read(&self, after: u64, upto: u64, most: Batch) -> SResult<Vec<LogEntry>> {
            self.log.read(after, upto, most)
        }

        fn read_to_head(&self, after: u64, most: Batch) -> SResult<(Vec<LogEntry>, u64)> {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            self.log.read_to_head(after, most)
        }

        fn erased(&self, docs: &[&str]) -> SResult<Vec<String>> {
            self.log.erased(docs)
        }
    }

    #[test]
    fn live_reads_asked_during_a_fetch_share_the_next_one() {
        let source = Arc::new(Gated {
            log: Log::default(),
            open: Mutex::new(false),
            opened: Condvar::new(),
        });
        let tail = Arc::new(LogTail::default());
        source.log.push(30);
        let read = |after: u64| {
            let (source, tail) = (source.clone(), tail.clone());
            std::thread::spawn(move || {
                seqs(
                    &tail
                        .entries_after(&*source, after, u64::MAX, Batch::ALL)
                        .unwrap(),
                )
            })
        };
        let first = read(0);
        while !tail.state().fetching {
            std::thread::yield_now();
        }
        let rest: Vec<_> = (0..19).map(|i| read(i % 10)).collect();
        while tail.state().waiting < 19 {
            std::thread::yield_now();
        }
        *source.open.lock().unwrap() = true;
        source.opened.notify_all();
        assert_eq!(first.join().unwrap(), (1..=30).collect::<Vec<_>>());
        for (i, t) in rest.into_iter().enumerate() {
            let after = (i % 10) as u64;
            assert_eq!(t.join().unwrap(), ((after + 1)..=30).collect::<Vec<_>>());
        }
        // The first read's fetch, and one that began after the others
        // were asked for.
        assert_eq!(source.log.reads.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn an_erased_document_is_never_served_from_memory() {
        let (log, tail) = (Log::default(), LogTail::default());
        log.push(20);
        assert_eq!(log.via(&tail, 10, 20, Batch::ALL).len(), 10);
        log.erased.lock().unwrap().insert("c_3".into());
        let after = log.via(&tail, 10, 20, Batch::ALL);
        assert!(after.iter().all(|e| e.doc != "c_3"), "{:?}", seqs(&after));
        assert_eq!(seqs(&after), seqs(&log.read(10, 20, Batch::ALL).unwrap()));
    }

    #[test]
    fn it_holds_a_bounded_tail_and_reads_far_behind_go_to_the_database() {
        let (log, tail) = (Log::default(), LogTail::default());
        log.push(10);
        log.via(&tail, 0, 10, Batch::ALL);
        let mut head = 10;
        while head < 3 * MOST_ENTRIES as u64 {
            log.push(1_000);
            log.via(&tail, head, head + 1_000, Batch::ALL);
            head += 1_000;
        }
        assert!(tail.state().entries.len() <= MOST_ENTRIES);
        // A catch-up from the start is the database's, and complete.
        let before = log.reads.load(Ordering::Relaxed);
        assert_eq!(log.via(&tail, 0, head, Batch::ALL).len() as u64, head);
        assert_eq!(log.reads.load(Ordering::Relaxed) - before, 1);
    }
}

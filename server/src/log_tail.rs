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
//! - So before serving, the tail asks the database which of the served
//!   documents are erased (one small query). If any is, it forgets
//!   everything and the read goes to the database. The answer is then what
//!   a read made at the moment of that check would have returned.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use muster_core::sync::storage::{Batch, LogEntry, SResult};

/// At most this many entries are held (about 1 KB each for a contact).
const MOST_ENTRIES: usize = 4_096;
/// At most about this many bytes of entry data are held.
const MOST_BYTES: usize = 8 << 20;
/// A read that starts further than this below the newest entry, or ends
/// further than this above the tail, goes to the database: it is a
/// catch-up, read once by one session, not the live tail.
const REACH: u64 = 2_048;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct LogTail {
    state: Mutex<State>,
    fetched: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The entries with seq in `(lo, covered]` that the database returns
    /// for that range, in order.
    entries: VecDeque<LogEntry>,
    lo: u64,
    covered: u64,
    bytes: usize,
    /// Whether a session is fetching more now (the others wait for it).
    fetching: bool,
}

/// How a read is served.
enum Plan {
    /// From the tail: the entries, and the documents to check for erasure.
    Serve(Vec<LogEntry>),
    /// Fetch `(from, to]` into the tail, then look again.
    Fetch { from: u64, to: u64 },
    /// From the database, past the tail.
    Direct,
}

impl LogTail {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries with seq in `(after, upto]`, at most `most`, as `read`
    /// would return them: `read(after, upto, most)` reads the database,
    /// `erased(docs)` returns which of `docs` are erased now. `upto` must
    /// be at most a committed head.
    pub fn entries_after(
        &self,
        after: u64,
        upto: u64,
        most: Batch,
        read: impl Fn(u64, u64, Batch) -> SResult<Vec<LogEntry>>,
        erased: impl Fn(&[&str]) -> SResult<Vec<String>>,
    ) -> SResult<Vec<LogEntry>> {
        loop {
            match self.plan(after, upto, most) {
                Plan::Direct => return read(after, upto, most),
                Plan::Serve(entries) => {
                    let mut docs: Vec<&str> = entries.iter().map(|e| e.doc.as_str()).collect();
                    docs.sort_unstable();
                    docs.dedup();
                    if docs.is_empty() || erased(&docs)?.is_empty() {
                        return Ok(entries);
                    }
                    // Erased since it was fetched: start again from the
                    // database.
                    self.forget();
                    return read(after, upto, most);
                }
                Plan::Fetch { from, to } => {
                    let fetched = read(from, to, Batch::ALL);
                    let mut s = self.state();
                    s.fetching = false;
                    self.fetched.notify_all();
                    let fetched = fetched?;
                    // Still where it was fetched from (nothing forgot it).
                    if s.covered == from {
                        for e in fetched {
                            s.bytes += e.data.len();
                            s.entries.push_back(e);
                        }
                        s.covered = to;
                        while s.entries.len() > MOST_ENTRIES || s.bytes > MOST_BYTES {
                            let Some(old) = s.entries.pop_front() else {
                                break;
                            };
                            s.bytes -= old.data.len();
                            s.lo = old.seq;
                        }
                    }
                }
            }
        }
    }

    /// Decides how to serve a read, waiting while another session fetches.
    fn plan(&self, after: u64, upto: u64, most: Batch) -> Plan {
        let mut s = self.state();
        loop {
            if upto <= after {
                return Plan::Serve(Vec::new());
            }
            if s.lo <= after && upto <= s.covered {
                let start = s.entries.partition_point(|e| e.seq <= after);
                let (mut out, mut bytes) = (Vec::new(), 0);
                for e in s.entries.range(start..) {
                    if e.seq > upto || most.is_full(out.len(), bytes) {
                        break;
                    }
                    bytes += e.data.len();
                    out.push(e.clone());
                }
                return Plan::Serve(out);
            }
            if s.fetching {
                s = self.fetched.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            let extends = s.lo <= after && after <= s.covered && upto - s.covered <= REACH;
            let ahead = after > s.covered && upto - after <= REACH;
            if !(extends || ahead) {
                return Plan::Direct;
            }
            if ahead {
                // Everyone reading is past the tail: it starts again here.
                s.entries.clear();
                s.bytes = 0;
                s.lo = after;
                s.covered = after;
            }
            s.fetching = true;
            return Plan::Fetch {
                from: s.covered,
                to: upto,
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

        fn erased(&self, docs: &[&str]) -> SResult<Vec<String>> {
            let erased = self.erased.lock().unwrap();
            Ok(docs
                .iter()
                .filter(|d| erased.contains(**d))
                .map(|d| d.to_string())
                .collect())
        }

        fn via(&self, tail: &LogTail, after: u64, upto: u64, most: Batch) -> Vec<LogEntry> {
            tail.entries_after(
                after,
                upto,
                most,
                |a, u, m| self.read(a, u, m),
                |d| self.erased(d),
            )
            .unwrap()
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

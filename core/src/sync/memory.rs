//! A relay storage that lives in memory: the reference implementation of
//! [`RelayStorage`], used by the deterministic simulation tests. It can be
//! "restored from a backup" ([`MemoryRelay::truncate`]) to exercise the
//! fallback.

use std::collections::HashMap;
use std::sync::Mutex;

use automerge::{AutoCommit, Change};

use super::relay::{Auth, Author, Grant, LogEntry, NewChange, RelayStorage, VisChange, chain_hash};
use crate::error::{Error, Result};
use crate::model::Millis;

#[derive(Debug, Default)]
struct State {
    log: Vec<LogEntry>,
    seen: HashMap<(String, [u8; 32]), u64>,
    tokens: HashMap<String, (Grant, bool)>,
}

/// In-memory relay storage. See the module documentation.
#[derive(Debug)]
pub struct MemoryRelay {
    epoch: String,
    state: Mutex<State>,
}

impl MemoryRelay {
    /// An empty relay with this epoch.
    pub fn new(epoch: &str) -> MemoryRelay {
        MemoryRelay {
            epoch: epoch.to_owned(),
            state: Mutex::new(State::default()),
        }
    }

    /// Issues a token with a role.
    pub fn add_token(&self, token: &str, role: &str) {
        let grant = Grant {
            token_id: format!("tok-{}", token.len()),
            role: role.to_owned(),
            label: token.to_owned(),
        };
        self.lock().tokens.insert(token.to_owned(), (grant, false));
    }

    /// Revokes a token.
    pub fn revoke(&self, token: &str) {
        if let Some(t) = self.lock().tokens.get_mut(token) {
            t.1 = true;
        }
    }

    /// Keeps only the first `len` log entries, as if restored from an older
    /// backup.
    pub fn truncate(&self, len: usize) {
        let mut s = self.lock();
        s.log.truncate(len);
        let kept: HashMap<_, _> = s
            .log
            .iter()
            .map(|e| ((e.doc.clone(), e.hash), e.seq))
            .collect();
        s.seen = kept;
    }

    /// Number of log entries.
    pub fn len(&self) -> usize {
        self.lock().log.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock only happens in a failing test.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RelayStorage for MemoryRelay {
    fn epoch(&self) -> Result<String> {
        Ok(self.epoch.clone())
    }

    fn authenticate(&self, token: &str, _device: &str, _now: Millis) -> Result<Auth> {
        Ok(match self.lock().tokens.get(token) {
            None => Auth::Unknown,
            Some((_, true)) => Auth::Revoked,
            Some((g, false)) => Auth::Granted(g.clone()),
        })
    }

    fn head(&self) -> Result<(u64, [u8; 32])> {
        Ok(self
            .lock()
            .log
            .last()
            .map_or((0, [0; 32]), |e| (e.seq, e.chain)))
    }

    fn hash_at(&self, seq: u64) -> Result<Option<[u8; 32]>> {
        let s = self.lock();
        Ok(seq
            .checked_sub(1)
            .and_then(|i| s.log.get(i as usize))
            .map(|e| e.chain))
    }

    fn entries_after(
        &self,
        after: u64,
        upto: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<LogEntry>> {
        let s = self.lock();
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in s.log.iter().skip(after as usize) {
            if e.seq > upto || out.len() >= max_entries || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            bytes += e.data.len();
            out.push(e.clone());
        }
        Ok(out)
    }

    fn first_seq(&self, doc: &str) -> Result<Option<u64>> {
        Ok(self.lock().log.iter().find(|e| e.doc == doc).map(|e| e.seq))
    }

    fn snapshot(&self, doc: &str) -> Result<Vec<u8>> {
        let Some(mut d) = self.load_doc(doc)? else {
            return Ok(Vec::new());
        };
        if d.get_missing_deps(&[]).is_empty() {
            return Ok(d.save());
        }
        // `save` would drop changes still waiting for their dependencies:
        // send every change instead (what `load` also accepts).
        Ok(self
            .lock()
            .log
            .iter()
            .filter(|e| e.doc == doc)
            .flat_map(|e| e.data.iter().copied())
            .collect())
    }

    fn load_doc(&self, doc: &str) -> Result<Option<AutoCommit>> {
        let changes: Vec<Change> = self
            .lock()
            .log
            .iter()
            .filter(|e| e.doc == doc)
            .map(|e| {
                Change::from_bytes(e.data.clone()).map_err(|err| Error::bad_document(doc, err))
            })
            .collect::<Result<_>>()?;
        if changes.is_empty() {
            return Ok(None);
        }
        let mut d = AutoCommit::new();
        d.apply_changes(changes)
            .map_err(|e| Error::bad_document(doc, e))?;
        Ok(Some(d))
    }

    fn grant(&self, token_id: &str) -> Result<Auth> {
        Ok(self
            .lock()
            .tokens
            .values()
            .find(|(g, _)| g.token_id == token_id)
            .map_or(Auth::Unknown, |(g, revoked)| {
                if *revoked {
                    Auth::Revoked
                } else {
                    Auth::Granted(g.clone())
                }
            }))
    }

    // Scopes and erasure live in the SQLite relay (the server's storage);
    // the simulation runs coordinators only, who see everything.
    fn vis_head(&self) -> Result<u64> {
        Ok(0)
    }

    fn vis_after(&self, _grant: &Grant, _after: u64, _upto: u64) -> Result<Vec<VisChange>> {
        Ok(Vec::new())
    }

    fn scope_docs(&self, _token_id: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn is_erased(&self, _doc: &str) -> Result<bool> {
        Ok(false)
    }

    fn erase(&self, contact: &str, _author: &Author, _now: Millis) -> Result<()> {
        Err(Error::Protocol(format!(
            "the in-memory relay cannot erase {contact}; use the SQLite relay"
        )))
    }

    fn append(&self, author: &Author, changes: &[NewChange], _now: Millis) -> Result<Vec<u64>> {
        let device = author.device.as_str();
        let mut s = self.lock();
        let mut positions = Vec::with_capacity(changes.len());
        for c in changes {
            let key = (c.doc.clone(), c.hash);
            if let Some(seq) = s.seen.get(&key) {
                positions.push(*seq);
                continue;
            }
            let seq = s.log.len() as u64 + 1;
            let prev = s.log.last().map_or([0; 32], |e| e.chain);
            s.seen.insert(key, seq);
            let first_seq = s.log.iter().find(|e| e.doc == c.doc).map_or(seq, |e| e.seq);
            s.log.push(LogEntry {
                seq,
                doc: c.doc.clone(),
                hash: c.hash,
                data: c.data.clone(),
                device: device.to_owned(),
                chain: chain_hash(&prev, &c.hash),
                first_seq,
            });
            positions.push(seq);
        }
        Ok(positions)
    }
}

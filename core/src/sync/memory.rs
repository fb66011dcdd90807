//! A relay storage that lives in memory: a whole second implementation of
//! [`RelayStorage`] (scopes, the visibility log, erasure, tokens, the
//! audit trail), used by the simulation and the conformance suite, and the
//! shape of what any backend must keep. It can be backed up and restored
//! ([`MemoryRelay::backup`], [`MemoryRelay::restore`]) as a relay's disk
//! would be, to exercise the fallback.
//!
//! A transaction works on a copy of the whole state and replaces it on
//! success: simple and atomic, and costly in proportion to the state, which
//! is what tests hold.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use automerge::AutoCommit;

use super::storage::{
    AuditEntry, Author, Batch, DocState, Head, Inserted, LogEntry, NewChange, RelayStorage,
    RelayTx, SResult, StorageError, TokenInfo, TokenRecord, VisChange, chain_hash,
    doc_from_log_bytes, secret_hash,
};
use crate::model::Millis;

#[derive(Debug, Clone)]
struct Logged {
    entry: LogEntry,
    token_id: String,
    received_at: Millis,
}

#[derive(Debug, Clone)]
struct Doc {
    first_seq: u64,
    snapshot: Option<(Vec<u8>, u64)>,
    since_snapshot: u64,
}

#[derive(Debug, Clone)]
struct Token {
    record: TokenRecord,
    created_at: Millis,
    last_seen_at: Option<Millis>,
    last_device: Option<String>,
    revoked_at: Option<Millis>,
    events: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
struct State {
    log: Vec<Logged>,
    seen: HashMap<(String, [u8; 32]), u64>,
    docs: HashMap<String, Doc>,
    tokens: BTreeMap<String, Token>,
    scopes: HashMap<String, BTreeSet<String>>,
    signups: HashMap<String, BTreeSet<String>>,
    merges: HashMap<String, String>,
    erased: HashMap<String, (Millis, String, String)>,
    /// (token, doc, forget); position = index + 1.
    visibility: Vec<(Option<String>, String, bool)>,
    devices: HashMap<String, (String, Millis)>,
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

    /// Issues a token whose secret is `secret`, with a role (no events):
    /// a test's fixed coordinator or observer.
    pub fn add_token(&self, secret: &str, role: &str) {
        let hash = secret_hash(secret);
        let id: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
        let id = format!("tok_{id}");
        self.lock().tokens.insert(
            id.clone(),
            Token {
                record: TokenRecord {
                    id,
                    secret_hash: hash,
                    role: role.to_owned(),
                    label: secret.to_owned(),
                    revoked: false,
                },
                created_at: 0,
                last_seen_at: None,
                last_device: None,
                revoked_at: None,
                events: BTreeSet::new(),
            },
        );
    }

    /// A copy of everything the relay holds now, as a backup would be.
    pub fn backup(&self) -> MemoryRelay {
        MemoryRelay {
            epoch: self.epoch.clone(),
            state: Mutex::new(self.lock().clone()),
        }
    }

    /// Replaces everything with `backup`'s copy, as restoring an older
    /// backup onto the relay's disk would.
    pub fn restore(&self, backup: &MemoryRelay) {
        let copy = backup.lock().clone();
        *self.lock() = copy;
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

impl State {
    fn snapshot_bytes(&self, doc: &str) -> Vec<u8> {
        let Some(d) = self.docs.get(doc) else {
            return Vec::new();
        };
        let (mut out, upto) = d.snapshot.clone().unwrap_or_default();
        for l in self.log.iter().skip(upto as usize) {
            if l.entry.doc == doc {
                out.extend_from_slice(&l.entry.data);
            }
        }
        out
    }

    fn load(&self, doc: &str) -> SResult<Option<AutoCommit>> {
        doc_from_log_bytes(doc, &self.snapshot_bytes(doc))
    }
}

impl RelayTx for State {
    fn insert_changes(
        &mut self,
        author: &Author,
        changes: &[NewChange],
        now: Millis,
    ) -> SResult<Inserted> {
        let mut out = Inserted::default();
        for (i, c) in changes.iter().enumerate() {
            let key = (c.doc.clone(), c.hash);
            if let Some(&seq) = self.seen.get(&key) {
                out.already_logged(seq, self.log[seq as usize - 1].entry.chain);
                continue;
            }
            let seq = self.log.len() as u64 + 1;
            let prev = self.log.last().map_or([0; 32], |l| l.entry.chain);
            self.seen.insert(key, seq);
            let created = !self.docs.contains_key(&c.doc);
            let doc = self.docs.entry(c.doc.clone()).or_insert(Doc {
                first_seq: seq,
                snapshot: None,
                since_snapshot: 0,
            });
            doc.since_snapshot += 1;
            let (first_seq, since) = (doc.first_seq, doc.since_snapshot);
            let chain = chain_hash(&prev, &c.hash);
            self.log.push(Logged {
                entry: LogEntry {
                    seq,
                    doc: c.doc.clone(),
                    hash: c.hash,
                    data: c.data.clone(),
                    device: author.device.clone(),
                    chain,
                    first_seq,
                },
                token_id: author.token_id.clone(),
                received_at: now,
            });
            out.logged(i, &c.doc, created, (seq, chain), since);
        }
        Ok(out)
    }

    fn load_doc(&mut self, doc: &str) -> SResult<Option<AutoCommit>> {
        self.load(doc)
    }

    fn put_snapshot(&mut self, doc: &str, snapshot: &[u8], upto: u64) -> SResult<()> {
        if let Some(d) = self.docs.get_mut(doc) {
            d.snapshot = Some((snapshot.to_vec(), upto));
            d.since_snapshot = 0;
        }
        Ok(())
    }

    fn record_signup(&mut self, event: &str, contact: &str) -> SResult<bool> {
        Ok(self
            .signups
            .entry(event.to_owned())
            .or_default()
            .insert(contact.to_owned()))
    }

    fn signups_of(&mut self, event: &str) -> SResult<Vec<String>> {
        Ok(self
            .signups
            .get(event)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }

    fn event_holders(&mut self, event: &str) -> SResult<Vec<String>> {
        Ok(self
            .tokens
            .values()
            .filter(|t| !t.record.revoked && t.events.contains(event))
            .map(|t| t.record.id.clone())
            .collect())
    }

    fn doc_holders(&mut self, doc: &str) -> SResult<Vec<String>> {
        let mut holders: Vec<String> = self
            .scopes
            .iter()
            .filter(|(_, s)| s.contains(doc))
            .map(|(t, _)| t.clone())
            .collect();
        holders.sort();
        Ok(holders)
    }

    fn merge_of(&mut self, duplicate: &str) -> SResult<Option<String>> {
        Ok(self.merges.get(duplicate).cloned())
    }

    fn set_merge(&mut self, duplicate: &str, kept: Option<&str>) -> SResult<()> {
        match kept {
            Some(k) => self.merges.insert(duplicate.to_owned(), k.to_owned()),
            None => self.merges.remove(duplicate),
        };
        Ok(())
    }

    fn is_erased(&mut self, doc: &str) -> SResult<bool> {
        Ok(self.erased.contains_key(doc))
    }

    fn created_by(&mut self, token: &str) -> SResult<Vec<String>> {
        let mut out: Vec<String> = self
            .docs
            .iter()
            .filter(|(_, d)| self.log[d.first_seq as usize - 1].token_id == token)
            .map(|(id, _)| id.clone())
            .collect();
        out.sort();
        Ok(out)
    }

    fn scope_of(&mut self, token: &str) -> SResult<BTreeSet<String>> {
        Ok(self.scopes.get(token).cloned().unwrap_or_default())
    }

    fn add_to_scope(&mut self, token: &str, doc: &str) -> SResult<bool> {
        Ok(self
            .scopes
            .entry(token.to_owned())
            .or_default()
            .insert(doc.to_owned()))
    }

    fn remove_from_scope(&mut self, token: Option<&str>, doc: &str) -> SResult<()> {
        match token {
            Some(t) => {
                if let Some(s) = self.scopes.get_mut(t) {
                    s.remove(doc);
                }
            }
            None => {
                for s in self.scopes.values_mut() {
                    s.remove(doc);
                }
            }
        }
        Ok(())
    }

    fn announce(&mut self, token: Option<&str>, doc: &str, forget: bool) -> SResult<()> {
        self.visibility
            .push((token.map(str::to_owned), doc.to_owned(), forget));
        Ok(())
    }

    fn insert_token(&mut self, token: &TokenRecord, now: Millis) -> SResult<()> {
        if self.tokens.contains_key(&token.id)
            || self
                .tokens
                .values()
                .any(|t| t.record.secret_hash == token.secret_hash)
        {
            return Err(StorageError::Refused(format!(
                "a token {} exists already",
                token.id
            )));
        }
        self.tokens.insert(
            token.id.clone(),
            Token {
                record: token.clone(),
                created_at: now,
                last_seen_at: None,
                last_device: None,
                revoked_at: None,
                events: BTreeSet::new(),
            },
        );
        Ok(())
    }

    fn token(&mut self, id: &str) -> SResult<Option<TokenRecord>> {
        Ok(self.tokens.get(id).map(|t| t.record.clone()))
    }

    fn set_token_events(&mut self, id: &str, events: &[String]) -> SResult<()> {
        if let Some(t) = self.tokens.get_mut(id) {
            t.events = events.iter().cloned().collect();
        }
        Ok(())
    }

    fn revoke_token(&mut self, id: &str, now: Millis) -> SResult<()> {
        if let Some(t) = self.tokens.get_mut(id)
            && !t.record.revoked
        {
            t.record.revoked = true;
            t.revoked_at = Some(now);
        }
        Ok(())
    }

    fn claim_device(&mut self, device: &str, token: &str, now: Millis) -> SResult<String> {
        Ok(self
            .devices
            .entry(device.to_owned())
            .or_insert_with(|| (token.to_owned(), now))
            .0
            .clone())
    }

    fn touch_token(&mut self, token: &str, device: &str, now: Millis) -> SResult<()> {
        if let Some(t) = self.tokens.get_mut(token) {
            t.last_seen_at = Some(now);
            t.last_device = Some(device.to_owned());
        }
        Ok(())
    }

    fn erase_doc(&mut self, doc: &str, author: &Author, now: Millis) -> SResult<()> {
        for l in &mut self.log {
            if l.entry.doc == doc {
                l.entry.data = Vec::new();
            }
        }
        self.docs.remove(doc);
        self.erased
            .entry(doc.to_owned())
            .or_insert_with(|| (now, author.token_id.clone(), author.device.clone()));
        Ok(())
    }
}

impl RelayStorage for MemoryRelay {
    fn epoch(&self) -> SResult<String> {
        Ok(self.epoch.clone())
    }

    fn head(&self) -> SResult<Head> {
        let s = self.lock();
        let (seq, chain) = s
            .log
            .last()
            .map_or((0, [0; 32]), |l| (l.entry.seq, l.entry.chain));
        Ok(Head {
            seq,
            chain,
            vis: s.visibility.len() as u64,
        })
    }

    fn hash_at(&self, seq: u64) -> SResult<Option<[u8; 32]>> {
        let s = self.lock();
        Ok(seq
            .checked_sub(1)
            .and_then(|i| s.log.get(i as usize))
            .map(|l| l.entry.chain))
    }

    fn entries_after(&self, after: u64, upto: u64, most: Batch) -> SResult<Vec<LogEntry>> {
        let s = self.lock();
        let mut out = Vec::new();
        let mut bytes = 0;
        for l in s.log.iter().skip(after as usize) {
            let e = &l.entry;
            if e.seq > upto || most.is_full(out.len(), bytes) {
                break;
            }
            if e.data.is_empty() {
                continue; // erased
            }
            bytes += e.data.len();
            let mut e = e.clone();
            // As the log's document row says now.
            e.first_seq = s.docs.get(&e.doc).map_or(e.seq, |d| d.first_seq);
            out.push(e);
        }
        Ok(out)
    }

    fn doc_states(&self, docs: &[&str]) -> SResult<Vec<DocState>> {
        let s = self.lock();
        Ok(docs
            .iter()
            .map(|d| DocState {
                exists: s.docs.contains_key(*d),
                erased: s.erased.contains_key(*d),
            })
            .collect())
    }

    fn snapshots(&self, docs: &[&str]) -> SResult<Vec<Vec<u8>>> {
        let s = self.lock();
        Ok(docs.iter().map(|d| s.snapshot_bytes(d)).collect())
    }

    fn load_doc(&self, doc: &str) -> SResult<Option<AutoCommit>> {
        self.lock().load(doc)
    }

    fn vis_after(&self, token: &str, after: u64, upto: u64) -> SResult<Vec<VisChange>> {
        let s = self.lock();
        Ok(s.visibility
            .iter()
            .enumerate()
            .skip(after as usize)
            .take_while(|(i, _)| (*i as u64) < upto)
            .filter(|(_, (t, _, _))| t.as_deref().is_none_or(|t| t == token))
            .map(|(_, (_, doc, forget))| VisChange {
                doc: doc.clone(),
                forget: *forget,
            })
            .collect())
    }

    fn scope_docs(&self, token: &str) -> SResult<Vec<String>> {
        Ok(self
            .lock()
            .scopes
            .get(token)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }

    fn token_by_secret(&self, secret_hash: &[u8; 32]) -> SResult<Option<TokenRecord>> {
        Ok(self
            .lock()
            .tokens
            .values()
            .find(|t| &t.record.secret_hash == secret_hash)
            .map(|t| t.record.clone()))
    }

    fn token_by_id(&self, id: &str) -> SResult<Option<TokenRecord>> {
        Ok(self.lock().tokens.get(id).map(|t| t.record.clone()))
    }

    fn list_tokens(&self) -> SResult<Vec<TokenInfo>> {
        let s = self.lock();
        let mut out: Vec<TokenInfo> = s
            .tokens
            .values()
            .map(|t| TokenInfo {
                id: t.record.id.clone(),
                role: t.record.role.clone(),
                label: t.record.label.clone(),
                created_at: t.created_at,
                last_seen_at: t.last_seen_at,
                last_device: t.last_device.clone(),
                events: t.events.iter().cloned().collect(),
                revoked_at: t.revoked_at,
            })
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    fn device_labels(&self) -> SResult<HashMap<String, (String, String)>> {
        let s = self.lock();
        Ok(s.devices
            .iter()
            .map(|(device, (token, _))| {
                let (label, role) = s.tokens.get(token).map_or_else(Default::default, |t| {
                    (t.record.label.clone(), t.record.role.clone())
                });
                (device.clone(), (label, role))
            })
            .collect())
    }

    fn audit(&self, doc: Option<&str>) -> SResult<Vec<AuditEntry>> {
        let s = self.lock();
        Ok(s.log
            .iter()
            .filter(|l| doc.is_none_or(|d| d == l.entry.doc))
            .map(|l| {
                let (label, role) = s
                    .tokens
                    .get(&l.token_id)
                    .map_or_else(Default::default, |t| {
                        (t.record.label.clone(), t.record.role.clone())
                    });
                AuditEntry {
                    seq: l.entry.seq,
                    doc: l.entry.doc.clone(),
                    device: l.entry.device.clone(),
                    token_id: l.token_id.clone(),
                    label,
                    role,
                    received_at: l.received_at,
                    erased: l.entry.data.is_empty(),
                }
            })
            .collect())
    }

    fn transaction(&self, f: &mut dyn FnMut(&mut dyn RelayTx) -> SResult<()>) -> SResult<()> {
        let mut state = self.lock();
        let mut copy = state.clone();
        f(&mut copy)?;
        *state = copy;
        Ok(())
    }
}

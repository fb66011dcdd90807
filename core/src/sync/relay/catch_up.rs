//! What a device is sent: catch-up batches (documents newly in view whole,
//! then the log), and live entries once caught up.

use super::access::may_see;
use super::*;
use crate::sync::storage::Batch;

impl RelaySession {
    /// The log grew (or scopes changed): once live, queue what the device
    /// may now see — documents newly in its view, whole; documents erased
    /// or out of its view, to forget — then the new entries of other
    /// devices within its view.
    pub fn handle_log_advanced(&mut self, storage: &dyn RelayStorage) -> SResult<()> {
        if !self.is_live() {
            return Ok(());
        }
        let vis_upto = storage.head()?.vis;
        if vis_upto > self.vis {
            let token = self
                .grant
                .as_ref()
                .map(|g| g.token_id.clone())
                .unwrap_or_default();
            let changes = storage.vis_after(&token, self.vis, vis_upto)?;
            self.vis = vis_upto;
            let changes: Vec<VisChange> = changes
                .into_iter()
                // Created by this very device: it has it.
                .filter(|v| v.forget || !self.created.contains(&v.doc))
                .collect();
            let out = self.vis_entries(storage, changes)?;
            self.queue_live(out);
        }
        loop {
            let most = Batch {
                entries: wire::BATCH_ENTRIES,
                bytes: wire::BATCH_BYTES,
            };
            let entries = storage.entries_after(self.cursor.0, u64::MAX, most)?;
            let Some(last) = entries.last() else {
                return Ok(());
            };
            self.cursor = (last.seq, last.chain);
            let out: Vec<Entry> = entries
                .into_iter()
                .filter(|e| e.device != self.device && self.visible(&e.doc))
                .map(|e| Entry {
                    doc: e.doc,
                    form: Form::Change,
                    data: ByteBuf::from(e.data),
                })
                .collect();
            self.queue_live(out);
        }
    }

    /// The entries that tell the device about visibility changes, in
    /// order (none for a document it may not see or the relay no longer
    /// has); keeps the session's scope current. The snapshots are read in
    /// one call.
    pub(super) fn vis_entries(
        &mut self,
        storage: &dyn RelayStorage,
        changes: Vec<VisChange>,
    ) -> SResult<Vec<Entry>> {
        let mut entries = Vec::with_capacity(changes.len());
        for v in changes {
            if let Some(scope) = &mut self.scope {
                if v.forget {
                    scope.remove(&v.doc);
                } else {
                    scope.insert(v.doc.clone());
                }
            }
            if v.forget {
                entries.push(Entry {
                    doc: v.doc,
                    form: Form::Forget,
                    data: ByteBuf::new(),
                });
            } else if self.visible(&v.doc) {
                entries.push(Entry {
                    doc: v.doc,
                    form: Form::Snapshot,
                    data: ByteBuf::new(),
                });
            }
        }
        fill_snapshots(storage, &mut entries)?;
        entries.retain(|e| e.form == Form::Forget || !e.data.is_empty());
        Ok(entries)
    }

    /// Starts catching the device up from `base` (its cursor, whose
    /// chained hash is `base_hash`) to `upto`, and in the visibility log
    /// from `vis_base` to `vis_upto` (`None`: a device that never had a
    /// batch). Until the log pass moves it, every batch carries the
    /// device's own cursor, hash included: a connection lost before then
    /// must leave the device a cursor the relay still trusts.
    pub(super) fn start_catch_up(
        &mut self,
        storage: &dyn RelayStorage,
        (base, base_hash): (u64, [u8; 32]),
        upto: u64,
        vis_base: Option<u64>,
        vis_upto: u64,
    ) -> SResult<()> {
        self.cursor = (base, base_hash);
        self.vis = vis_base.unwrap_or(0);
        let mut whole = VecDeque::new();
        let mut next_after = base;
        let grant = self.grant.clone();
        if let (Some(scope), 0) = (&self.scope, base) {
            // A scoped device's first sync: its scope, whole, and nothing of
            // the log — it costs what the device may see, not how big the
            // organisation is. Its batches carry the visibility position the
            // scope was read at: a first sync cut short and tried again
            // starts from there, so that what left the view in between (an
            // erasure, a token edit) is forgotten before the view is sent
            // again whole.
            self.vis = vis_upto;
            if let (Some(vis_base), Some(grant)) = (vis_base, &grant) {
                whole.extend(
                    storage
                        .vis_after(&grant.token_id, vis_base, vis_upto)?
                        .into_iter()
                        .filter(|v| v.forget && !scope.contains(&v.doc)),
                );
            }
            let mut docs: Vec<&String> = scope.iter().collect();
            docs.sort();
            whole.extend(docs.into_iter().map(|d| VisChange {
                doc: d.clone(),
                forget: false,
            }));
            next_after = upto;
        } else if let Some(grant) = &grant
            && vis_upto > self.vis
        {
            whole.extend(storage.vis_after(&grant.token_id, self.vis, vis_upto)?);
        }
        self.phase = Phase::CatchingUp {
            next_after,
            upto,
            base,
            sent_whole: HashSet::new(),
            whole,
            vis_upto,
        };
        Ok(())
    }

    pub(super) fn next_batch(&mut self, storage: &dyn RelayStorage) -> SResult<()> {
        if self.next_whole_batch(storage)? {
            return Ok(());
        }
        let (grant, scope) = (self.grant.as_ref(), self.scope.as_ref());
        let Phase::CatchingUp {
            next_after,
            upto,
            base,
            sent_whole,
            vis_upto,
            ..
        } = &mut self.phase
        else {
            return Ok(());
        };
        self.vis = *vis_upto;
        let log = storage.entries_after(
            *next_after,
            *upto,
            Batch {
                entries: wire::BATCH_ENTRIES,
                bytes: self.batch_bytes,
            },
        )?;
        let Some(last) = log.last() else {
            // Done. The cursor is the catch-up's end (its hash read once).
            let hash = if *upto == 0 {
                [0; 32]
            } else {
                storage.hash_at(*upto)?.unwrap_or([0; 32])
            };
            self.cursor = (*upto, hash);
            let cursor = self.wire_cursor();
            self.transmit
                .push_back(wire::encode(&Message::CaughtUp { cursor }));
            self.phase = Phase::Live;
            // Entries appended during catch-up are sent right away.
            return self.handle_log_advanced(storage);
        };
        let (mut last_seq, mut last_hash) = (last.seq, last.chain);
        let mut entries = Vec::with_capacity(log.len());
        // Snapshots can be much larger than the log entries they replace:
        // the batch ends once its bytes reach the target, wherever that is.
        // Entries go in groups, each group's snapshots read in one call,
        // each group as large as the bytes left allow at the sizes seen.
        let mut bytes = 0;
        let mut sizes = SizeGuess::default();
        let mut log = log.into_iter().peekable();
        while bytes < self.batch_bytes && log.peek().is_some() {
            let mut group = Vec::new();
            for e in log.by_ref().take(sizes.room(self.batch_bytes - bytes)) {
                (last_seq, last_hash) = (e.seq, e.chain);
                if sent_whole.contains(&e.doc)
                    || (e.device == self.device && *base > 0)
                    || !may_see(grant, scope, &e.doc)
                {
                    continue;
                }
                if *base == 0 && e.first_seq != e.seq {
                    // A first sync sends each document whole at its first
                    // entry; its later entries are in that snapshot. (Read
                    // from the log, not kept in a set: a thousand fresh
                    // devices would each hold one as large as the organisation.)
                    continue;
                }
                if e.first_seq > *base {
                    // New to the device: whole.
                    if *base > 0 {
                        sent_whole.insert(e.doc.clone());
                    }
                    group.push(Entry {
                        doc: e.doc,
                        form: Form::Snapshot,
                        data: ByteBuf::new(),
                    });
                } else {
                    group.push(Entry {
                        doc: e.doc,
                        form: Form::Change,
                        data: ByteBuf::from(e.data),
                    });
                }
            }
            fill_snapshots(storage, &mut group)?;
            for e in group {
                sizes.saw(e.data.len());
                bytes += e.data.len();
                entries.push(e);
            }
        }
        *next_after = last_seq;
        self.sent_entries += entries.len() as u64;
        let remaining = upto.saturating_sub(last_seq);
        self.cursor = (last_seq, last_hash);
        let cursor = self.wire_cursor();
        self.transmit.push_back(wire::encode(&Message::Batch {
            entries,
            cursor,
            remaining,
        }));
        Ok(())
    }

    /// Sends the next batch of documents the catch-up sends whole or tells
    /// the device to forget, if any are left. Returns whether it did.
    pub(super) fn next_whole_batch(&mut self, storage: &dyn RelayStorage) -> SResult<bool> {
        let (mut todo, log_left) = match &mut self.phase {
            Phase::CatchingUp {
                whole,
                upto,
                next_after,
                ..
            } if !whole.is_empty() => (std::mem::take(whole), upto.saturating_sub(*next_after)),
            _ => return Ok(false),
        };
        let mut entries = Vec::new();
        let mut size = 0;
        let mut sizes = SizeGuess::default();
        while size < self.batch_bytes && entries.len() < wire::BATCH_ENTRIES && !todo.is_empty() {
            let room = sizes
                .room(self.batch_bytes - size)
                .min(wire::BATCH_ENTRIES - entries.len());
            let group: Vec<VisChange> = todo.drain(..room.min(todo.len())).collect();
            if let Phase::CatchingUp { sent_whole, .. } = &mut self.phase {
                sent_whole.extend(group.iter().map(|v| v.doc.clone()));
            }
            for e in self.vis_entries(storage, group)? {
                sizes.saw(e.data.len());
                size += e.data.len();
                entries.push(e);
            }
        }
        let left = todo.len() as u64;
        if let Phase::CatchingUp { whole, .. } = &mut self.phase {
            *whole = todo;
        }
        self.sent_entries += entries.len() as u64;
        // The log position does not move until the log pass.
        let cursor = self.wire_cursor();
        self.transmit.push_back(wire::encode(&Message::Batch {
            entries,
            cursor,
            remaining: log_left + left,
        }));
        Ok(true)
    }
}

/// Reads, in one call, the snapshots of the entries marked
/// [`Form::Snapshot`] (their data empty until then).
fn fill_snapshots(storage: &dyn RelayStorage, entries: &mut [Entry]) -> SResult<()> {
    let docs: Vec<&str> = entries
        .iter()
        .filter(|e| e.form == Form::Snapshot)
        .map(|e| e.doc.as_str())
        .collect();
    if docs.is_empty() {
        return Ok(());
    }
    let mut snapshots = storage.snapshots(&docs)?.into_iter();
    for e in entries.iter_mut().filter(|e| e.form == Form::Snapshot) {
        e.data = ByteBuf::from(snapshots.next().unwrap_or_default());
    }
    Ok(())
}

/// How many entries the next group of a batch takes: as many as the bytes
/// left hold at the average size seen so far (a few hundred bytes assumed
/// before any), between 1 and 256, so that a batch overshoots its target
/// by about one group at most.
#[derive(Debug, Default)]
struct SizeGuess {
    bytes: usize,
    count: usize,
}

impl SizeGuess {
    fn saw(&mut self, size: usize) {
        self.bytes += size;
        self.count += 1;
    }

    fn room(&self, bytes_left: usize) -> usize {
        let average = self
            .bytes
            .checked_div(self.count)
            .map_or(512, |a| a.max(64));
        (bytes_left / average).clamp(1, 256)
    }
}

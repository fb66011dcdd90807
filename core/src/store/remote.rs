//! What the store does for sync: apply batches from the relay in one
//! transaction with the cursor, hand out pending changes, remember refusals,
//! and run Automerge's per-document sync for the fallback.

use std::collections::{HashMap, HashSet};

use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, Change, ChangeHash};
use rusqlite::{OptionalExtension, params};

use super::{PendingChange, Store, load_doc, persist, store_changes};
use crate::error::{Error, Result};
use crate::model::{self, DocKind};

/// What applying a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Documents that changed.
    pub changed_docs: Vec<String>,
    /// Entries that brought nothing new.
    pub duplicates: usize,
    /// Entries that could not be used (undecodable, malformed id, wrong
    /// kind), with the reason. They are skipped so that one bad entry
    /// cannot block sync forever; the rest of the batch is applied.
    pub refused: Vec<(String, String)>,
}

/// Where this device stands in the relay's log: the `seq` and chained hash
/// of the last entry it holds, the relay's epoch, and its position in the
/// relay's visibility log. Kept in the store's settings as JSON, in the
/// shape the protocol's cursor has (so stores written before read the
/// same); the sync session converts between the two.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogPosition {
    /// Sequence number of the entry (0 for the empty log).
    pub seq: u64,
    /// The log's chained hash at `seq` (32 zero bytes for the empty log).
    #[serde(with = "serde_bytes")]
    pub hash: Vec<u8>,
    /// The relay's epoch.
    pub epoch: String,
    /// Position in the relay's visibility log; 0 if absent.
    #[serde(default)]
    pub vis: u64,
}

/// How the data of a document arriving from the relay reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArrivalForm {
    /// One encoded change.
    Change,
    /// A whole document (what `load` accepts).
    Snapshot,
    /// The device must delete the document (erased, or out of its view).
    Forget,
}

/// One document's data from the relay, as the store takes it.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    pub doc: String,
    pub form: ArrivalForm,
    pub data: Vec<u8>,
}

/// A document made ahead from its first entry in a batch
/// ([`Store::preload_new_documents`]): the document, the result of
/// loading or applying the entry, and the change itself when the entry
/// was one (to be stored if it waits for dependencies).
type Preloaded = (AutoCommit, std::result::Result<(), String>, Option<Change>);

impl Store {
    /// Where this device stands in the relay's log, if it synced before.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn sync_cursor(&self) -> Result<Option<LogPosition>> {
        self.meta_json("sync_cursor")
    }

    /// The log position of this device's latest change the relay
    /// acknowledged, if any.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn ack_position(&self) -> Result<Option<LogPosition>> {
        self.meta_json("ack_position")
    }

    /// Records the log position of the latest acknowledged change, if it
    /// is later than the one recorded.
    pub(crate) fn set_ack_position(&mut self, position: &LogPosition) -> Result<()> {
        if self
            .ack_position()?
            .is_some_and(|old| old.epoch == position.epoch && old.seq >= position.seq)
        {
            return Ok(());
        }
        self.set_meta_json("ack_position", Some(position))
    }

    /// Replaces the recorded ack position (after the fallback, positions
    /// from before the relay's restore mean nothing).
    pub(crate) fn replace_ack_position(&mut self, position: Option<&LogPosition>) -> Result<()> {
        self.set_meta_json("ack_position", position)
    }

    /// A device setting (relay URL, token…), if set.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [format!("setting.{key}")],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Sets a device setting, durably.
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![format!("setting.{key}"), value],
        )?;
        Ok(())
    }

    fn meta_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let value: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        match value {
            None => Ok(None),
            Some(v) => serde_json::from_str(&v)
                .map(Some)
                .map_err(|e| Error::Corrupt {
                    path: self.path.clone(),
                    detail: format!("stored {key}: {e}"),
                }),
        }
    }

    fn set_meta_json<T: serde::Serialize>(&self, key: &str, value: Option<&T>) -> Result<()> {
        match value {
            None => {
                self.conn
                    .execute("DELETE FROM meta WHERE key = ?1", [key])?;
            }
            Some(v) => {
                let json = serde_json::to_string(v).map_err(|e| Error::Migration(e.to_string()))?;
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![key, json],
                )?;
            }
        }
        Ok(())
    }

    /// The documents in `entries` this device does not hold yet, each made
    /// from its first entry in the batch (a snapshot loaded, or a change
    /// applied, into an empty document) exactly as [`Store::apply_entries`]
    /// would make it, but on two threads: that is most of a first sync's
    /// work, and of receiving many new records through the log.
    fn preload_new_documents<'e>(
        &self,
        entries: &'e [Arrival],
        erasing: &HashSet<String>,
    ) -> Result<HashMap<&'e str, Preloaded>> {
        let mut first = HashSet::new();
        let candidates: Vec<&Arrival> = entries
            .iter()
            .filter(|e| {
                first.insert(e.doc.as_str())
                    && e.form != ArrivalForm::Forget
                    && DocKind::of_id(&e.doc).is_some()
                    && !erasing.contains(&e.doc)
                    && !self.cache.contains_key(&e.doc)
            })
            .collect();
        if candidates.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<&str> = candidates.iter().map(|e| e.doc.as_str()).collect();
        let held = self.ids_among(&serde_json::to_string(&ids)?, "SELECT doc_id FROM docs")?;
        let todo: Vec<&Arrival> = candidates
            .into_iter()
            .filter(|e| !held.contains(&e.doc))
            .collect();
        let actor = &self.actor;
        let loaded = super::scan::on_two_threads(todo, |e| {
            let mut doc = AutoCommit::new().with_actor(actor.clone());
            let mut change = None;
            let result = match e.form {
                ArrivalForm::Change => Change::from_bytes(e.data.to_vec())
                    .map_err(|e| e.to_string())
                    .and_then(|c| {
                        change = Some(c.clone());
                        doc.apply_changes([c]).map_err(|e| e.to_string())
                    }),
                _ => doc
                    .load_incremental(&e.data)
                    .map(drop)
                    .map_err(|e| e.to_string()),
            };
            (e.doc.as_str(), (doc, result, change))
        });
        Ok(loaded.into_iter().collect())
    }

    /// Applies entries received from the relay and records `cursor`, all in
    /// one transaction: either the store holds all of it with the new
    /// cursor, or none of it with the old one.
    pub(crate) fn apply_entries(
        &mut self,
        entries: &[Arrival],
        cursor: &LogPosition,
    ) -> Result<BatchOutcome> {
        let mut outcome = BatchOutcome::default();
        let mut changed: HashSet<String> = HashSet::new();
        let tx = self.conn.unchecked_transaction()?;
        let mut touched: HashMap<String, AutoCommit> = HashMap::new();
        // Contacts erased here, their erasure not yet confirmed: what other
        // devices wrote to them before the relay erased them must not bring
        // them back.
        let erasing: HashSet<String> = self
            .pending_erasures()?
            .into_iter()
            .flat_map(|c| [model::private_id_of(&c), c])
            .collect();
        let mut preloaded = self.preload_new_documents(entries, &erasing)?;
        for entry in entries {
            let Some(kind) = DocKind::of_id(&entry.doc) else {
                outcome
                    .refused
                    .push((entry.doc.clone(), "malformed document id".into()));
                continue;
            };
            if entry.form != ArrivalForm::Forget && erasing.contains(&entry.doc) {
                continue;
            }
            if entry.form == ArrivalForm::Forget {
                touched.remove(&entry.doc);
                self.cache.remove(&entry.doc);
                if forget_doc(&tx, kind, &entry.doc)? && changed.insert(entry.doc.clone()) {
                    outcome.changed_docs.push(entry.doc.clone());
                }
                continue;
            }
            // A document made ahead (`preload_new_documents`): the
            // document as it was before is empty, the entry's result is in.
            let mut loaded = None;
            let mut held_back = None;
            let mut doc = match touched.remove(&entry.doc) {
                Some(doc) => doc,
                None => match self.cache.remove(&entry.doc) {
                    Some(doc) => doc,
                    None => match preloaded.remove(entry.doc.as_str()) {
                        Some((doc, result, change)) => {
                            loaded = Some(result);
                            // New to the document, so stored if it waits.
                            held_back = change;
                            doc
                        }
                        None => load_doc(&tx, &entry.doc, &self.actor)?
                            .unwrap_or_else(|| AutoCommit::new().with_actor(self.actor.clone())),
                    },
                },
            };
            let before = if loaded.is_some() {
                Vec::new()
            } else {
                doc.get_heads()
            };
            let is_new = before.is_empty();
            // A change whose dependencies are not here yet is queued by
            // Automerge outside the document: the heads do not move, but it
            // is new and must be stored (`held_back`), or it is lost once
            // the cursor has passed it.
            let result = match (&entry.form, loaded) {
                (_, Some(result)) => result,
                (ArrivalForm::Change, None) => Change::from_bytes(entry.data.to_vec())
                    .map_err(|e| e.to_string())
                    .and_then(|c| {
                        if doc.get_change_by_hash(&c.hash()).is_none() {
                            held_back = Some(c.clone());
                        }
                        doc.apply_changes([c]).map_err(|e| e.to_string())
                    }),
                (ArrivalForm::Snapshot, None) => doc
                    .load_incremental(&entry.data)
                    .map(drop)
                    .map_err(|e| e.to_string()),
                (ArrivalForm::Forget, None) => Ok(()),
            };
            let kind_ok = model::kind_of(&doc).is_none_or(|k| k == kind);
            match (result, kind_ok) {
                (Err(e), _) => {
                    outcome.refused.push((entry.doc.clone(), e));
                    // The document may be half-changed in memory: drop it.
                    continue;
                }
                (Ok(()), false) => {
                    outcome
                        .refused
                        .push((entry.doc.clone(), format!("its id says {}", kind.as_str())));
                    continue;
                }
                (Ok(()), true) => {}
            }
            let after = doc.get_heads();
            if after == before {
                match held_back {
                    Some(change) => store_changes(&tx, &entry.doc, kind, &doc, &[change], false)?,
                    None => outcome.duplicates += 1,
                }
                touched.insert(entry.doc.clone(), doc);
                continue;
            }
            if is_new && entry.form == ArrivalForm::Snapshot {
                tx.prepare_cached(
                    "INSERT INTO docs (doc_id, kind, snapshot) VALUES (?1, ?2, ?3)
                     ON CONFLICT (doc_id) DO UPDATE SET snapshot = excluded.snapshot",
                )?
                .execute(params![
                    entry.doc,
                    kind.as_str(),
                    entry.data.as_slice()
                ])?;
            } else {
                let new = doc.get_changes(&before);
                store_changes(&tx, &entry.doc, kind, &doc, &new, false)?;
            }
            if changed.insert(entry.doc.clone()) {
                outcome.changed_docs.push(entry.doc.clone());
            }
            touched.insert(entry.doc.clone(), doc);
        }
        // Index rows once per changed document, after all its entries.
        // A document dropped after a later refused entry is read back.
        let mut reread = HashMap::new();
        for id in &outcome.changed_docs {
            if !touched.contains_key(id)
                && let Some(doc) = load_doc(&tx, id, &self.actor)?
            {
                reread.insert(id.clone(), doc);
            }
        }
        let docs: Vec<(DocKind, &str, &AutoCommit)> = outcome
            .changed_docs
            .iter()
            .filter_map(|id| {
                let doc = touched.get(id).or_else(|| reread.get(id))?;
                Some((DocKind::of_id(id)?, id.as_str(), doc))
            })
            .collect();
        let conflicted = super::index::reindex_all(&tx, &docs)?;
        // Same connection, so this is part of the transaction.
        self.set_meta_json("sync_cursor", Some(cursor))?;
        tx.commit()?;
        self.conflicted.extend(conflicted);
        for (id, doc) in touched {
            self.put_doc(&id, doc);
        }
        self.forward_after_apply(&outcome.changed_docs)?;
        Ok(outcome)
    }

    /// Erases a contact from this device at once — its record, its private
    /// ledger, its index rows, even changes not yet sent — and queues the
    /// request that the relay erase it everywhere (sent at the next sync by
    /// a coordinator's device; see [`Store::pending_erasures`]). Sign-ups
    /// that name the contact keep only its id.
    pub fn erase_contact(&mut self, contact_id: &str) -> Result<()> {
        self.require(DocKind::Contact, contact_id)?;
        let mut pending = self.pending_erasures()?;
        if !pending.iter().any(|d| d == contact_id) {
            pending.push(contact_id.to_owned());
        }
        let private = model::private_id_of(contact_id);
        let tx = self.conn.unchecked_transaction()?;
        forget_doc(&tx, DocKind::Contact, contact_id)?;
        forget_doc(&tx, DocKind::ContactPrivate, &private)?;
        self.set_meta_json("pending_erasures", Some(&pending))?;
        tx.commit()?;
        self.cache.remove(contact_id);
        self.cache.remove(&private);
        self.touch([contact_id.to_owned(), private]);
        Ok(())
    }

    /// Contacts erased here whose erasure the relay has not confirmed.
    pub fn pending_erasures(&self) -> Result<Vec<String>> {
        Ok(self.meta_json("pending_erasures")?.unwrap_or_default())
    }

    /// The relay confirmed the erasure of `contact_id`.
    pub(crate) fn erasure_confirmed(&mut self, contact_id: &str) -> Result<()> {
        let mut pending = self.pending_erasures()?;
        pending.retain(|d| d != contact_id);
        if pending.is_empty() {
            self.set_meta_json::<Vec<String>>("pending_erasures", None)
        } else {
            self.set_meta_json("pending_erasures", Some(&pending))
        }
    }

    /// Local changes not yet acknowledged with a local sequence number
    /// after `after_seq`, oldest first: what a session has not pushed yet.
    pub(crate) fn pending_after(&self, after_seq: i64, limit: usize) -> Result<Vec<PendingChange>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, doc_id, hash, data FROM changes
             WHERE acked = 0 AND seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![after_seq, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(seq, doc_id, hash, data)| {
                let hash = ChangeHash::try_from(hash.as_slice())
                    .map_err(|e| Error::bad_document(&doc_id, e))?;
                Ok(PendingChange {
                    seq,
                    doc_id,
                    hash,
                    data,
                })
            })
            .collect()
    }

    /// Records that the relay refused a change for good: it is no longer
    /// pushed (it stays in the local document; the reason is kept).
    pub(crate) fn mark_rejected(&mut self, hash: &ChangeHash, reason: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.prepare_cached("UPDATE changes SET acked = 2 WHERE hash = ?1 AND acked = 0")?
            .execute([hash.as_ref()])?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_rejection', ?1)",
        )?
        .execute([reason])?;
        tx.commit()?;
        Ok(())
    }

    /// Whether this device holds the change `hash` of document `doc_id`.
    #[cfg(feature = "internals")]
    pub fn has_change(&mut self, doc_id: &str, hash: &ChangeHash) -> Result<bool> {
        let Some(kind) = DocKind::of_id(doc_id) else {
            return Ok(false);
        };
        if !self.exists(doc_id)? {
            return Ok(false);
        }
        Ok(self
            .doc_mut(doc_id, kind)?
            .get_change_by_hash(hash)
            .is_some())
    }

    /// Fallback sync: the next Automerge sync message for `doc_id` towards
    /// a peer whose state is `state`, or `None` when there is nothing to say.
    pub(crate) fn doc_sync_message(
        &mut self,
        doc_id: &str,
        state: &mut sync::State,
    ) -> Result<Option<Vec<u8>>> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let doc = self.doc_mut(doc_id, kind)?;
        Ok(doc.sync().generate_sync_message(state).map(|m| m.encode()))
    }

    /// Fallback sync: applies an Automerge sync message from the relay for
    /// `doc_id` (created if this device did not have it) and stores what it
    /// brought, as changes the relay holds.
    pub(crate) fn receive_doc_sync(
        &mut self,
        doc_id: &str,
        state: &mut sync::State,
        message: &[u8],
    ) -> Result<()> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let message = sync::Message::decode(message).map_err(|e| Error::bad_document(doc_id, e))?;
        let mut doc = match self.take_doc(doc_id)? {
            Some(doc) => doc,
            None => AutoCommit::new().with_actor(self.actor.clone()),
        };
        let before = doc.get_heads();
        doc.sync()
            .receive_sync_message(state, message)
            .map_err(|e| Error::bad_document(doc_id, e))?;
        if model::kind_of(&doc).is_some_and(|k| k != kind) {
            return Err(Error::bad_document(
                doc_id,
                format!("its id says {}", kind.as_str()),
            ));
        }
        let new = doc.get_changes(&before);
        if !new.is_empty() {
            let tx = self.conn.transaction()?;
            let conflicted = persist(&tx, doc_id, kind, &doc, &new, false)?;
            tx.commit()?;
            if conflicted {
                self.conflicted.insert(doc_id.to_owned());
            }
        }
        self.put_doc(doc_id, doc);
        Ok(())
    }
}

/// Deletes every trace of a document from the store: its changes (sent or
/// not), its snapshot, its index rows. Returns whether there was one.
fn forget_doc(tx: &rusqlite::Transaction<'_>, kind: DocKind, doc_id: &str) -> Result<bool> {
    tx.prepare_cached("DELETE FROM changes WHERE doc_id = ?1")?
        .execute([doc_id])?;
    super::index::unindex(tx, kind, doc_id)?;
    Ok(tx
        .prepare_cached("DELETE FROM docs WHERE doc_id = ?1")?
        .execute([doc_id])?
        > 0)
}

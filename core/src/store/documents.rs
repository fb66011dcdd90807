//! The store's documents as documents: conflicting values of a field,
//! the changes of a document and applying a replica's changes, the queue
//! of local changes the relay has not confirmed, compaction.

use super::*;

impl Store {
    /// Every value a field of a record holds after a merge, the winner (the
    /// value the record shows) first. See [`model::conflicts`].
    pub fn field_conflicts(
        &mut self,
        doc_id: &str,
        path: &[&str],
    ) -> Result<Vec<serde_json::Value>> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let doc = self.doc(doc_id, kind)?;
        model::conflicts(doc, path)
    }

    /// Settles a conflict on one of the values the field holds
    /// ([`model::choose_value`]): "keep this one", as a person decides it.
    pub fn resolve_conflict(
        &mut self,
        doc_id: &str,
        path: &[&str],
        chosen: &serde_json::Value,
        now: Millis,
    ) -> Result<()> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        self.edit_doc(doc_id, kind, now, |doc| {
            model::choose_value(doc, path, chosen)
        })
    }

    /// The ids of every document on this device, in id order.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn doc_ids(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id FROM docs ORDER BY doc_id")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// The current heads of a document.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn heads(&mut self, doc_id: &str) -> Result<Vec<ChangeHash>> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        Ok(self.doc_mut(doc_id, kind)?.get_heads())
    }

    /// Every change of a document this device knows, encoded, in causal order.
    #[cfg(feature = "internals")]
    pub fn changes_of(&mut self, doc_id: &str) -> Result<Vec<Vec<u8>>> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let doc = self.doc_mut(doc_id, kind)?;
        Ok(doc
            .get_changes(&[])
            .into_iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect())
    }

    /// Stores changes of a document received from elsewhere (the relay, or
    /// another device in tests), merges them and updates the indexes, all in
    /// one transaction. Undecodable bytes, a malformed id, or changes that
    /// would make the document another kind than its id says are refused
    /// and change nothing. Changes already held are counted and skipped.
    #[cfg(feature = "internals")]
    pub fn apply_changes(&mut self, doc_id: &str, changes: &[Vec<u8>]) -> Result<Applied> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let mut parsed = Vec::with_capacity(changes.len());
        for bytes in changes {
            let change =
                Change::from_bytes(bytes.clone()).map_err(|e| Error::bad_document(doc_id, e))?;
            parsed.push(change);
        }
        let mut doc = match self.take_doc(doc_id)? {
            Some(doc) => doc,
            None => AutoCommit::new().with_actor(self.actor.clone()),
        };
        let mut fresh = Vec::new();
        let mut applied = Applied::default();
        for change in parsed {
            if doc.get_change_by_hash(&change.hash()).is_some()
                || fresh.iter().any(|c: &Change| c.hash() == change.hash())
            {
                applied.duplicates += 1;
            } else {
                fresh.push(change);
            }
        }
        if fresh.is_empty() {
            self.put_doc(doc_id, doc);
            return Ok(applied);
        }
        doc.apply_changes(fresh.clone())
            .map_err(|e| Error::bad_document(doc_id, e))?;
        if let Some(found) = model::kind_of(&doc)
            && found != kind
        {
            return Err(Error::bad_document(
                doc_id,
                format!(
                    "the changes make it a {} but its id says {}",
                    found.as_str(),
                    kind.as_str()
                ),
            ));
        }
        let tx = self.conn.transaction()?;
        let conflicted = persist(&tx, doc_id, kind, &doc, &fresh, false)?;
        tx.commit()?;
        if conflicted {
            self.conflicted.insert(doc_id.to_owned());
        }
        applied.new_changes = fresh.len();
        self.put_doc(doc_id, doc);
        self.forward_after_apply(&[doc_id.to_owned()])?;
        Ok(applied)
    }

    /// Local changes the relay has not yet acknowledged, oldest first.
    #[cfg(feature = "internals")]
    pub fn pending_changes(&self, limit: usize) -> Result<Vec<PendingChange>> {
        self.pending_after(0, limit)
    }

    /// How many local changes wait for the relay.
    pub fn pending_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM changes WHERE acked = 0", [], |r| {
                r.get(0)
            })?)
    }

    /// Marks changes as held by the relay, so that compaction may fold them.
    /// `now` is recorded as the time of the last acknowledgement. Returns
    /// how many were newly acknowledged.
    #[cfg_attr(feature = "internals", visibility::make(pub))]
    pub(crate) fn acknowledge(&mut self, hashes: &[ChangeHash], now: Millis) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut count = 0;
        {
            let mut stmt =
                tx.prepare_cached("UPDATE changes SET acked = 1 WHERE hash = ?1 AND acked = 0")?;
            for h in hashes {
                count += stmt.execute([h.as_ref()])?;
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_ack_at', ?1)",
            )?
            .execute([now.to_string()])?;
        }
        tx.commit()?;
        Ok(count)
    }

    /// When the relay last acknowledged changes of this device, if ever.
    pub fn last_acknowledged_at(&self) -> Result<Option<Millis>> {
        let value: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'last_ack_at'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(value.and_then(|v| v.parse().ok()))
    }

    /// Compacts a document now: its history is saved as one snapshot and
    /// the stored changes the relay already holds are dropped. Changes not
    /// yet acknowledged are kept for pushing. Returns the rows dropped.
    #[cfg(feature = "internals")]
    pub fn compact(&mut self, doc_id: &str) -> Result<usize> {
        let kind = DocKind::of_id(doc_id).ok_or_else(|| Error::not_found("record", doc_id))?;
        let mut doc = self
            .take_doc(doc_id)?
            .ok_or_else(|| Error::not_found(kind.as_str(), doc_id))?;
        let tx = self.conn.transaction()?;
        let dropped = compact_doc(&tx, doc_id, &mut doc)?;
        tx.commit()?;
        self.put_doc(doc_id, doc);
        Ok(dropped)
    }

    /// Stored change rows of a document (local unacknowledged ones included).
    #[cfg(feature = "internals")]
    pub fn stored_change_count(&self, doc_id: &str) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM changes WHERE doc_id = ?1",
            [doc_id],
            |r| r.get(0),
        )?)
    }

    /// Forgets the decoded documents kept in memory (they are reloaded from
    /// disk when next used). For tests of the load path and for low memory.
    #[cfg(feature = "internals")]
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// The coordinator's reports over this store, read-only
    /// ([`crate::reports`]).
    pub fn reports(&self) -> crate::reports::Reports<'_> {
        crate::reports::Reports::over(&self.conn, &self.device_id)
    }

    /// Starts (or stops) counting the documents local writes change, for
    /// [`Store::take_touched`]. A device does, for its observers.
    pub fn track_touched(&mut self, on: bool) {
        self.touched = on.then(Vec::new);
    }

    /// The ids of the documents (records) that local writes changed since
    /// the last call, each once, in the order first changed: what an app's
    /// observers hear of after a write, so no binding decides it (a merge
    /// changes the duplicate and the views of the contact kept and of the
    /// events the duplicate signed up to; a note on a contact changes its
    /// private ledger; an erasure removes the contact and its ledger).
    /// Empty unless [`Store::track_touched`] is on.
    pub fn take_touched(&mut self) -> Vec<String> {
        let Some(touched) = &mut self.touched else {
            return Vec::new();
        };
        let mut seen = std::collections::HashSet::new();
        std::mem::take(touched)
            .into_iter()
            .filter(|id| seen.insert(id.clone()))
            .collect()
    }

    /// Counts `ids` as changed by a local write (when counting).
    pub(super) fn touch(&mut self, ids: impl IntoIterator<Item = String>) {
        if let Some(touched) = &mut self.touched {
            touched.extend(ids);
        }
    }
}

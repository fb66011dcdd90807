//! Contacts and their private ledgers: registering, reading, editing,
//! searching and listing contacts; gifts, pledges, interactions and
//! sensitive notes.

use super::*;

impl Store {
    /// Registers a new contact and returns its id.
    pub fn create_contact(&mut self, new: &NewContact, now: Millis) -> Result<String> {
        self.create_record(DocKind::Contact, now, |id, by| {
            Contact::new(id, new, by, now)
        })
    }

    /// Registers many contacts in one transaction (imports, benchmarks):
    /// all are stored or, on any error, none. Returns their ids in order.
    pub fn create_contacts(&mut self, new: &[NewContact], now: Millis) -> Result<Vec<String>> {
        let ids: Vec<String> = new
            .iter()
            .map(|_| self.new_doc_id(DocKind::Contact, now))
            .collect();
        let tx = self.conn.transaction()?;
        for (ids, new) in ids
            .chunks(exchange::NEW_CONTACTS_AT_ONCE)
            .zip(new.chunks(exchange::NEW_CONTACTS_AT_ONCE))
        {
            let contacts = ids
                .iter()
                .zip(new)
                .map(|(id, n)| Contact::new(id.clone(), n, &self.device_id, now))
                .collect::<Result<Vec<_>>>()?;
            exchange::store_new_contacts(&tx, &self.actor, &contacts, now)?;
        }
        tx.commit()?;
        self.touch(ids.iter().cloned());
        Ok(ids)
    }

    /// The contact with this id.
    pub fn contact(&mut self, id: &str) -> Result<Contact> {
        self.read_record(DocKind::Contact, id)
    }

    /// Edits a contact: `edit` changes the record, which is then validated
    /// and written. Only the fields that changed become part of the change,
    /// so concurrent edits of other fields on other devices are kept.
    pub fn update_contact(
        &mut self,
        id: &str,
        now: Millis,
        edit: impl FnOnce(&mut Contact) -> Result<()>,
    ) -> Result<()> {
        model::check_id(DocKind::Contact, id)?;
        // A merged duplicate's edits land on the contact it was merged into.
        let id = &self.kept_contact_of(id)?;
        self.edit_record(id, DocKind::Contact, now, |c: &mut Contact| {
            let before_id = c.id.clone();
            edit(c)?;
            c.id = before_id;
            c.normalise()
        })
    }

    /// Edits a contact's fields by the one rule of [`ContactEdit`] (phones
    /// without a country code read as numbers of the store's phone region).
    pub fn edit_contact(&mut self, id: &str, edit: &ContactEdit, now: Millis) -> Result<()> {
        let region = self.phone_region()?;
        self.update_contact(id, now, |c| {
            edit.apply(c, &region);
            Ok(())
        })
    }

    /// Records a contact's consent, replacing what was recorded before,
    /// stamped with `now` and this device (who recorded it).
    pub fn record_consent(
        &mut self,
        contact_id: &str,
        consent: &NewConsent,
        now: Millis,
    ) -> Result<()> {
        let recorded = consent.recorded(now, &self.device_id);
        self.update_contact(contact_id, now, |c| {
            c.consent = recorded;
            Ok(())
        })
    }

    /// Edits a contact's notes as text: deletes `delete` characters at
    /// `pos` and inserts `insert` there. Concurrent edits of the notes on
    /// other devices are merged character by character.
    pub fn splice_contact_notes(
        &mut self,
        id: &str,
        pos: usize,
        delete: usize,
        insert: &str,
        now: Millis,
    ) -> Result<()> {
        model::check_id(DocKind::Contact, id)?;
        let id = &self.kept_contact_of(id)?;
        self.edit_doc(id, DocKind::Contact, now, |doc| {
            model::splice_text(doc, id, "notes", pos, delete, insert)
        })
    }

    /// Contacts whose name, phone or email contains every word of `text`
    /// (case and accents ignored), merged duplicates left out, by name.
    /// Control characters (a NUL from a URL's `%00`, say) match nothing a
    /// person can type into a record and are read as spaces.
    pub fn search_contacts(&self, text: &str, limit: usize) -> Result<Vec<ContactSummary>> {
        self.search_contacts_page(text, limit, 0)
    }

    /// [`Store::search_contacts`], `limit` results from `offset` (the next
    /// page of a long list of matches).
    pub fn search_contacts_page(
        &self,
        text: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ContactSummary>> {
        let cleaned: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = cleaned.as_str();
        let (limit, offset) = (limit as i64, offset as i64);
        let rows = if let Some(query) = index::fts_query(text) {
            let mut stmt = self.conn.prepare_cached(
                "SELECT c.id, c.name, c.phone, c.email, c.roles, c.merged_into
                 FROM contacts_fts JOIN contacts c ON c.num = contacts_fts.rowid
                 WHERE contacts_fts MATCH ?1 AND c.merged_into IS NULL
                 ORDER BY c.sort_name, c.id LIMIT ?2 OFFSET ?3",
            )?;
            stmt.query_map(params![query, limit, offset], summary_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?
        } else {
            // Too short for the trigram index: names starting with the text.
            let prefix = text.trim().to_lowercase();
            if prefix.is_empty() {
                return Ok(Vec::new());
            }
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, name, phone, email, roles, merged_into FROM contacts
                 WHERE sort_name >= ?1 AND sort_name < ?1 || char(1114111)
                   AND merged_into IS NULL
                 ORDER BY sort_name, id LIMIT ?2 OFFSET ?3",
            )?;
            stmt.query_map(params![prefix, limit, offset], summary_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        Ok(rows)
    }

    /// Contacts by name, `limit` from `offset`, merged duplicates included.
    pub fn list_contacts(&self, limit: usize, offset: usize) -> Result<Vec<ContactSummary>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, phone, email, roles, merged_into FROM contacts
             ORDER BY sort_name, id LIMIT ?1 OFFSET ?2",
        )?;
        let rows = stmt
            .query_map(params![limit as i64, offset as i64], summary_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many contacts this device holds.
    pub fn contact_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?)
    }

    // ----- a contact's private ledger ------------------------------------

    /// The private ledger of a contact (empty if nothing was recorded yet).
    ///
    /// The ledger of a kept contact also shows the entries of the
    /// duplicates merged into it (gifts, pledges, interactions after its
    /// own, in each duplicate's order; sensitive notes appended); they stay
    /// in the duplicates' own ledgers, so an unmerge takes them back.
    pub fn contact_private(&mut self, contact_id: &str) -> Result<ContactPrivate> {
        let mut ledger = self.own_ledger(contact_id)?;
        for duplicate in self.merged_duplicates_of(contact_id)? {
            let theirs = self.own_ledger(&duplicate)?;
            ledger.donations.extend(theirs.donations);
            ledger.pledges.extend(theirs.pledges);
            ledger.interactions.extend(theirs.interactions);
            let notes = theirs.sensitive_notes.as_str();
            if !notes.is_empty() {
                let mut text = ledger.sensitive_notes.as_str().to_owned();
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(notes);
                ledger.sensitive_notes = autosurgeon::Text::with_value(text);
            }
        }
        Ok(ledger)
    }

    fn own_ledger(&mut self, contact_id: &str) -> Result<ContactPrivate> {
        self.require(DocKind::Contact, contact_id)?;
        let id = model::private_id_of(contact_id);
        if !self.exists(&id)? {
            return Ok(ContactPrivate::empty(contact_id));
        }
        let doc = self.doc(&id, DocKind::ContactPrivate)?;
        model::hydrate(&id, doc)
    }

    /// Files a donation, pledge or interaction in the private ledger of
    /// the contact `contact_id` counts as (a merged duplicate's entries go
    /// to the kept contact). The store gives the entry its id and, unless
    /// the entry names someone, this device as who recorded it (who had
    /// it, for an interaction). Returns the entry's id.
    pub fn add_to_ledger(
        &mut self,
        contact_id: &str,
        mut entry: impl LedgerEntry,
        now: Millis,
    ) -> Result<String> {
        let contact_id = &self.kept_contact_of(contact_id)?;
        let entry_id = self.new_entry_id();
        let (id, recorder) = entry.id_and_recorder();
        id.clone_from(&entry_id);
        if recorder.trim().is_empty() {
            recorder.clone_from(&self.device_id);
        }
        entry.validate()?;
        self.edit_private(contact_id, now, |p| entry.file(p))?;
        Ok(entry_id)
    }

    /// Appends to a contact's sensitive notes.
    pub fn append_sensitive_note(
        &mut self,
        contact_id: &str,
        text: &str,
        now: Millis,
    ) -> Result<()> {
        let contact_id = &self.kept_contact_of(contact_id)?;
        crate::validate::long_text("sensitive_notes", text)?;
        self.require(DocKind::Contact, contact_id)?;
        let id = self.ensure_private(contact_id)?;
        self.edit_doc(&id, DocKind::ContactPrivate, now, |doc| {
            let end = model::text_len(doc, &id, "sensitive_notes")?;
            model::splice_text(doc, &id, "sensitive_notes", end, 0, text)
        })
    }

    /// Creates the private ledger of a contact if this device has none yet,
    /// and returns its id.
    fn ensure_private(&mut self, contact_id: &str) -> Result<String> {
        let id = model::private_id_of(contact_id);
        if !self.exists(&id)? {
            // Every device creates the same genesis change for this id, so
            // ledgers started offline on two devices share one root.
            let genesis = genesis_private(contact_id)?;
            self.commit_new(&id, DocKind::ContactPrivate, genesis, 0)?;
        }
        Ok(id)
    }

    fn edit_private(
        &mut self,
        contact_id: &str,
        now: Millis,
        edit: impl FnOnce(&mut ContactPrivate),
    ) -> Result<()> {
        self.require(DocKind::Contact, contact_id)?;
        let id = self.ensure_private(contact_id)?;
        self.edit_record(
            &id,
            DocKind::ContactPrivate,
            now,
            |p: &mut ContactPrivate| {
                edit(p);
                let size: usize = p
                    .interactions
                    .iter()
                    .map(|i| i.summary.len())
                    .sum::<usize>()
                    + p.sensitive_notes.as_str().len();
                if size > 10 * crate::validate::MAX_TEXT_BYTES {
                    return Err(Error::invalid(
                        "private record",
                        "is over 1 MB of text; archive old entries",
                    ));
                }
                Ok(())
            },
        )
    }
}

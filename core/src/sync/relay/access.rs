//! What a device may see and write: the one decision on every change it
//! sends (`vet`, for `push` and the fallback's `doc_sync` alike), and the
//! checks behind it.

use super::*;

impl RelaySession {
    /// Whether the device may see `doc`: private ledgers are for
    /// coordinators; a scoped token sees its scope.
    pub(super) fn visible(&self, doc: &str) -> bool {
        may_see(self.grant.as_ref(), self.scope.as_ref(), doc)
    }

    /// Why the device may not write `doc` at all, if it may not, given
    /// what the relay knows of it. For a scoped device, a document outside
    /// its view gets the same answer whether it exists, was erased, or was
    /// never seen: a volunteer learns nothing of ids it cannot see.
    pub(super) fn write_refusal(&self, doc: &str, known: DocState) -> Option<String> {
        let Some(grant) = &self.grant else {
            return Some("not authenticated".into());
        };
        if grant.is_coordinator() {
            return known.erased.then(|| "this record was erased".into());
        }
        if !grant.is_scoped() {
            return Some(format!("a {} token cannot change records", grant.role));
        }
        let kind = DocKind::of_id(doc);
        if kind == Some(DocKind::ContactPrivate) {
            return Some("private ledgers are for coordinators only".into());
        }
        if known.erased {
            return Some(OUTSIDE_SCOPE.into());
        }
        if self.visible(doc) {
            return None;
        }
        // A document new to the relay may be created: a walk-in, a
        // feedback case. Events are planned by coordinators.
        let creatable = matches!(kind, Some(DocKind::Contact | DocKind::Feedback));
        if creatable && !known.exists {
            return None;
        }
        Some(OUTSIDE_SCOPE.into())
    }

    /// Decides which of the changes a device sent for one document the
    /// relay takes, sending `rejected` for the others. The rules, the same
    /// for `push` and for the fallback's `doc_sync`:
    ///
    /// 1. the device may write the document ([`RelaySession::write_refusal`]);
    /// 2. each change is the device's own work: made under its own actor,
    ///    or the shared genesis of a private ledger — in the fallback a
    ///    coordinator's device may also hand back other authors' changes
    ///    (that is how a relay restored from a backup gets back what it
    ///    lost), a volunteer's or an observer's may not;
    /// 3. a scoped device's changes must apply to the relay's document as
    ///    it stands (a change waiting for a dependency could name anyone
    ///    once it applies, unchecked), keep its `id`, and name only records
    ///    the device can see or creates in this message
    ///    ([`integrity::references`]): it cannot sign up, merge into or link
    ///    a contact outside its view, and so cannot pull one into it. One
    ///    change breaking this refuses the document's whole group: a
    ///    conforming device never sends one, and checking change by change
    ///    would let one message cost the relay its size times the document's;
    /// 4. a document new to the relay must be a readable record of the kind
    ///    its id says ([`integrity::check_readable`]; from a coordinator's
    ///    device, its kind and id, [`integrity::check_header`]), so that no
    ///    device receives a record it cannot read.
    ///
    /// For a scoped device and a document outside its view, every refusal
    /// is the same ([`OUTSIDE_SCOPE`], code 21), whatever the reason: the
    /// device learns nothing of whether the document exists.
    pub(super) fn vet(
        &mut self,
        storage: &dyn RelayStorage,
        doc_id: &str,
        known: DocState,
        changes: Vec<Change>,
        via: Via<'_>,
    ) -> SResult<Vec<NewChange>> {
        let Via { creating, fallback } = via;
        let coordinator = self.grant.as_ref().is_some_and(Grant::is_coordinator);
        let scoped = self.grant.as_ref().is_some_and(Grant::is_scoped);
        let hidden = scoped && !self.visible(doc_id);
        let refuse = |this: &mut Self, list: &[Change], code: u16, why: &str| {
            for c in list {
                if hidden {
                    this.reject(doc_id, &c.hash().0, code::FORBIDDEN, OUTSIDE_SCOPE.into());
                } else {
                    this.reject(doc_id, &c.hash().0, code, why.to_owned());
                }
            }
        };
        if let Some(why) = self.write_refusal(doc_id, known) {
            refuse(self, &changes, code::FORBIDDEN, &why);
            return Ok(Vec::new());
        }
        let genesis_actor = (DocKind::of_id(doc_id) == Some(DocKind::ContactPrivate))
            .then(|| doc_id.get(2..).unwrap_or_default().to_owned());
        let (mut ok, mut foreign) = (Vec::with_capacity(changes.len()), Vec::new());
        for c in changes {
            let actor = c.actor_id().to_hex_string();
            let own = actor == self.device || genesis_actor.as_deref() == Some(actor.as_str());
            if own || (fallback && coordinator) {
                ok.push(c);
            } else {
                foreign.push(c);
            }
        }
        if !foreign.is_empty() {
            let why = if fallback {
                "a device may hand back only changes it made itself; only a coordinator's device may return other authors' changes"
            } else {
                "a device may push only changes it made itself"
            };
            if scoped {
                // Its own changes may build on the refused ones: all go.
                foreign.append(&mut ok);
            }
            refuse(self, &foreign, code::FORBIDDEN, why);
        }
        let links_matter = scoped
            && matches!(
                DocKind::of_id(doc_id),
                Some(DocKind::Contact | DocKind::Event | DocKind::Feedback)
            );
        if ok.is_empty() || (known.exists && !links_matter) {
            return Ok(new_changes(doc_id, ok));
        }
        // The relay's document as it stands now (tolerating changes in its
        // log that wait for dependencies).
        let mut doc = if known.exists {
            storage.load_doc(doc_id)?.unwrap_or_default()
        } else {
            AutoCommit::new()
        };
        let before = links_matter.then(|| integrity::references(doc_id, &doc));
        if doc.apply_changes(ok.iter().cloned()).is_err() {
            refuse(
                self,
                &ok,
                code::BAD_CHANGE,
                "the change does not apply to the document",
            );
            return Ok(Vec::new());
        }
        if let Some(before) = before {
            let waiting = ok
                .iter()
                .any(|c| doc.get_change_by_hash(&c.hash()).is_none());
            if waiting {
                refuse(
                    self,
                    &ok,
                    code::BAD_CHANGE,
                    "a change depends on changes the relay does not have; sync the document whole",
                );
                return Ok(Vec::new());
            }
            if known.exists && integrity::id_of(&doc).as_deref() != Some(doc_id) {
                refuse(self, &ok, code::BAD_CHANGE, "a record's id cannot change");
                return Ok(Vec::new());
            }
            let unseen = integrity::references(doc_id, &doc)
                .difference(&before)
                .find(|r| !self.visible(r) && !creating.contains(*r))
                .cloned();
            if let Some(other) = unseen {
                refuse(
                    self,
                    &ok,
                    code::FORBIDDEN,
                    &format!(
                        "this change names {other}, which this device cannot see: a volunteer may sign up, merge or link only contacts it can see"
                    ),
                );
                return Ok(Vec::new());
            }
        }
        // Whole records from devices the relay does not fully trust; the
        // kind and id from coordinators' (their apps write through the
        // typed store, an office import sends thousands at once, and every
        // device skips a record it cannot read in any case).
        let check = if scoped {
            integrity::check_readable
        } else {
            integrity::check_header
        };
        // A coordinator's change whose own record the relay lost (restored
        // from an older backup) waits for it, as any change waiting for a
        // dependency does: the rest comes back through the fallback. It
        // cannot be read before, and refusing it for good would lose it.
        // (A scoped device's waiting change was refused above.)
        let waiting = !scoped && !doc.get_missing_deps(&[]).is_empty();
        if !known.exists
            && !waiting
            && let Err(e) = check(doc_id, &doc)
        {
            refuse(
                self,
                &ok,
                code::BAD_CHANGE,
                &format!("a new record must be readable: {e}"),
            );
            return Ok(Vec::new());
        }
        Ok(new_changes(doc_id, ok))
    }

    /// A scoped device's new documents join its view as soon as the relay
    /// has them (so that its next changes may name them).
    pub(super) fn note_created(&mut self, accepted: &[NewChange]) {
        if let Some(scope) = &mut self.scope {
            for c in accepted {
                if scope.insert(c.doc.clone()) {
                    self.created.insert(c.doc.clone());
                }
            }
        }
    }

    pub(super) fn push(
        &mut self,
        storage: &dyn RelayStorage,
        changes: Vec<wire::PushChange>,
        now: Millis,
    ) -> SResult<Handled> {
        if changes.len() > wire::MAX_PUSH_CHANGES {
            self.close_with(
                code::TOO_LARGE,
                format!("a push holds at most {} changes", wire::MAX_PUSH_CHANGES),
            );
            return Ok(Handled::default());
        }
        let total: usize = changes.iter().map(|c| c.data.len()).sum();
        if total > wire::MAX_PUSH_BYTES {
            self.close_with(
                code::TOO_LARGE,
                format!("a push holds at most {} bytes", wire::MAX_PUSH_BYTES),
            );
            return Ok(Handled::default());
        }
        // Grouped by document, in the order documents first appear; each
        // document's changes keep the order they came in.
        let mut groups: Vec<(String, Vec<Change>)> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for c in changes {
            let change = match check_change(&c.doc, &c.data) {
                Ok(change) => change,
                Err((hash, why)) => {
                    self.reject(&c.doc, &hash, code::BAD_CHANGE, why);
                    continue;
                }
            };
            match group_of.get(&c.doc) {
                Some(&i) => groups[i].1.push(change),
                None => {
                    group_of.insert(c.doc.clone(), groups.len());
                    groups.push((c.doc, vec![change]));
                }
            }
        }
        // What the relay knows of every document the push touches: one read.
        let docs: Vec<&str> = groups.iter().map(|(d, _)| d.as_str()).collect();
        let known = storage.doc_states(&docs)?;
        // Creations first: the rest of the push may then name the walk-ins
        // the relay took (and only those).
        let mut created = HashSet::new();
        let mut accepted = Vec::new();
        let mut rest = Vec::new();
        for ((doc, list), k) in groups.into_iter().zip(known) {
            if k.exists {
                rest.push((doc, list, k));
                continue;
            }
            let via = Via {
                creating: &HashSet::new(),
                fallback: false,
            };
            let taken = self.vet(storage, &doc, k, list, via)?;
            if !taken.is_empty() {
                created.insert(doc);
            }
            accepted.extend(taken);
        }
        for (doc, list, k) in rest {
            let via = Via {
                creating: &created,
                fallback: false,
            };
            accepted.extend(self.vet(storage, &doc, k, list, via)?);
        }
        self.note_created(&accepted);
        if accepted.is_empty() {
            return Ok(Handled::default());
        }
        let appended = storage.append(&self.author(), &accepted, now)?;
        let (last, hash) = appended.last.unwrap_or((0, [0; 32]));
        let upto = Cursor {
            seq: last,
            hash: ByteBuf::from(hash.to_vec()),
            epoch: self.epoch.clone(),
            vis: self.vis,
        };
        self.transmit.push_back(wire::encode(&Message::Ack {
            hashes: accepted
                .iter()
                .map(|c| ByteBuf::from(c.hash.to_vec()))
                .collect(),
            upto,
        }));
        Ok(Handled {
            appended: appended.new,
            visibility_changed: false,
        })
    }
}

/// Whether a device with `grant` (and, if scoped, `scope`) may see `doc`:
/// private ledgers are for coordinators; a scoped token sees its scope.
pub(super) fn may_see(grant: Option<&Grant>, scope: Option<&HashSet<String>>, doc: &str) -> bool {
    let Some(grant) = grant else {
        return false;
    };
    if DocKind::of_id(doc) == Some(DocKind::ContactPrivate) && !grant.is_coordinator() {
        return false;
    }
    scope.is_none_or(|s| s.contains(doc))
}

/// Checks one pushed change: a well-formed document id, within the size
/// limit, decodable. Returns the change, or its hash (zeros if
/// undecodable) and the reason for refusing it.
pub(super) fn check_change(
    doc: &str,
    data: &[u8],
) -> std::result::Result<Change, ([u8; 32], String)> {
    // A compressed change chunk (type 2 after the magic bytes and the
    // checksum) would be inflated without a bound before any size check;
    // devices push changes uncompressed.
    if data.get(8) == Some(&2) {
        return Err((
            [0; 32],
            "compressed changes are not accepted; push changes uncompressed".into(),
        ));
    }
    // Decoded first, so that every refusal of a real change names its hash
    // and the device can stop waiting for it.
    let change = match Change::from_bytes(data.to_vec()) {
        Ok(change) => change,
        Err(e) => return Err(([0; 32], format!("not an Automerge change: {e}"))),
    };
    let hash = change.hash().0;
    if DocKind::of_id(doc).is_none() {
        return Err((hash, format!("{doc:?} is not a document id")));
    }
    if data.len() > wire::MAX_CHANGE_BYTES {
        return Err((
            hash,
            format!("a change may hold at most {} bytes", wire::MAX_CHANGE_BYTES),
        ));
    }
    Ok(change)
}

/// The refusal a scoped device gets for any document outside its view,
/// whatever the relay knows of it.
pub(super) const OUTSIDE_SCOPE: &str = "outside this device's scope (a volunteer changes what it can see and may create new contacts and feedback cases, each a readable record)";

/// How changes reached [`RelaySession::vet`].
#[derive(Clone, Copy)]
pub(super) struct Via<'a> {
    /// Documents the same message creates (walk-ins it may also sign up).
    pub(super) creating: &'a HashSet<String>,
    /// Through the fallback's `doc_sync` rather than `push`.
    pub(super) fallback: bool,
}

/// The changes of `doc` the relay takes, as storage appends them.
fn new_changes(doc: &str, changes: Vec<Change>) -> Vec<NewChange> {
    changes
        .into_iter()
        .map(|c| NewChange {
            doc: doc.to_owned(),
            hash: c.hash().0,
            data: c.raw_bytes().to_vec(),
        })
        .collect()
}

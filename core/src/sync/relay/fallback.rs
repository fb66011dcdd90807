//! The fallback: Automerge's per-document sync when the relay cannot
//! trust a device's cursor (a relay restored from a backup), with the
//! bounds on what it holds.

use super::access::Via;
use super::*;

impl RelaySession {
    pub(super) fn doc_sync(
        &mut self,
        storage: &dyn RelayStorage,
        doc_id: String,
        message: &[u8],
        now: Millis,
    ) -> SResult<Handled> {
        if DocKind::of_id(&doc_id).is_none() {
            self.close_with(code::MALFORMED, format!("{doc_id:?} is not a document id"));
            return Ok(Handled::default());
        }
        let parsed = if message.is_empty() {
            None
        } else {
            match automerge::sync::Message::decode(message) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.close_with(code::MALFORMED, format!("doc_sync for {doc_id}: {e}"));
                    return Ok(Handled::default());
                }
            }
        };
        if self.refused.contains(&doc_id) {
            // Changes of this document were refused: the exchange is over.
            self.reply_doc_sync(doc_id, Vec::new());
            return Ok(Handled::default());
        }
        let known = storage
            .doc_states(&[doc_id.as_str()])?
            .pop()
            .unwrap_or_default();
        // A document outside the device's view is answered as if the relay
        // had nothing of it, whether it exists or not.
        let visible = self.visible(&doc_id);
        let (mut doc, mut held_bytes) = match self.held.remove(&doc_id) {
            Some(held) => (held.doc, held.bytes),
            None if visible && known.exists => (storage.load_doc(&doc_id)?.unwrap_or_default(), 0),
            None => (AutoCommit::new(), 0),
        };
        if !self.fallback.contains_key(&doc_id)
            && self.fallback.len() + self.refused.len() >= wire::MAX_FALLBACK_DOCS
        {
            self.close_with(
                code::TOO_LARGE,
                format!(
                    "the fallback runs at most {} documents' exchanges at once",
                    wire::MAX_FALLBACK_DOCS
                ),
            );
            return Ok(Handled::default());
        }
        let (state, _) = self
            .fallback
            .entry(doc_id.clone())
            .or_insert_with(|| (DocSyncState::new(), 0));
        let mut appended = 0;
        if let Some(parsed) = parsed {
            let before = doc.get_heads();
            if let Err(e) = doc.sync().receive_sync_message(state, parsed) {
                self.close_with(code::MALFORMED, format!("doc_sync for {doc_id}: {e}"));
                return Ok(Handled::default());
            }
            let mut incoming = Vec::new();
            for c in doc.get_changes(&before) {
                let c = c.clone();
                if c.raw_bytes().len() > wire::MAX_CHANGE_BYTES {
                    self.reject(
                        &doc_id,
                        &c.hash().0,
                        code::BAD_CHANGE,
                        format!("a change may hold at most {} bytes", wire::MAX_CHANGE_BYTES),
                    );
                    self.refused.insert(doc_id.clone());
                    continue;
                }
                incoming.push(c);
            }
            let count = incoming.len();
            let accepted = if incoming.is_empty() {
                Vec::new()
            } else {
                let via = Via {
                    creating: &HashSet::new(),
                    fallback: true,
                };
                self.vet(storage, &doc_id, known, incoming, via)?
            };
            if accepted.len() < count {
                self.refused.insert(doc_id.clone());
            }
            if !accepted.is_empty() {
                appended = storage.append(&self.author(), &accepted, now)?.new;
                self.note_created(&accepted);
            }
            if self.refused.contains(&doc_id) {
                // The relay's copy now differs from what the exchange
                // assumed; end it here (the device stops on an empty reply).
                self.end_exchange(&doc_id);
                self.reply_doc_sync(doc_id, Vec::new());
                return Ok(Handled {
                    appended,
                    visibility_changed: false,
                });
            }
            held_bytes += message.len();
        }
        let Some((state, size)) = self.fallback.get_mut(&doc_id) else {
            return Ok(Handled::default());
        };
        let reply = doc.sync().generate_sync_message(state).map(|m| m.encode());
        self.fallback_bytes = self.fallback_bytes - *size + message.len();
        *size = message.len();
        if self.fallback_bytes > wire::MAX_FALLBACK_STATE_BYTES {
            self.close_with(
                code::TOO_LARGE,
                format!(
                    "the fallback holds at most {} MiB of sync state; send fewer documents at once",
                    wire::MAX_FALLBACK_STATE_BYTES >> 20
                ),
            );
            return Ok(Handled {
                appended,
                visibility_changed: false,
            });
        }
        if !doc.get_missing_deps(&[]).is_empty() {
            // Waiting for changes it depends on: held, within bounds.
            let total: usize = self.held.values().map(|h| h.bytes).sum::<usize>() + held_bytes;
            if self.held.len() >= wire::MAX_HELD_DOCS || total > wire::MAX_HELD_BYTES {
                self.close_with(
                    code::TOO_LARGE,
                    format!(
                        "the fallback holds at most {} documents and {} MiB of changes waiting for the changes they depend on; send those first",
                        wire::MAX_HELD_DOCS,
                        wire::MAX_HELD_BYTES >> 20
                    ),
                );
                return Ok(Handled {
                    appended,
                    visibility_changed: false,
                });
            }
            self.held.insert(
                doc_id.clone(),
                Held {
                    doc,
                    bytes: held_bytes,
                },
            );
        } else if reply.is_none() {
            // This document's exchange is complete.
            self.end_exchange(&doc_id);
        }
        self.reply_doc_sync(doc_id, reply.unwrap_or_default());
        Ok(Handled {
            appended,
            visibility_changed: false,
        })
    }

    /// Drops a document's fallback exchange state.
    pub(super) fn end_exchange(&mut self, doc: &str) {
        if let Some((_, size)) = self.fallback.remove(doc) {
            self.fallback_bytes -= size;
        }
    }

    pub(super) fn reply_doc_sync(&mut self, doc: String, message: Vec<u8>) {
        self.transmit.push_back(wire::encode(&Message::DocSync {
            doc,
            message: ByteBuf::from(message),
        }));
    }
}

/// A fallback document holding changes whose dependencies have not come.
#[derive(Debug)]
pub(super) struct Held {
    doc: AutoCommit,
    /// Bytes of the `doc_sync` messages that went into it.
    bytes: usize,
}

//! Who may see what: the rules that keep each volunteer token's scope.
//!
//! A volunteer token sees its events, every contact ever signed up to one
//! of them, the documents its devices created, and the contacts those were
//! merged into (the same people). Coordinators and observers see every
//! document and have no scope. The rules run inside a backend's
//! transaction ([`RelayTx`]) so that they read a consistent state; the
//! backend stores the rows they decide.
//!
//! Every document that enters a scope after the token's devices may have
//! synced is announced in the visibility log, so those devices are sent it
//! whole; what leaves (a `token update` dropping an event, an erasure) is
//! announced too, so they forget it.

use std::collections::BTreeSet;

use automerge::ReadDoc;

use super::storage::{Author, InsertedDoc, NewChange, RelayTx, SResult, StorageError};
use crate::model::DocKind;

/// Refuses ids that are not events'.
pub fn check_event_ids(events: &[String]) -> SResult<()> {
    for e in events {
        if DocKind::of_id(e) != Some(DocKind::Event) {
            return Err(StorageError::Refused(format!(
                "{e:?} is not an event id (e_ followed by 32 hex digits)"
            )));
        }
    }
    Ok(())
}

/// What follows from changes just inserted, in the same transaction:
///
/// - a document a scoped token's device created joins that token's scope;
/// - an event's sign-ups are recorded, and each contact newly signed up
///   joins (with what it was merged into) the scope of every token holding
///   the event;
/// - a contact's `merged_into` is recorded when a change may have set or
///   cleared it, and the kept contact joins every scope that sees the
///   duplicate: a desk's roster shows the duplicate's sign-up as the kept
///   contact's, and a phone must never hold an id it cannot see. (An
///   unmerge leaves the kept contact where it is: a scope narrows only
///   through `token update`, which recomputes it.)
pub fn after_append(
    tx: &mut dyn RelayTx,
    author: &Author,
    changes: &[NewChange],
    inserted: &[InsertedDoc],
) -> SResult<()> {
    for d in inserted {
        if d.created && author.scoped {
            admit(tx, &author.token_id, &d.doc)?;
        }
        match DocKind::of_id(&d.doc) {
            Some(DocKind::Event) => follow_signups(tx, &d.doc)?,
            Some(DocKind::Contact) => {
                let mut may_merge = false;
                for &i in &d.new_changes {
                    if may_change_merge(tx, &d.doc, d.created, &changes[i].data)? {
                        may_merge = true;
                        break;
                    }
                }
                if may_merge {
                    follow_merge(tx, &d.doc)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Sets a token's events and brings its scope in line: its events, the
/// contacts signed up to them (not erased), the documents its devices
/// created, and what those contacts were merged into. With `announce`,
/// what entered or left goes into the visibility log, so devices that
/// synced before follow (a new token has no devices yet).
pub fn rescope(
    tx: &mut dyn RelayTx,
    token: &str,
    events: &[String],
    announce: bool,
) -> SResult<()> {
    check_event_ids(events)?;
    tx.set_token_events(token, events)?;
    let mut want: BTreeSet<String> = events.iter().cloned().collect();
    for e in events {
        for c in tx.signups_of(e)? {
            if !tx.is_erased(&c)? {
                want.insert(c);
            }
        }
    }
    want.extend(tx.created_by(token)?);
    let mut kept = Vec::new();
    for d in &want {
        if DocKind::of_id(d) == Some(DocKind::Contact) {
            kept.extend(kept_chain(tx, d)?);
        }
    }
    want.extend(kept);
    let have = tx.scope_of(token)?;
    for d in want.difference(&have) {
        tx.add_to_scope(token, d)?;
        if announce {
            tx.announce(Some(token), d, false)?;
        }
    }
    for d in have.difference(&want) {
        tx.remove_from_scope(Some(token), d)?;
        if announce {
            tx.announce(Some(token), d, true)?;
        }
    }
    Ok(())
}

/// Brings `doc` into `token`'s scope and, if it was not there, announces
/// it so the token's devices are sent it.
fn admit(tx: &mut dyn RelayTx, token: &str, doc: &str) -> SResult<()> {
    if tx.add_to_scope(token, doc)? {
        tx.announce(Some(token), doc, false)?;
    }
    Ok(())
}

/// After an event changed: records contacts newly signed up to it, and
/// brings them into the scope of every token holding the event.
fn follow_signups(tx: &mut dyn RelayTx, event: &str) -> SResult<()> {
    let Some(doc) = tx.load_doc(event)? else {
        return Ok(());
    };
    let Ok(contacts) = crate::model::event::ops::signed_up(&doc, event) else {
        // Not readable as an event: nothing to follow.
        return Ok(());
    };
    let mut holders: Option<Vec<String>> = None;
    for c in contacts {
        if !tx.record_signup(event, &c)? {
            continue; // known already
        }
        if DocKind::of_id(&c) != Some(DocKind::Contact) || tx.is_erased(&c)? {
            // An erased contact is in no scope, whatever still names it.
            continue;
        }
        let holders = match &holders {
            Some(h) => h,
            None => holders.insert(tx.event_holders(event)?),
        };
        if holders.is_empty() {
            continue;
        }
        let chain = kept_chain(tx, &c)?;
        for t in holders {
            for d in std::iter::once(&c).chain(&chain) {
                admit(tx, t, d)?;
            }
        }
    }
    Ok(())
}

/// Whether a contact's change may set or clear its `merged_into`, from its
/// bytes alone (no decoding, which would cost every new contact of an
/// import): it holds the key, and names another contact (a merge) or the
/// contact is a known duplicate (an unmerge, or a merge into another; a
/// contact this very append created is not one). Keys and strings stand
/// uncompressed in a change (pushes are).
fn may_change_merge(
    tx: &mut dyn RelayTx,
    contact: &str,
    created: bool,
    data: &[u8],
) -> SResult<bool> {
    if memchr::memmem::find(data, b"merged_into").is_none() {
        return Ok(false);
    }
    let names_another = memchr::memmem::find_iter(data, b"c_").any(|at| {
        data.get(at..at + 34).is_some_and(|id| {
            id != contact.as_bytes()
                && id[2..]
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        })
    });
    if names_another {
        return Ok(true);
    }
    if created {
        return Ok(false);
    }
    Ok(tx.merge_of(contact)?.is_some())
}

/// The contacts `contact` was merged into, nearest first (a duplicate of a
/// duplicate leads on), by the one rule of [`crate::merges`], ending
/// before an erased one.
fn kept_chain(tx: &mut dyn RelayTx, contact: &str) -> SResult<Vec<String>> {
    let chain = crate::merges::follow(contact, |at| -> SResult<Option<String>> {
        match tx.merge_of(at)? {
            Some(kept) if !tx.is_erased(&kept)? => Ok(Some(kept)),
            _ => Ok(None),
        }
    })?;
    Ok(chain.links)
}

/// After a change set or cleared a contact's `merged_into`: records it,
/// and brings the kept contact (and what it was merged into in turn) into
/// every scope that sees the duplicate.
fn follow_merge(tx: &mut dyn RelayTx, contact: &str) -> SResult<()> {
    let Some(doc) = tx.load_doc(contact)? else {
        return Ok(());
    };
    let kept = match doc.get(automerge::ROOT, "merged_into") {
        Ok(Some((automerge::Value::Scalar(v), _))) => v
            .as_str()
            .filter(|k| DocKind::of_id(k) == Some(DocKind::Contact) && *k != contact)
            .map(str::to_owned),
        _ => None,
    };
    let Some(kept) = kept else {
        tx.set_merge(contact, None)?;
        return Ok(());
    };
    tx.set_merge(contact, Some(&kept))?;
    let holders = tx.doc_holders(contact)?;
    if holders.is_empty() {
        return Ok(());
    }
    let chain = kept_chain(tx, contact)?;
    for t in &holders {
        for k in &chain {
            admit(tx, t, k)?;
        }
    }
    Ok(())
}

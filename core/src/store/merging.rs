//! Duplicates: finding them, merging them, undoing a merge.
//!
//! A merge is one CRDT operation on the duplicate — its `merged_into` is
//! set to the kept contact — and nothing is deleted or copied:
//!
//! - the duplicate leaves search and lists; reading it still works and says
//!   where it went;
//! - its sign-ups count for the kept contact in rosters
//!   ([`Store::roster`]), its private ledger (gifts, pledges, interactions)
//!   shows in the kept contact's ([`Store::contact_private`]);
//! - edits made to it after the merge land on the kept contact (the write
//!   calls redirect), and edits made to it on a device that had not yet
//!   heard of the merge are carried over to the kept contact by that
//!   device when the merge reaches it ([`Store::forward_late_edits`]);
//! - an unmerge clears `merged_into`, which restores both as they were.
//!
//! "Not a duplicate" decisions are recorded on both contacts and remembered
//! by [`Store::duplicate_candidates`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use automerge::{AutoCommit, ChangeHash, ReadDoc};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use super::Store;
use crate::duplicates::{self, DEFAULT_PHONE_REGION};
use crate::error::{Error, Result};
use crate::model::{self, Contact, DocKind, Millis, NewContact};

/// The store setting naming the region of phone numbers typed without a
/// country code (an ISO 3166 code such as `GB`); see
/// [`duplicates::normalise_phone`].
pub const PHONE_REGION_SETTING: &str = "phone_region";

/// Two contacts that may be the same person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct DuplicatePair {
    /// One contact (the one created first, kept by default).
    pub a: String,
    /// Its name.
    pub a_name: String,
    /// The other contact.
    pub b: String,
    /// Its name.
    pub b_name: String,
    /// From 0 to 1: how likely the two are one person.
    pub score: f64,
    /// Why, in words: `same phone +447700900123`, `same email …`,
    /// `similar names (0.95)`.
    pub reasons: Vec<String>,
}

/// Below this, a pair is not proposed.
pub const MIN_SCORE: f64 = 0.8;
/// Names at least this similar (Jaro–Winkler on folded names) make a pair
/// on their own.
pub const NAME_ONLY_SIMILARITY: f64 = 0.93;
/// Name blocks larger than this (a very common name) are compared only on
/// phones and emails, to keep the search near linear.
const MAX_BLOCK: usize = 300;

/// What duplicate detection needs of one contact.
struct Keys {
    id: String,
    name: String,
    folded: Name,
    /// Phones in E.164.
    phones: Vec<String>,
    /// Emails lower-cased.
    emails: Vec<String>,
    created_at: Millis,
}

impl Keys {
    fn new<'a>(
        id: String,
        name: String,
        phones: impl Iterator<Item = &'a str>,
        emails: impl Iterator<Item = &'a str>,
        created_at: Millis,
        region: &str,
    ) -> Keys {
        Keys {
            id,
            folded: Name::new(duplicates::fold_name(&name)),
            name,
            phones: phones
                .filter(|p| !p.is_empty())
                .filter_map(|p| duplicates::normalise_phone(p, region))
                .collect(),
            emails: emails
                .filter(|e| !e.is_empty())
                .map(duplicates::normalise_email)
                .collect(),
            created_at,
        }
    }
}

/// A folded name cut up once for comparisons.
struct Name {
    whole: String,
    first: String,
    last: String,
    /// Two words or more.
    multi: bool,
    /// The words in reverse order ("silva ana" for "ana silva").
    reversed: String,
}

impl Name {
    fn new(whole: String) -> Name {
        let words: Vec<&str> = whole.split(' ').filter(|w| !w.is_empty()).collect();
        let first = words.first().copied().unwrap_or_default().to_owned();
        let last = words.last().copied().unwrap_or_default().to_owned();
        let reversed = words.iter().rev().copied().collect::<Vec<_>>().join(" ");
        Name {
            multi: words.len() >= 2,
            first,
            last,
            reversed,
            whole,
        }
    }

    /// [`name_similarity`], or 0 early when it is certainly below `floor`
    /// (most compared pairs are far apart).
    fn similarity(&self, other: &Name, floor: f64) -> f64 {
        let jw = strsim::jaro_winkler;
        if !self.multi || !other.multi {
            return jw(&self.whole, &other.whole);
        }
        let at_least = |x: f64| x >= floor;
        let mut direct = jw(&self.first, &other.first);
        if at_least(direct) {
            direct = direct.min(jw(&self.last, &other.last));
        }
        if at_least(direct) {
            direct = direct.min(jw(&self.whole, &other.whole));
        }
        let mut swapped = jw(&self.first, &other.last);
        if at_least(swapped) {
            swapped = swapped.min(jw(&self.last, &other.first));
        }
        if at_least(swapped) {
            swapped = swapped.min(jw(&self.whole, &other.reversed));
        }
        let best = direct.max(swapped);
        if at_least(best) { best } else { 0.0 }
    }
}

/// Similarity of two folded names, from 0 to 1 (Jaro–Winkler). Names of
/// two words or more must be alike both as a whole and word by word (the
/// lower of the first words' and the last words' similarity), so that a
/// shared family name ("Kim Okafor", "Dele Okafor") or a shared first name
/// and family name with different middle words do not make two people
/// one, while a typo ("Jonathan"/"Jonathon"), accents, case or a swapped
/// order ("Silva Ana") still match.
pub fn name_similarity(a: &str, b: &str) -> f64 {
    Name::new(a.to_owned()).similarity(&Name::new(b.to_owned()), 0.0)
}

/// Blocking keys of a folded name: pairs are compared only within a
/// block. Four keys (the starts of the first and last words, their ends,
/// the whole first word with the last word's initial, and the whole last
/// word with the first word's initial), so that one typo anywhere still
/// leaves a key in common.
fn name_blocks(folded: &str) -> Vec<String> {
    let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
    let head = |w: &str| w.chars().take(3).collect::<String>();
    let tail = |w: &str| {
        let chars: Vec<char> = w.chars().collect();
        chars[chars.len().saturating_sub(3)..]
            .iter()
            .collect::<String>()
    };
    match words.as_slice() {
        [] => Vec::new(),
        [one] => vec![format!("1:{}", head(one)), format!("1e:{}", tail(one))],
        [first, .., last] => {
            let initial = |w: &str| w.chars().next().unwrap_or(' ');
            vec![
                format!("h:{}:{}", head(first), head(last)),
                format!("t:{}:{}", tail(first), tail(last)),
                format!("f:{first}:{}", initial(last)),
                format!("l:{last}:{}", initial(first)),
            ]
        }
    }
}

/// Scores a pair from what they share; the reasons are written only for
/// pairs that reach [`MIN_SCORE`] (most compared pairs do not).
fn score(a: &Keys, b: &Keys) -> (f64, Vec<String>) {
    let phone = a.phones.iter().find(|p| b.phones.contains(p));
    let email = a.emails.iter().find(|e| b.emails.contains(e));
    // Both have phones (or emails) and none in common: evidence of two
    // people who share a name.
    let phones_differ = !a.phones.is_empty() && !b.phones.is_empty() && phone.is_none();
    let emails_differ = !a.emails.is_empty() && !b.emails.is_empty() && email.is_none();
    let floor = if phone.is_some() || email.is_some() {
        0.0
    } else {
        NAME_ONLY_SIMILARITY
    };
    let similarity = a.folded.similarity(&b.folded, floor);
    let score = match (phone.is_some(), email.is_some()) {
        (true, true) => 0.7 + 0.3 * similarity,
        (true, false) | (false, true) => 0.5 + 0.5 * similarity,
        (false, false) if similarity >= NAME_ONLY_SIMILARITY => {
            similarity * 0.9 - 0.15 * (u8::from(phones_differ) + u8::from(emails_differ)) as f64
        }
        (false, false) => 0.0,
    };
    if score < MIN_SCORE {
        return (score, Vec::new());
    }
    let mut reasons = Vec::new();
    if let Some(p) = phone {
        reasons.push(format!("same phone {p}"));
    }
    if let Some(e) = email {
        reasons.push(format!("same email {e}"));
    }
    reasons.push(format!("names {similarity:.2} alike"));
    (score, reasons)
}

impl Store {
    /// The region used to read phone numbers typed without a country code.
    pub fn phone_region(&self) -> Result<String> {
        Ok(self
            .setting(PHONE_REGION_SETTING)?
            .unwrap_or_else(|| DEFAULT_PHONE_REGION.to_owned()))
    }

    fn duplicate_keys(&self, region: &str) -> Result<Vec<Keys>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, phones, emails, created_at FROM contacts
             WHERE merged_into IS NULL ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], |r| {
            let phones: String = r.get(2)?;
            let emails: String = r.get(3)?;
            Ok(Keys::new(
                r.get(0)?,
                r.get(1)?,
                phones.split('\n'),
                emails.split('\n'),
                r.get(4)?,
                region,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every "not a duplicate" decision as (contact, key of the other
    /// contact); see [`model::contact::not_duplicate_key`] and
    /// [`marked_not_duplicate`].
    fn not_duplicate_pairs(&self) -> Result<HashSet<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT contact_id, other_id FROM not_duplicates")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut pairs = HashSet::new();
        for row in rows {
            let (a, other) = row?;
            pairs.insert((a, model::contact::not_duplicate_key_of_entry(&other)));
        }
        Ok(pairs)
    }

    /// Every pair of contacts (merged duplicates left out) that may be one
    /// person, best first: same phone (in E.164 form, read in the store's
    /// [`Store::phone_region`]), same email (case ignored), or names alike
    /// (accents, case and word order ignored, typos tolerated). Pairs
    /// marked "not a duplicate" are left out.
    pub fn duplicate_candidates(&self) -> Result<Vec<DuplicatePair>> {
        let region = self.phone_region()?;
        let keys = self.duplicate_keys(&region)?;
        self.pairs_in_blocks(&keys, |_| true)
    }

    /// The pairs of [`Store::duplicate_candidates`] that involve one of
    /// `contacts` (the new contacts a sync brought): the same blocks and
    /// scores, in one pass over the store whatever their number.
    pub(crate) fn duplicates_involving(
        &self,
        contacts: &HashSet<&str>,
    ) -> Result<Vec<DuplicatePair>> {
        if contacts.is_empty() {
            return Ok(Vec::new());
        }
        let region = self.phone_region()?;
        let keys = self.duplicate_keys(&region)?;
        let involved: Vec<bool> = keys
            .iter()
            .map(|k| contacts.contains(k.id.as_str()))
            .collect();
        self.pairs_in_blocks(&keys, |i| involved[i])
    }

    /// The pairs sharing a block (a phone, an email or a name key) with at
    /// least one side `involved`, scored, best first, without those marked
    /// "not a duplicate".
    fn pairs_in_blocks(
        &self,
        keys: &[Keys],
        involved: impl Fn(usize) -> bool,
    ) -> Result<Vec<DuplicatePair>> {
        let refused = self.not_duplicate_pairs()?;
        // Blocks: who shares a phone, an email or a name key. A key is
        // kept as a hash (a collision only adds a comparison), its lowest
        // bit set for a phone or an email: such blocks are never too large
        // to compare. Each contact's own blocks are kept too, so that a
        // pair sharing several blocks is compared once, in the first of
        // them, without a list of every pair (millions at 100,000
        // contacts).
        let hash = |exact: bool, key: &str| {
            let mut h = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(key, &mut h);
            (std::hash::Hasher::finish(&h) & !1) | u64::from(exact)
        };
        let mut own: Vec<Vec<u64>> = Vec::with_capacity(keys.len());
        let mut blocks: HashMap<u64, Vec<u32>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            let mut mine: Vec<u64> = k
                .phones
                .iter()
                .map(|p| hash(true, &format!("p:{p}")))
                .chain(k.emails.iter().map(|e| hash(true, &format!("e:{e}"))))
                .chain(name_blocks(&k.folded.whole).iter().map(|b| hash(false, b)))
                .collect();
            mine.sort_unstable();
            mine.dedup();
            for b in &mine {
                // Indices fit in u32: a store holds far fewer than four
                // billion contacts.
                blocks.entry(*b).or_default().push(i as u32);
            }
            own.push(mine);
        }
        let compared = |b: &u64| {
            blocks
                .get(b)
                .is_some_and(|m| m.len() >= 2 && (b & 1 == 1 || m.len() <= MAX_BLOCK))
        };
        let mut pairs = Vec::new();
        for (block, members) in &blocks {
            if !compared(block) || !members.iter().any(|&i| involved(i as usize)) {
                continue;
            }
            for (x, &i) in members.iter().enumerate() {
                for &j in &members[x + 1..] {
                    if !(involved(i as usize) || involved(j as usize)) {
                        continue;
                    }
                    // Compared in the first block the two share.
                    let first = own[i as usize]
                        .iter()
                        .filter(|b| own[j as usize].binary_search(b).is_ok() && compared(b))
                        .min();
                    if first != Some(block) {
                        continue;
                    }
                    if let Some(pair) = Self::scored(&keys[i as usize], &keys[j as usize], &refused)
                    {
                        pairs.push(pair);
                    }
                }
            }
        }
        pairs.sort_by(|x, y| {
            y.score
                .total_cmp(&x.score)
                .then_with(|| x.a.cmp(&y.a))
                .then_with(|| x.b.cmp(&y.b))
        });
        Ok(pairs)
    }

    /// A pair of contacts as proposed, if it scores [`MIN_SCORE`] or more
    /// and was not marked "not a duplicate".
    fn scored(a: &Keys, b: &Keys, refused: &HashSet<(String, String)>) -> Option<DuplicatePair> {
        let (score, reasons) = score(a, b);
        if score < MIN_SCORE {
            return None;
        }
        let pair = if a.id < b.id {
            (a.id.clone(), b.id.clone())
        } else {
            (b.id.clone(), a.id.clone())
        };
        if marked_not_duplicate(refused, &pair.0, &pair.1) {
            return None;
        }
        // The older contact is proposed as the one to keep.
        let (a, b) = if (a.created_at, &a.id) <= (b.created_at, &b.id) {
            (a, b)
        } else {
            (b, a)
        };
        Some(DuplicatePair {
            a: a.id.clone(),
            a_name: a.name.clone(),
            b: b.id.clone(),
            b_name: b.name.clone(),
            score: (score * 1000.0).round() / 1000.0,
            reasons,
        })
    }

    /// Contacts that may be the same person as the contact `id` (one
    /// already saved, not a form being typed), best first, at most 5: the
    /// contact itself, those merged with it and pairs marked "not a
    /// duplicate" left out. Each pair names the other contact as `a`.
    pub fn possible_duplicates_of_contact(&self, id: &str) -> Result<Vec<DuplicatePair>> {
        self.require(DocKind::Contact, id)?;
        let kept = self.kept_contact_of(id)?;
        let (name, phones, emails): (String, String, String) = self
            .conn
            .prepare_cached("SELECT name, phones, emails FROM contacts WHERE id = ?1")?
            .query_row([&kept], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let lines = |s: &str| {
            s.split('\n')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let new = NewContact {
            name,
            phones: lines(&phones),
            emails: lines(&emails),
            ..Default::default()
        };
        let refused = self.not_duplicate_pairs()?;
        let mut found = Vec::new();
        for mut pair in self.possible_duplicates_of(&new)? {
            if pair.a == kept || marked_not_duplicate(&refused, &kept, &pair.a) {
                continue;
            }
            pair.b = kept.clone();
            found.push(pair);
        }
        Ok(found)
    }

    /// Contacts already on this device that may be the person being typed
    /// in (a phone can warn "maybe the same person as …" before saving):
    /// same phone, same email, or a name alike, best first, at most 5.
    pub fn possible_duplicates_of(&self, new: &NewContact) -> Result<Vec<DuplicatePair>> {
        let region = self.phone_region()?;
        let me = Keys::new(
            String::new(),
            new.name.clone(),
            new.phones.iter().map(String::as_str),
            new.emails.iter().map(String::as_str),
            0,
            &region,
        );
        // Candidates from the search index: by each word of the name, each
        // phone's last digits and each email.
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut queries: Vec<String> = me
            .folded
            .whole
            .split(' ')
            .filter(|w| w.chars().count() >= 3)
            .map(str::to_owned)
            .collect();
        for p in &new.phones {
            let digits: String = p.chars().filter(char::is_ascii_digit).collect();
            if digits.len() >= 6 {
                queries.push(digits[digits.len() - 6..].to_owned());
            }
        }
        queries.extend(me.emails.iter().cloned());
        for q in queries {
            for s in self.search_contacts(&q, 50)? {
                ids.insert(s.id);
            }
        }
        let mut found = Vec::new();
        for id in ids {
            let row: Option<(String, String, String)> = self
                .conn
                .prepare_cached(
                    "SELECT name, phones, emails FROM contacts WHERE id = ?1 AND merged_into IS NULL",
                )?
                .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let Some((name, phones, emails)) = row else {
                continue;
            };
            let other = Keys::new(id, name, phones.split('\n'), emails.split('\n'), 0, &region);
            let (score, reasons) = score(&me, &other);
            if score >= MIN_SCORE {
                found.push(DuplicatePair {
                    a: other.id,
                    a_name: other.name,
                    b: String::new(),
                    b_name: me.name.clone(),
                    score: (score * 1000.0).round() / 1000.0,
                    reasons,
                });
            }
        }
        found.sort_by(|x, y| y.score.total_cmp(&x.score).then_with(|| x.a.cmp(&y.a)));
        found.truncate(5);
        Ok(found)
    }

    /// The contact a contact counts as ([`crate::merges`]: chains
    /// followed, a cycle of concurrent merges kept at its smallest id);
    /// the contact itself when it was not merged.
    pub fn kept_contact_of(&self, contact_id: &str) -> Result<String> {
        let kept: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT merged_into FROM contacts WHERE id = ?1")?
            .query_row([contact_id], |r| r.get(0))
            .optional()?;
        Ok(kept.flatten().unwrap_or_else(|| contact_id.to_owned()))
    }

    /// Which contact's sign-up at an event a call about `contact_id` acts
    /// on: the kept contact's if it has one there, else that of a duplicate
    /// merged into it (its roster line shows as the kept contact), else the
    /// kept contact (a new sign-up).
    pub(crate) fn signup_target(&self, event_id: &str, contact_id: &str) -> Result<String> {
        let (kept, lines) = self.person_signups(event_id, contact_id)?;
        Ok(lines.into_iter().next().unwrap_or(kept))
    }

    /// The person `contact_id` is (the contact it counts as) and the
    /// contacts whose sign-ups at `event_id` are that person's: the kept
    /// contact's first, then its merged duplicates' (by id). One person may
    /// hold several after a merge; the roster counts them as one
    /// ([`crate::views::roster`]).
    pub(crate) fn person_signups(
        &self,
        event_id: &str,
        contact_id: &str,
    ) -> Result<(String, Vec<String>)> {
        let kept = self.kept_contact_of(contact_id)?;
        let mut candidates = vec![kept.clone()];
        candidates.extend(self.merged_duplicates_of(&kept)?);
        let mut lines = Vec::new();
        for c in candidates {
            let has: bool = self
                .conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM signups WHERE event_id = ?1 AND contact_id = ?2)",
                )?
                .query_row([event_id, &c], |r| r.get(0))?;
            if has {
                lines.push(c);
            }
        }
        Ok((kept, lines))
    }

    /// The contacts that count as this one (merged into it, or into a
    /// contact merged into it).
    pub fn merged_duplicates_of(&self, contact_id: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id FROM contacts WHERE merged_into = ?1 ORDER BY id")?;
        let ids = stmt
            .query_map([contact_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Merges `duplicate` into `keep`: one operation on the duplicate,
    /// undone by [`Store::unmerge_contact`]. Nothing is deleted or copied;
    /// see the module documentation.
    pub fn merge_contacts(&mut self, keep: &str, duplicate: &str, now: Millis) -> Result<()> {
        self.require(DocKind::Contact, keep)?;
        self.require(DocKind::Contact, duplicate)?;
        if keep == duplicate {
            return Err(Error::NotAllowed(
                "a contact cannot be merged into itself".into(),
            ));
        }
        if let Some(into) = self.contact(keep)?.merged_into {
            return Err(Error::NotAllowed(format!(
                "{keep} was itself merged into {into}; merge into {into} instead"
            )));
        }
        let d = self.contact(duplicate)?;
        if let Some(into) = d.merged_into {
            return Err(Error::NotAllowed(format!(
                "{duplicate} is already merged into {into}; unmerge it first"
            )));
        }
        let kept = keep.to_owned();
        self.edit_record(duplicate, DocKind::Contact, now, |c: &mut Contact| {
            c.merged_into = Some(kept);
            Ok(())
        })?;
        self.touch_merge_views(duplicate, keep)
    }

    /// Counts as changed, beside the duplicate's own document, what a
    /// merge or unmerge changes the view of: the kept contact (its merged
    /// duplicates, sign-ups and ledger) and the events the duplicate signed
    /// up to (their rosters fold its line in or out).
    fn touch_merge_views(&mut self, duplicate: &str, kept: &str) -> Result<()> {
        if self.touched.is_none() {
            return Ok(());
        }
        let events: Vec<String> = self
            .conn
            .prepare_cached("SELECT DISTINCT event_id FROM signups WHERE contact_id = ?1")?
            .query_map([duplicate], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        self.touch(std::iter::once(kept.to_owned()).chain(events));
        Ok(())
    }

    /// Undoes a merge: the duplicate is a contact of its own again, with its
    /// sign-ups and ledger, exactly as before the merge. Edits carried over
    /// to the kept contact meanwhile stay there.
    pub fn unmerge_contact(&mut self, duplicate: &str, now: Millis) -> Result<()> {
        self.require(DocKind::Contact, duplicate)?;
        let kept = self.kept_contact_of(duplicate)?;
        if self.contact(duplicate)?.merged_into.is_none() {
            return Err(Error::NotAllowed(format!(
                "{duplicate} is not merged into another contact"
            )));
        }
        self.edit_record(duplicate, DocKind::Contact, now, |c: &mut Contact| {
            c.merged_into = None;
            Ok(())
        })?;
        self.touch_merge_views(duplicate, &kept)
    }

    /// Records that two contacts are not the same person: they are never
    /// proposed as a pair again (on any device, once synced).
    pub fn mark_not_duplicate(&mut self, a: &str, b: &str, now: Millis) -> Result<()> {
        self.require(DocKind::Contact, a)?;
        self.require(DocKind::Contact, b)?;
        if a == b {
            return Err(Error::NotAllowed(
                "a contact is always the same person as itself".into(),
            ));
        }
        for (this, other) in [(a, b), (b, a)] {
            let other = model::contact::not_duplicate_key(other);
            self.edit_record(this, DocKind::Contact, now, |c: &mut Contact| {
                c.not_duplicates.insert(other, true);
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Carries edits this device made to a merged duplicate, without
    /// knowing of the merge, over to the kept contact. Called after changes
    /// from elsewhere are applied; does nothing unless the contact is
    /// merged and this device made changes to it concurrently with the
    /// merge. Idempotent: what the kept contact already shows is not
    /// written again. Returns whether the kept contact changed.
    pub fn forward_late_edits(&mut self, duplicate: &str, now: Millis) -> Result<bool> {
        let Some(edit) = self.late_edit_of(duplicate)? else {
            return Ok(false);
        };
        let keep = self.kept_contact_of(duplicate)?;
        if keep == duplicate || !self.exists(&keep)? {
            return Ok(false);
        }
        let before = self.contact(&keep)?;
        let mut after = before.clone();
        edit.apply(&mut after);
        if after == before {
            return Ok(false);
        }
        self.edit_record(&keep, DocKind::Contact, now, |c: &mut Contact| {
            edit.apply(c);
            c.normalise()
        })?;
        Ok(true)
    }

    /// After changes from elsewhere were applied: carries this device's
    /// late edits of any merged contact among `docs` over to the kept one
    /// ([`Store::forward_late_edits`]), stamped with the latest time found
    /// in the duplicate's history (the core has no clock). An edit the kept
    /// contact cannot take (it would break a rule) is left on the
    /// duplicate, where unmerging finds it.
    pub(crate) fn forward_after_apply(&mut self, docs: &[String]) -> Result<()> {
        for id in docs {
            if DocKind::of_id(id) != Some(DocKind::Contact) {
                continue;
            }
            let merged: Option<Option<String>> = self
                .conn
                .prepare_cached("SELECT merged_into FROM contacts WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if merged.flatten().is_none() {
                continue;
            }
            let latest = self
                .doc_mut(id, DocKind::Contact)?
                .get_changes(&[])
                .iter()
                .map(|c| c.timestamp())
                .max()
                .unwrap_or(0);
            match self.forward_late_edits(id, latest) {
                Ok(_) | Err(Error::Invalid { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// What this device changed in `duplicate` concurrently with its merge.
    fn late_edit_of(&mut self, duplicate: &str) -> Result<Option<LateEdit>> {
        let actor = self.actor.clone();
        let doc = self.doc_mut(duplicate, DocKind::Contact)?;
        let Some(merge) = merge_change(doc) else {
            return Ok(None);
        };
        let Some(base_heads) = doc.get_change_by_hash(&merge).map(|c| c.deps().to_vec()) else {
            return Ok(None);
        };
        // Ancestors of the merge, and the merge itself: known to whoever merged.
        let mut known: BTreeSet<ChangeHash> =
            doc.get_changes(&[]).into_iter().map(|c| c.hash()).collect();
        for c in doc.get_changes(&[merge]) {
            known.remove(&c.hash());
        }
        known.insert(merge);
        let mine: Vec<ChangeHash> = doc
            .get_changes(&base_heads)
            .into_iter()
            .filter(|c| c.actor_id() == &actor && !known.contains(&c.hash()))
            .map(|c| c.hash())
            .collect();
        if mine.is_empty() {
            return Ok(None);
        }
        let base: Contact = model::hydrate(duplicate, &fork_at(doc, &base_heads)?)?;
        let mut with_mine = base_heads.clone();
        with_mine.extend(mine);
        let edited: Contact = model::hydrate(duplicate, &fork_at(doc, &with_mine)?)?;
        Ok(Some(LateEdit::between(&base, &edited)))
    }
}

/// The change that set the document's current `merged_into`, if set.
fn merge_change(doc: &mut AutoCommit) -> Option<ChangeHash> {
    let (value, op) = doc.get(automerge::ROOT, "merged_into").ok()??;
    if !matches!(value, automerge::Value::Scalar(ref s) if s.is_str()) {
        return None;
    }
    // The change holding the winning op: its actor and the op's counter.
    let changes = doc.get_changes(&[]);
    let (counter, actor) = match &op {
        automerge::ObjId::Id(counter, actor, _) => (*counter, actor.clone()),
        automerge::ObjId::Root => return None,
    };
    changes
        .iter()
        .find(|c| {
            c.actor_id() == &actor
                && c.start_op().get() <= counter
                && counter < c.start_op().get() + c.len() as u64
        })
        .map(|c| c.hash())
}

/// The document as it was at `heads`.
fn fork_at(doc: &AutoCommit, heads: &[ChangeHash]) -> Result<AutoCommit> {
    let mut copy = doc.clone();
    copy.fork_at(heads)
        .map_err(|e| Error::bad_document("contact", e))
}

/// The difference between two states of a contact, to apply to another:
/// scalar fields that changed, items added to or removed from lists and
/// sets.
#[derive(Debug, Default)]
struct LateEdit {
    name: Option<String>,
    preferred_name: Option<Option<String>>,
    preferred_language: Option<Option<String>>,
    organisation: Option<Option<String>>,
    household: Option<Option<String>>,
    external_id: Option<Option<String>>,
    address: Option<model::contact::Address>,
    consent: Option<model::contact::Consent>,
    phones: (Vec<String>, Vec<String>),
    emails: (Vec<String>, Vec<String>),
    tags: (Vec<String>, Vec<String>),
    roles: (Vec<String>, Vec<String>),
    custom: BTreeMap<String, String>,
}

fn list_delta(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let added = after
        .iter()
        .filter(|x| !before.contains(x))
        .cloned()
        .collect();
    let removed = before
        .iter()
        .filter(|x| !after.contains(x))
        .cloned()
        .collect();
    (added, removed)
}

fn set_delta(
    before: &BTreeMap<String, bool>,
    after: &BTreeMap<String, bool>,
) -> (Vec<String>, Vec<String>) {
    let on = |m: &BTreeMap<String, bool>| -> Vec<String> {
        model::contact::set_items(m)
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    list_delta(&on(before), &on(after))
}

impl LateEdit {
    fn between(before: &Contact, after: &Contact) -> LateEdit {
        let changed = |a: &Option<String>, b: &Option<String>| (a != b).then(|| b.clone());
        LateEdit {
            name: (before.name != after.name).then(|| after.name.clone()),
            preferred_name: changed(&before.preferred_name, &after.preferred_name),
            preferred_language: changed(&before.preferred_language, &after.preferred_language),
            organisation: changed(&before.organisation, &after.organisation),
            household: changed(&before.household, &after.household),
            external_id: changed(&before.external_id, &after.external_id),
            address: (before.address != after.address).then(|| after.address.clone()),
            consent: (before.consent != after.consent).then(|| after.consent.clone()),
            phones: list_delta(&before.phones, &after.phones),
            emails: list_delta(&before.emails, &after.emails),
            tags: set_delta(&before.tags, &after.tags),
            roles: set_delta(&before.roles, &after.roles),
            custom: after
                .custom
                .iter()
                .filter(|(k, v)| before.custom.get(*k) != Some(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    fn apply(&self, c: &mut Contact) {
        if let Some(v) = &self.name {
            c.name = v.clone();
        }
        for (field, value) in [
            (&mut c.preferred_name, &self.preferred_name),
            (&mut c.preferred_language, &self.preferred_language),
            (&mut c.organisation, &self.organisation),
            (&mut c.household, &self.household),
            (&mut c.external_id, &self.external_id),
        ] {
            if let Some(v) = value {
                *field = v.clone();
            }
        }
        if let Some(a) = &self.address {
            c.address = a.clone();
        }
        if let Some(consent) = &self.consent {
            c.consent = consent.clone();
        }
        for (list, (added, removed)) in
            [(&mut c.phones, &self.phones), (&mut c.emails, &self.emails)]
        {
            list.retain(|x| !removed.contains(x));
            for x in added {
                if !list.contains(x) {
                    list.push(x.clone());
                }
            }
        }
        for (set, (added, removed)) in [(&mut c.tags, &self.tags), (&mut c.roles, &self.roles)] {
            for x in removed {
                set.remove(x);
            }
            for x in added {
                set.insert(x.clone(), true);
            }
        }
        for (k, v) in &self.custom {
            c.custom.insert(k.clone(), v.clone());
        }
    }
}

/// Whether `a` and `b` were marked "not a duplicate", on either of them
/// (`refused` from [`Store::not_duplicate_pairs`]).
fn marked_not_duplicate(refused: &HashSet<(String, String)>, a: &str, b: &str) -> bool {
    let key = model::contact::not_duplicate_key;
    refused.contains(&(a.to_owned(), key(b))) || refused.contains(&(b.to_owned(), key(a)))
}

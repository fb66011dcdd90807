//! Registrations made on events' public pages (issue 17): the person is
//! found by email or phone (following merges) or made, and signed up with
//! capacity and waitlist applied as on every replica.

use super::*;
use crate::duplicates::{normalise_email, phone_key};
use crate::model::PageClosed;
use crate::registration::{CheckedForm, PAGE_CONSENT_METHOD, PAGE_SOURCE};

/// What a registration from a public page came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRegistration {
    /// The contact signed up: the one already holding the email or phone
    /// (the contact it counts as, if it was merged), or the one made.
    pub contact_id: String,
    /// Whether the registration made that contact.
    pub new_contact: bool,
    /// Where the sign-up stands: registered, or waitlisted (or whatever it
    /// already was, for a person signed up before).
    pub status: SignupStatus,
    /// The place on the waitlist, from 1, when waitlisted.
    pub waitlist_position: Option<u32>,
}

impl Store {
    /// The contact holding `email` (compared as [`normalise_email`]) or
    /// `phone` (compared by [`phone_key`]), merged duplicates included and
    /// followed to the contact they count as; the smallest id if several.
    pub fn contact_holding(
        &self,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Result<Option<String>> {
        let region = self.phone_region()?;
        let email = email.map(normalise_email).filter(|e| !e.is_empty());
        let phone = phone
            .map(|p| phone_key(p, &region))
            .filter(|p| !p.is_empty());
        // Candidates from the search index (merged contacts too): the
        // email, and the phone's last six digits; then compared exactly.
        let mut queries = Vec::new();
        if let Some(e) = &email {
            queries.extend(index::fts_query(e));
        }
        if let Some(p) = &phone {
            let digits: String = p.chars().filter(char::is_ascii_digit).collect();
            let tail = &digits[digits.len().saturating_sub(6)..];
            queries.extend(index::fts_query(tail));
        }
        let mut found: Vec<String> = Vec::new();
        for query in queries {
            let mut stmt = self.conn.prepare_cached(
                "SELECT c.id, c.phones, c.emails
                 FROM contacts_fts JOIN contacts c ON c.num = contacts_fts.rowid
                 WHERE contacts_fts MATCH ?1",
            )?;
            let rows = stmt
                .query_map([&query], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for (id, phones, emails) in rows {
                let by_email = email
                    .as_ref()
                    .is_some_and(|e| emails.split('\n').any(|x| normalise_email(x) == *e));
                let by_phone = phone.as_ref().is_some_and(|p| {
                    phones
                        .split('\n')
                        .filter(|x| !x.trim().is_empty())
                        .any(|x| phone_key(x, &region) == *p)
                });
                if by_email || by_phone {
                    found.push(self.kept_contact_of(&id)?);
                }
            }
        }
        Ok(found.into_iter().min())
    }

    /// Registers the person of a checked form for `event_id` from its
    /// public page, as of `now`: the contact holding the form's email or
    /// phone is signed up (never a second contact for them), or a new one
    /// is made with the consent the form gave (method `web form`). Both are
    /// marked as made by [`PAGE_SOURCE`]. A person already signed up stays
    /// as they are (a page sent twice changes nothing). Refused, changing
    /// nothing, when the page takes no registration
    /// ([`Event::page_takes_registrations`]).
    pub fn register_from_page(
        &mut self,
        event_id: &str,
        form: &CheckedForm,
        now: Millis,
    ) -> Result<PageRegistration> {
        let event = self.event(event_id)?;
        if let Err(why) = event.page_takes_registrations(now) {
            return Err(Error::NotAllowed(match why {
                PageClosed::NotPublished => {
                    format!("{} does not take registrations online", event.title)
                }
                PageClosed::RegistrationsClosed => {
                    format!("registrations for {} have closed", event.title)
                }
                PageClosed::EventOver => format!("{} was cancelled or is over", event.title),
            }));
        }
        let (contact, new_contact) =
            match self.contact_holding(form.email.as_deref(), form.phone.as_deref())? {
                Some(id) => (id, false),
                None => {
                    let new = NewContact {
                        name: form.name.clone(),
                        phones: form.phone.iter().cloned().collect(),
                        emails: form.email.iter().cloned().collect(),
                        preferred_language: form.language.clone(),
                        ..Default::default()
                    };
                    let consent = NewConsent {
                        given: !form.consent.is_empty(),
                        channels: form.consent.clone(),
                        method: Some(PAGE_CONSENT_METHOD.to_owned()),
                    };
                    let id = self.create_record(DocKind::Contact, now, |id, _| {
                        let mut c = Contact::new(id, &new, PAGE_SOURCE, now)?;
                        c.consent = consent.recorded(now, PAGE_SOURCE);
                        Ok(c)
                    })?;
                    (id, true)
                }
            };
        let target = self.signup_target(event_id, &contact)?;
        self.edit_signups(event_id, now, |doc| {
            model::event::ops::sign_up(doc, event_id, &target, PAGE_SOURCE, false, now)
        })?;
        let line = self
            .roster(event_id, None)?
            .into_iter()
            .find(|l| l.contact_id == contact)
            .ok_or_else(|| {
                Error::bad_document(event_id, "a sign-up just made is not on the roster")
            })?;
        Ok(PageRegistration {
            contact_id: contact,
            new_contact,
            status: line.status,
            waitlist_position: line.waitlist_position,
        })
    }
}

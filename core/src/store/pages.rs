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
    /// The private link that cancels this sign-up, when this registration
    /// made it; `None` for a person signed up already, so that whoever
    /// types someone else's email cannot cancel their registration.
    pub cancel: Option<CancelLink>,
}

/// What a private cancel link names: `/r/SLUG/cancel/CONTACT/TOKEN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelLink {
    /// The contact as the sign-up names it.
    pub contact_id: String,
    /// [`Publication::cancel_token`] of the sign-up.
    pub token: String,
}

/// What following a private cancel link came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCancel {
    /// The sign-up is cancelled (its seat goes to the first waiting).
    Cancelled,
    /// It was cancelled already: nothing changed.
    AlreadyCancelled,
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
        let was_signed_up = self
            .sign_up_of(event_id, &target)?
            .is_some_and(|(status, _, _)| status != SignupStatus::Cancelled);
        // A person already holding a live sign-up (perhaps a merged
        // duplicate's) is not signed up again.
        if !was_signed_up {
            self.edit_signups(event_id, now, |doc| {
                model::event::ops::sign_up(doc, event_id, &target, PAGE_SOURCE, false, now)
            })?;
        }
        let (status, registered_at, waitlist_position) =
            self.sign_up_of(event_id, &target)?.ok_or_else(|| {
                Error::bad_document(event_id, "a sign-up just made is not on the roster")
            })?;
        let page = event
            .publication
            .as_ref()
            .ok_or_else(|| Error::bad_document(event_id, "a published event without its page"))?;
        let cancel = (!was_signed_up).then(|| CancelLink {
            token: page.cancel_token(&target, registered_at),
            contact_id: target.clone(),
        });
        Ok(PageRegistration {
            contact_id: contact,
            new_contact,
            status,
            waitlist_position,
            cancel,
        })
    }

    /// The sign-up of `contact_id` (as the sign-up names it) at `event_id`:
    /// its status, when it registered, its waitlist place; one row, where
    /// the roster would read every sign-up of the event.
    fn sign_up_of(
        &self,
        event_id: &str,
        contact_id: &str,
    ) -> Result<Option<(SignupStatus, Millis, Option<u32>)>> {
        let row: Option<(String, Millis, Option<u32>)> = self
            .conn
            .prepare_cached(
                "SELECT status, registered_at, waitlist_position FROM signups
                 WHERE event_id = ?1 AND contact_id = ?2",
            )?
            .query_row([event_id, contact_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        Ok(row.map(|(status, at, place)| {
            (
                SignupStatus::parse(&status).unwrap_or(SignupStatus::Registered),
                at,
                place,
            )
        }))
    }

    /// Where a private cancel link of `event_id`'s page for `contact_id`
    /// stands: the sign-up's status if `token` is its link's
    /// ([`Publication::cancel_token`]), `None` for a link that is not one
    /// (a wrong token, an unknown contact or event, a page never
    /// published) — told apart from nothing, so a link reveals nothing.
    pub fn page_sign_up(
        &mut self,
        event_id: &str,
        contact_id: &str,
        token: &str,
    ) -> Result<Option<(Event, SignupStatus)>> {
        if DocKind::of_id(event_id) != Some(DocKind::Event)
            || DocKind::of_id(contact_id) != Some(DocKind::Contact)
        {
            return Ok(None);
        }
        let event = match self.event(event_id) {
            Ok(e) => e,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(page) = event.publication.clone() else {
            return Ok(None);
        };
        match self.sign_up_of(event_id, contact_id)? {
            Some((status, at, _)) if page.is_cancel_token(contact_id, at, token) => {
                Ok(Some((event, status)))
            }
            _ => Ok(None),
        }
    }

    /// Cancels the sign-up of a private cancel link
    /// ([`Store::page_sign_up`]), as of `now`. Refused once the event has
    /// started or is over; `NotFound` for a link that is not one.
    pub fn cancel_from_page(
        &mut self,
        event_id: &str,
        contact_id: &str,
        token: &str,
        now: Millis,
    ) -> Result<PageCancel> {
        let Some((event, status)) = self.page_sign_up(event_id, contact_id, token)? else {
            return Err(Error::not_found("registration", contact_id));
        };
        if status == SignupStatus::Cancelled {
            return Ok(PageCancel::AlreadyCancelled);
        }
        if event.status != model::EventStatus::Scheduled || now >= event.starts_at {
            return Err(Error::NotAllowed(format!(
                "{} has started or is over: ask the organisers",
                event.title
            )));
        }
        // The person's every sign-up, a merged duplicate's too.
        self.cancel_signup(event_id, contact_id, now)?;
        Ok(PageCancel::Cancelled)
    }
}

//! Events, their sign-ups (with capacity and waitlist) and volunteer
//! shifts.

use super::*;

impl Store {
    /// Creates an event and returns its id.
    pub fn create_event(&mut self, new: &NewEvent, now: Millis) -> Result<String> {
        self.create_record(DocKind::Event, now, |id, by| Event::new(id, new, by, now))
    }

    /// The event with this id.
    pub fn event(&mut self, id: &str) -> Result<Event> {
        self.read_record(DocKind::Event, id)
    }

    /// Edits an event's own fields (title, times, place, capacity, status).
    /// Sign-ups and shifts have their own calls.
    pub fn update_event(
        &mut self,
        id: &str,
        now: Millis,
        edit: impl FnOnce(&mut Event) -> Result<()>,
    ) -> Result<()> {
        self.edit_event(id, now, |e: &mut Event| {
            let (keep_signups, keep_shifts) = (e.signups.clone(), e.shifts.clone());
            edit(e)?;
            e.signups = keep_signups;
            e.shifts = keep_shifts;
            Ok(())
        })
    }

    /// Edits an event's own fields as `edit` says ([`EventEdit`]).
    pub fn edit_event_fields(&mut self, id: &str, edit: &EventEdit, now: Millis) -> Result<()> {
        self.update_event(id, now, |e| {
            edit.apply(e);
            Ok(())
        })
    }

    /// Cancels an event: it stays, with its sign-ups, marked cancelled.
    pub fn cancel_event(&mut self, id: &str, now: Millis) -> Result<()> {
        self.update_event(id, now, |e| {
            e.status = model::EventStatus::Cancelled;
            Ok(())
        })
    }

    /// Publishes an event's public registration page, or changes what it
    /// asks (`asks`: fields of [`Publication::ASKABLE`]; all of them when
    /// empty) and when it closes (`closes_at`; `None`: when the event
    /// starts). An event published before keeps its address. Returns the
    /// page as it now stands.
    pub fn publish_event(
        &mut self,
        id: &str,
        closes_at: Option<Millis>,
        asks: &[String],
        now: Millis,
    ) -> Result<Publication> {
        let asks = Publication::asking(asks)?;
        let (new_slug, new_secret) = (self.next_hex(), self.next_hex());
        let mut published = None;
        self.edit_event(id, now, |e| {
            if e.status != model::EventStatus::Scheduled {
                return Err(Error::NotAllowed(format!(
                    "{} is {}: its page cannot take registrations",
                    e.title,
                    match e.status {
                        model::EventStatus::Cancelled => "cancelled",
                        _ => "over",
                    }
                )));
            }
            if closes_at.unwrap_or(e.starts_at) <= now {
                return Err(Error::invalid(
                    "closes",
                    match closes_at {
                        Some(_) => "is already past: registrations would be closed at once",
                        None => "the event has started: give --closes, a time still to come",
                    },
                ));
            }
            let (slug, secret) = e.publication.as_ref().map_or((new_slug, new_secret), |p| {
                (p.slug.clone(), p.secret.clone())
            });
            let page = Publication {
                slug,
                open: true,
                closes_at,
                asks,
                secret,
            };
            published = Some(page.clone());
            e.publication = Some(page);
            Ok(())
        })?;
        published.ok_or_else(|| Error::bad_document(id, "the event was not published"))
    }

    /// Closes an event's public page: it answers that registrations are
    /// closed, keeps its address for publishing again, and every
    /// registration made stays. Returns false, changing nothing, if the
    /// page was not open.
    pub fn unpublish_event(&mut self, id: &str, now: Millis) -> Result<bool> {
        if !self.event(id)?.publication.is_some_and(|p| p.open) {
            return Ok(false);
        }
        self.edit_event(id, now, |e| {
            if let Some(p) = &mut e.publication {
                p.open = false;
            }
            Ok(())
        })?;
        Ok(true)
    }

    /// The event whose public page is at `/r/SLUG`, open or not; `None` for
    /// an address no event of this device has (or that is not one).
    pub fn event_by_slug(&mut self, slug: &str) -> Result<Option<Event>> {
        if slug.len() != 32 || !slug.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Ok(None);
        }
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT id FROM events WHERE public_slug = ?1 ORDER BY id LIMIT 1",
                [slug],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => Ok(Some(self.event(&id)?)),
            None => Ok(None),
        }
    }

    /// Events by start time.
    pub fn list_events(&self) -> Result<Vec<EventSummary>> {
        self.events_between(None, None)
    }

    /// Events starting at `from` or later and before `until` (either open),
    /// by start time: the upcoming ones from now, the past ones until now.
    pub fn events_between(
        &self,
        from: Option<Millis>,
        until: Option<Millis>,
    ) -> Result<Vec<EventSummary>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE (?1 IS NULL OR starts_at >= ?1) AND (?2 IS NULL OR starts_at < ?2)
             ORDER BY starts_at, id"
        ))?;
        let rows = stmt
            .query_map(params![from, until], event_summary)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// One event's line of [`Store::list_events`], read by its id alone.
    pub fn event_summary(&self, id: &str) -> Result<Option<EventSummary>> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?
            .query_row([id], event_summary)
            .optional()?)
    }

    /// Signs a contact up to an event (in advance, or at the door when
    /// `walk_in`). Signing up someone already registered changes nothing.
    pub fn sign_up(
        &mut self,
        event_id: &str,
        contact_id: &str,
        walk_in: bool,
        now: Millis,
    ) -> Result<()> {
        self.require(DocKind::Contact, contact_id)?;
        let (kept, lines) = self.person_signups(event_id, contact_id)?;
        // The person holds a live sign-up (perhaps a merged duplicate's).
        if let Some(line) = lines.first()
            && self.signup_status(event_id, line)? != Some(SignupStatus::Cancelled)
        {
            return Ok(());
        }
        let contact_id = lines.first().unwrap_or(&kept);
        let by = self.device_id.clone();
        self.edit_signups(event_id, now, |doc| {
            model::event::ops::sign_up(doc, event_id, contact_id, &by, walk_in, now)
        })
    }

    /// Where the sign-up `contact_id` holds at `event_id` stands (its
    /// person's status), if it has one.
    fn signup_status(&self, event_id: &str, contact_id: &str) -> Result<Option<SignupStatus>> {
        let status: Option<String> = self
            .conn
            .prepare_cached("SELECT status FROM signups WHERE event_id = ?1 AND contact_id = ?2")?
            .query_row([event_id, contact_id], |r| r.get(0))
            .optional()?;
        Ok(status.as_deref().and_then(SignupStatus::parse))
    }

    /// Checks a contact in; a contact not signed up becomes a walk-in.
    pub fn check_in(&mut self, event_id: &str, contact_id: &str, now: Millis) -> Result<()> {
        self.require(DocKind::Contact, contact_id)?;
        let contact_id = &self.signup_target(event_id, contact_id)?;
        let by = self.device_id.clone();
        self.edit_signups(event_id, now, |doc| {
            model::event::ops::check_in(doc, event_id, contact_id, &by, now)
        })
    }

    /// Takes back a check-in made by mistake.
    pub fn undo_check_in(&mut self, event_id: &str, contact_id: &str, now: Millis) -> Result<()> {
        self.edit_person_signups(event_id, contact_id, now, |doc, contact_id| {
            model::event::ops::undo_check_in(doc, event_id, contact_id)
        })
    }

    /// Cancels a person's sign-up (every one they hold, a merged
    /// duplicate's too); the first person waiting takes the seat.
    pub fn cancel_signup(&mut self, event_id: &str, contact_id: &str, now: Millis) -> Result<()> {
        self.edit_person_signups(event_id, contact_id, now, |doc, contact_id| {
            model::event::ops::cancel(doc, event_id, contact_id, now)
        })
    }

    /// Marks a registered person as not having come.
    pub fn mark_no_show(&mut self, event_id: &str, contact_id: &str, now: Millis) -> Result<()> {
        self.edit_person_signups(event_id, contact_id, now, |doc, contact_id| {
            model::event::ops::mark_no_show(doc, event_id, contact_id, now)
        })
    }

    /// Changes with `op`, in one change, every sign-up at `event_id` of the
    /// person `contact_id` is: their own and their merged duplicates'
    /// ([`Store::person_signups`]); the kept contact's when they hold none
    /// (so `op` says they are not signed up).
    fn edit_person_signups(
        &mut self,
        event_id: &str,
        contact_id: &str,
        now: Millis,
        op: impl Fn(&mut AutoCommit, &str) -> Result<()>,
    ) -> Result<()> {
        let (kept, mut lines) = self.person_signups(event_id, contact_id)?;
        if lines.is_empty() {
            lines.push(kept);
        }
        self.edit_signups(event_id, now, |doc| {
            lines.iter().try_for_each(|contact_id| op(doc, contact_id))
        })
    }

    /// Adds a volunteer shift to an event. Returns the shift id.
    pub fn add_shift(&mut self, event_id: &str, shift: Shift, now: Millis) -> Result<String> {
        self.require(DocKind::Contact, &shift.contact_id)?;
        let shift_id = self.new_entry_id();
        let key = shift_id.clone();
        self.edit_event(event_id, now, move |e| {
            e.shifts.insert(key, shift);
            Ok(())
        })?;
        Ok(shift_id)
    }

    /// Records the minutes a volunteer actually worked on a shift.
    pub fn record_shift_minutes(
        &mut self,
        event_id: &str,
        shift_id: &str,
        minutes: i64,
        now: Millis,
    ) -> Result<()> {
        self.edit_event(event_id, now, |e| {
            let shift = e
                .shifts
                .get_mut(shift_id)
                .ok_or_else(|| Error::not_found("shift", shift_id))?;
            shift.minutes_worked = Some(minutes);
            Ok(())
        })
    }

    pub(super) fn edit_signups(
        &mut self,
        event_id: &str,
        now: Millis,
        edit: impl FnOnce(&mut AutoCommit) -> Result<()>,
    ) -> Result<()> {
        model::check_id(DocKind::Event, event_id)?;
        self.edit_doc(event_id, DocKind::Event, now, edit)
    }

    fn edit_event(
        &mut self,
        event_id: &str,
        now: Millis,
        edit: impl FnOnce(&mut Event) -> Result<()>,
    ) -> Result<()> {
        model::check_id(DocKind::Event, event_id)?;
        self.edit_doc(event_id, DocKind::Event, now, |doc| {
            let mut e: Event = model::hydrate(event_id, doc)?;
            edit(&mut e)?;
            e.normalise()?;
            // Sign-ups change only through `model::event::ops`; reconciling
            // them here would cost time in proportion to the event's size.
            e.reconcile_fields(event_id, doc)
        })
    }

    /// A page of [`Store::roster`]: `limit` lines (all when `None`) from
    /// `offset`, a person once.
    pub fn roster_page(
        &self,
        event_id: &str,
        status: Option<SignupStatus>,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<RosterLine>> {
        let lines = self.roster(event_id, status)?.into_iter().skip(offset);
        Ok(match limit {
            Some(n) => lines.take(n).collect(),
            None => lines.collect(),
        })
    }

    /// An event's roster in registration order, optionally only the
    /// sign-ups in one status (for example the waitlist).
    pub fn roster(&self, event_id: &str, status: Option<SignupStatus>) -> Result<Vec<RosterLine>> {
        self.require(DocKind::Event, event_id)?;
        // A merged duplicate's sign-up shows as the kept contact's.
        let mut stmt = self.conn.prepare_cached(
            "SELECT coalesce(k.id, s.contact_id), coalesce(k.name, c.name), s.status,
                    s.registered_at, s.checked_in_at, s.walk_in, s.waitlist_position
             FROM signups s LEFT JOIN contacts c ON c.id = s.contact_id
                  LEFT JOIN contacts k ON k.id = c.merged_into
             WHERE s.event_id = ?1 AND (?2 IS NULL OR s.status = ?2)
             ORDER BY s.registered_at, s.contact_id",
        )?;
        let rows = stmt
            .query_map(params![event_id, status.map(SignupStatus::as_str)], |r| {
                let status: String = r.get(2)?;
                Ok(RosterLine {
                    contact_id: r.get(0)?,
                    name: r.get(1)?,
                    status: SignupStatus::parse(&status).unwrap_or(SignupStatus::Registered),
                    registered_at: r.get(3)?,
                    checked_in_at: r.get(4)?,
                    walk_in: r.get(5)?,
                    waitlist_position: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<RosterLine>>>()?;
        // A person registered twice (before the merge) keeps one line. Every
        // row of a person holds the person's status (`views::roster`); the
        // line is their earliest sign-up (its time, and whether it was made
        // at the door) with the earliest check-in of any of them.
        let mut lines: Vec<RosterLine> = Vec::with_capacity(rows.len());
        let mut at: HashMap<String, usize> = HashMap::with_capacity(rows.len());
        for row in rows {
            match at.get(&row.contact_id).map(|&i| &mut lines[i]) {
                Some(line) => {
                    line.checked_in_at = match (line.checked_in_at, row.checked_in_at) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => {
                    at.insert(row.contact_id.clone(), lines.len());
                    lines.push(row);
                }
            }
        }
        Ok(lines)
    }
}

/// The columns [`event_summary`] reads, in order.
const EVENT_COLUMNS: &str =
    "id, title, starts_at, ends_at, place, capacity, status, registered, waitlisted, checked_in";

fn event_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventSummary> {
    Ok(EventSummary {
        id: r.get(0)?,
        title: r.get(1)?,
        starts_at: r.get(2)?,
        ends_at: r.get(3)?,
        place: r.get(4)?,
        capacity: r.get(5)?,
        status: r.get(6)?,
        registered: r.get(7)?,
        waitlisted: r.get(8)?,
        checked_in: r.get(9)?,
    })
}

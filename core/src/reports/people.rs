//! New contacts and consent coverage.

use super::*;

impl Reports<'_> {
    /// Contacts created in `[from, to)` (merged duplicates left out), by
    /// the first event each signed up to and by the device that created
    /// it (`created_by`).
    ///
    /// A contact's first event is the one of its earliest registration,
    /// counting the sign-ups of duplicates merged into it and sign-ups in
    /// any status (a cancelled sign-up still brought the person in); ties
    /// go to the event that starts first.
    pub fn new_contacts(
        &self,
        from: Option<Millis>,
        to: Option<Millis>,
    ) -> Result<NewContactsReport> {
        check_range(from, to)?;
        let merges = self.merges()?;
        // Each person's first sign-up: (registered_at, event start, event).
        let mut first: HashMap<String, (Millis, Millis, String)> = HashMap::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT s.contact_id, s.registered_at, ifnull(e.starts_at, 9223372036854775807), s.event_id
                 FROM signups s LEFT JOIN events e ON e.id = s.event_id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let contact: String = r.get(0)?;
                let sign_up: (Millis, Millis, String) = (r.get(1)?, r.get(2)?, r.get(3)?);
                let person = merges.kept(&contact);
                match first.get_mut(person) {
                    Some(known) if *known <= sign_up => {}
                    Some(known) => *known = sign_up,
                    None => {
                        first.insert(person.to_owned(), sign_up);
                    }
                }
            }
        }
        let this_device = self.device_id;
        let mut contacts = 0;
        let mut without_event = 0;
        let mut per_event: HashMap<String, i64> = HashMap::new();
        let mut per_device: HashMap<String, NewByDevice> = HashMap::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, created_by, created_at FROM contacts
                 WHERE merged_into IS NULL
                   AND (?1 IS NULL OR created_at >= ?1) AND (?2 IS NULL OR created_at < ?2)",
            )?;
            let mut rows = stmt.query(params![from, to])?;
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let device: String = r.get(1)?;
                let created_at: Millis = r.get(2)?;
                contacts += 1;
                match first.get(&id) {
                    Some((_, _, event)) => *per_event.entry(event.clone()).or_default() += 1,
                    None => without_event += 1,
                }
                let d = per_device
                    .entry(device)
                    .or_insert_with_key(|device| NewByDevice {
                        this_device: device == this_device,
                        device_id: device.clone(),
                        new_contacts: 0,
                        first_created_at: created_at,
                        last_created_at: created_at,
                    });
                d.new_contacts += 1;
                d.first_created_at = d.first_created_at.min(created_at);
                d.last_created_at = d.last_created_at.max(created_at);
            }
        }
        let mut by_event = Vec::with_capacity(per_event.len());
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT title, starts_at FROM events WHERE id = ?1")?;
            for (event_id, new_contacts) in per_event {
                let found: Option<(String, Millis)> = stmt
                    .query_row([&event_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let (title, starts_at) = found.unzip();
                by_event.push(NewAtEvent {
                    event_id,
                    title,
                    starts_at,
                    new_contacts,
                });
            }
        }
        // Events this device does not hold go last.
        by_event.sort_by(|a, b| {
            (a.starts_at.unwrap_or(Millis::MAX), &a.event_id)
                .cmp(&(b.starts_at.unwrap_or(Millis::MAX), &b.event_id))
        });
        let mut by_device: Vec<NewByDevice> = per_device.into_values().collect();
        by_device.sort_by(|a, b| {
            b.new_contacts
                .cmp(&a.new_contacts)
                .then_with(|| a.device_id.cmp(&b.device_id))
        });
        Ok(NewContactsReport {
            contacts,
            by_event,
            without_event,
            by_device,
        })
    }

    /// Consent coverage over the contacts (merged duplicates left out):
    /// how many gave consent, and per channel how many of those named it.
    ///
    /// Who gave consent comes from the index; channels live only in the
    /// contact documents, so the documents of those who gave consent are
    /// read (about 20 µs each on two threads). With `refusals`, the
    /// documents of the others are read too, to tell a recorded refusal
    /// from a person never asked: every contact is read then.
    pub fn consent(&self, refusals: bool) -> Result<ConsentReport> {
        let (contacts, given) = self.conn.query_row(
            "SELECT count(*), ifnull(sum(consent_given <> 0), 0) FROM contacts
             WHERE merged_into IS NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut report = ConsentReport {
            contacts,
            given,
            refused: None,
            not_recorded: None,
            by_channel: Vec::new(),
            given_without_channel: 0,
            unreadable_contacts: 0,
        };
        // Channels and refusals are index columns (schema v3): SQL only.
        let mut channels: HashMap<String, i64> = HashMap::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT consent_channels, count(*) FROM contacts
             WHERE merged_into IS NULL AND consent_given <> 0 GROUP BY consent_channels",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (list, n) = row?;
            if list.is_empty() {
                report.given_without_channel += n;
            }
            for channel in list.split(',').filter(|c| !c.is_empty()) {
                *channels.entry(channel.to_owned()).or_default() += n;
            }
        }
        if refusals {
            let (refused, not_recorded) = self.conn.query_row(
                "SELECT ifnull(sum(consent_recorded_at IS NOT NULL), 0),
                        ifnull(sum(consent_recorded_at IS NULL), 0)
                 FROM contacts WHERE merged_into IS NULL AND consent_given = 0",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )?;
            report.refused = Some(refused);
            report.not_recorded = Some(not_recorded);
        }
        report.by_channel = channels
            .into_iter()
            .map(|(channel, contacts)| ChannelConsent { channel, contacts })
            .collect();
        report.by_channel.sort_by(|a, b| {
            b.contacts
                .cmp(&a.contacts)
                .then_with(|| a.channel.cmp(&b.channel))
        });
        Ok(report)
    }
}

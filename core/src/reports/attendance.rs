//! Attendance per event and volunteer hours.

use super::*;

impl Reports<'_> {
    /// Attendance per event: for each event starting in `[from, to)`, the
    /// people signed up, holding a seat, checked in, walk-ins, no-shows,
    /// waitlisted and cancelled, and the totals. Merged duplicates count
    /// once, for the kept contact, with their best status.
    pub fn events(&self, from: Option<Millis>, to: Option<Millis>) -> Result<EventsReport> {
        check_range(from, to)?;
        let merges = self.merges()?;
        let mut events = Vec::new();
        let mut position = HashMap::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, title, starts_at, status, capacity FROM events
                 WHERE (?1 IS NULL OR starts_at >= ?1) AND (?2 IS NULL OR starts_at < ?2)
                 ORDER BY starts_at, id",
            )?;
            let rows = stmt.query_map(params![from, to], |r| {
                Ok(EventAttendance {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    starts_at: r.get(2)?,
                    status: r.get(3)?,
                    capacity: r.get(4)?,
                    counts: SignupCounts::default(),
                })
            })?;
            for row in rows {
                let row = row?;
                position.insert(row.id.clone(), events.len());
                events.push(row);
            }
        }
        // Per event, each person's best sign-up.
        let mut people: Vec<HashMap<String, (SignupStatus, bool)>> =
            vec![HashMap::new(); events.len()];
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT s.event_id, s.contact_id, s.status, s.walk_in
                 FROM signups s JOIN events e ON e.id = s.event_id
                 WHERE (?1 IS NULL OR e.starts_at >= ?1) AND (?2 IS NULL OR e.starts_at < ?2)",
            )?;
            let mut rows = stmt.query(params![from, to])?;
            while let Some(r) = rows.next()? {
                let event: String = r.get(0)?;
                let contact: String = r.get(1)?;
                let status: String = r.get(2)?;
                let walk_in: bool = r.get(3)?;
                let Some(&at) = position.get(&event) else {
                    continue;
                };
                // As the roster does: a status this build does not know
                // holds a seat.
                let status = SignupStatus::parse(&status).unwrap_or(SignupStatus::Registered);
                let person = merges.kept(&contact).to_owned();
                let best = people[at].entry(person).or_insert((status, walk_in));
                if status.precedence() > best.0.precedence() {
                    *best = (status, walk_in);
                }
            }
        }
        let mut totals = SignupCounts::default();
        for (event, people) in events.iter_mut().zip(people) {
            let c = &mut event.counts;
            for (status, walk_in) in people.into_values() {
                c.sign_ups += 1;
                match status {
                    SignupStatus::Registered => c.registered += 1,
                    SignupStatus::CheckedIn => {
                        c.registered += 1;
                        c.checked_in += 1;
                    }
                    SignupStatus::NoShow => {
                        c.registered += 1;
                        c.no_shows += 1;
                    }
                    SignupStatus::Waitlisted => c.waitlisted += 1,
                    SignupStatus::Cancelled => c.cancelled += 1,
                }
                if walk_in && status != SignupStatus::Cancelled {
                    c.walk_ins += 1;
                }
            }
            totals.add(c);
        }
        Ok(EventsReport { events, totals })
    }

    /// Volunteer time per person and `period` (`week`, `month`, `quarter`
    /// or `year`) for shifts starting in `[from, to)`, with totals per
    /// period, per volunteer and overall.
    ///
    /// A shift counts its recorded minutes; one without recorded minutes
    /// counts its scheduled length and is reported as such
    /// (`scheduled_shifts`), unless it had not ended by `now` or
    /// its event was cancelled: those were not worked and are only counted
    /// apart. A merged duplicate's shifts count for the kept contact.
    pub fn hours(
        &self,
        period: &str,
        from: Option<Millis>,
        to: Option<Millis>,
        now: Millis,
    ) -> Result<HoursReport> {
        let period = Period::parse(period)?;
        check_range(from, to)?;
        let merges = self.merges()?;
        let mut cells: BTreeMap<(i64, String), Worked> = BTreeMap::new();
        let (mut upcoming_shifts, mut cancelled_event_shifts) = (0, 0);
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT s.contact_id, s.starts_at, s.ends_at, s.minutes_worked, e.status
                 FROM shifts s LEFT JOIN events e ON e.id = s.event_id
                 WHERE (?1 IS NULL OR s.starts_at >= ?1) AND (?2 IS NULL OR s.starts_at < ?2)",
            )?;
            let mut rows = stmt.query(params![from, to])?;
            while let Some(r) = rows.next()? {
                let contact: String = r.get(0)?;
                let starts_at: Millis = r.get(1)?;
                let ends_at: Millis = r.get(2)?;
                let minutes_worked: Option<i64> = r.get(3)?;
                let event_status: Option<String> = r.get(4)?;
                let mut shift = Worked {
                    shifts: 1,
                    ..Worked::default()
                };
                match minutes_worked {
                    Some(minutes) => shift.minutes = minutes.max(0),
                    None if event_status.as_deref() == Some("cancelled") => {
                        cancelled_event_shifts += 1;
                        continue;
                    }
                    None if ends_at > now => {
                        upcoming_shifts += 1;
                        continue;
                    }
                    None => {
                        let minutes = ends_at.saturating_sub(starts_at).max(0) / MINUTE;
                        shift.minutes = minutes;
                        shift.scheduled_shifts = 1;
                        shift.scheduled_minutes = minutes;
                    }
                }
                let person = merges.kept(&contact).to_owned();
                cells
                    .entry((period.index(starts_at), person))
                    .or_default()
                    .add(&shift);
            }
        }
        let names = self.names(cells.keys().map(|(_, c)| c.as_str()))?;
        // By name; volunteers this device does not hold last, by id.
        let by_name = |id: &str| {
            let sort_name = names.get(id).map(|n| n.1.clone());
            (sort_name.is_none(), sort_name, id.to_owned())
        };

        let mut rows = Vec::with_capacity(cells.len());
        let mut periods: BTreeMap<i64, PeriodHours> = BTreeMap::new();
        let mut volunteers: HashMap<String, Worked> = HashMap::new();
        let mut total = Worked::default();
        for ((index, contact), worked) in cells {
            let label = period.label(index);
            let start = period.start(index);
            let p = periods.entry(index).or_insert_with(|| PeriodHours {
                period: label.clone(),
                period_start: start,
                volunteers: 0,
                worked: Worked::default(),
            });
            p.volunteers += 1;
            p.worked.add(&worked);
            volunteers.entry(contact.clone()).or_default().add(&worked);
            total.add(&worked);
            rows.push(VolunteerPeriod {
                period: label,
                period_start: start,
                name: names.get(&contact).map(|n| n.0.clone()),
                contact_id: contact,
                worked,
            });
        }
        rows.sort_by_cached_key(|r| (r.period_start, by_name(&r.contact_id)));
        let mut volunteers: Vec<VolunteerHours> = volunteers
            .into_iter()
            .map(|(contact_id, worked)| VolunteerHours {
                name: names.get(&contact_id).map(|n| n.0.clone()),
                contact_id,
                worked,
            })
            .collect();
        volunteers.sort_by_cached_key(|v| by_name(&v.contact_id));
        Ok(HoursReport {
            period: period.as_str().to_owned(),
            rows,
            periods: periods.into_values().collect(),
            volunteers,
            total,
            upcoming_shifts,
            cancelled_event_shifts,
        })
    }
}

//! Donor retention: gifts read from the private ledgers.

use super::*;

impl Reports<'_> {
    /// Donors per `period` (`week`, `month`, `quarter` or `year`): for each
    /// period of `[from, to)` (by default from the first gift to the period
    /// under way at `now`), the donors, those retained from the previous
    /// period, lapsed, new and reactivated, and the amounts per currency;
    /// over the range, the repeat-gift rate (donors with two or more gifts
    /// out of all donors) and the amounts.
    ///
    /// Gifts are read from the private ledgers. Whether a donor is new
    /// looks at their whole history, before `from` too. A merged
    /// duplicate's gifts count for the kept contact.
    pub fn donors(
        &self,
        period: &str,
        from: Option<Millis>,
        to: Option<Millis>,
        now: Millis,
    ) -> Result<DonorsReport> {
        let period = Period::parse(period)?;
        check_range(from, to)?;
        let merges = self.merges()?;
        let (gifts, unreadable_ledgers) = self.gifts(&merges)?;

        // Donors are numbered, so that the sets below hold integers.
        let mut donor_number: HashMap<&str, usize> = HashMap::new();
        let mut first_period: Vec<i64> = Vec::new();
        let mut in_period: HashMap<i64, HashSet<usize>> = HashMap::new();
        let mut period_totals: HashMap<i64, (i64, BTreeMap<String, i64>)> = HashMap::new();
        let mut gifts_in_range: HashMap<usize, i64> = HashMap::new();
        let mut report = DonorsReport {
            period: period.as_str().to_owned(),
            periods: Vec::new(),
            donors: 0,
            gifts: 0,
            repeat_donors: 0,
            amounts: BTreeMap::new(),
            unreadable_ledgers,
        };
        let (mut earliest, mut latest) = (None::<i64>, None::<i64>);
        for gift in &gifts {
            let index = period.index(gift.date);
            earliest = Some(earliest.map_or(index, |e| e.min(index)));
            latest = Some(latest.map_or(index, |l| l.max(index)));
            let next = donor_number.len();
            let donor = *donor_number.entry(gift.donor.as_str()).or_insert(next);
            if donor == first_period.len() {
                first_period.push(index);
            } else {
                first_period[donor] = first_period[donor].min(index);
            }
            in_period.entry(index).or_default().insert(donor);
            let totals = period_totals.entry(index).or_default();
            totals.0 += 1;
            add_money(&mut totals.1, &gift.currency, gift.amount_minor);
            if in_range(gift.date, from, to) {
                report.gifts += 1;
                *gifts_in_range.entry(donor).or_default() += 1;
                add_money(&mut report.amounts, &gift.currency, gift.amount_minor);
            }
        }
        report.donors = gifts_in_range.len() as i64;
        report.repeat_donors = gifts_in_range.values().filter(|n| **n >= 2).count() as i64;

        let first = match (from, earliest) {
            (Some(from), _) => period.index(from),
            (None, Some(earliest)) => earliest,
            (None, None) => return Ok(report),
        };
        let last = match to {
            Some(to) => period.index(to.saturating_sub(1)),
            None => latest.map_or(period.index(now), |l| l.max(period.index(now))),
        };
        if last.saturating_sub(first) >= MAX_PERIODS {
            return Err(Error::invalid(
                "period",
                format!(
                    "the range holds {} {}s, more than {MAX_PERIODS}; choose a longer period or a shorter range",
                    last.saturating_sub(first).saturating_add(1),
                    period.as_str()
                ),
            ));
        }
        let empty = HashSet::new();
        for index in first..=last {
            let donors = in_period.get(&index).unwrap_or(&empty);
            let previous = in_period.get(&(index - 1)).unwrap_or(&empty);
            let retained = donors.intersection(previous).count() as i64;
            let new_donors = donors.iter().filter(|d| first_period[**d] == index).count() as i64;
            let (gifts, amounts) = period_totals.remove(&index).unwrap_or_default();
            let starts_at = period.start(index);
            let ends_at = period.start(index + 1);
            report.periods.push(DonorPeriod {
                period: period.label(index),
                starts_at,
                ends_at,
                partial: starts_at <= now && now < ends_at,
                donors: donors.len() as i64,
                gifts,
                previous_donors: previous.len() as i64,
                retained,
                lapsed: previous.len() as i64 - retained,
                new_donors,
                reactivated: donors.len() as i64 - new_donors - retained,
                amounts,
            });
        }
        Ok(report)
    }

    /// Every gift of every private ledger, attributed to the kept contact,
    /// and how many ledgers could not be read.
    fn gifts(&self, merges: &Merges) -> Result<(Vec<Gift>, i64)> {
        let mut gifts = Vec::new();
        let mut unreadable = 0;
        crate::store::scan::scan_docs(
            self.conn,
            "SELECT doc_id FROM docs WHERE kind = 'contact_private'",
            |id, doc| model::hydrate::<LedgerGifts>(id, doc).ok(),
            |chunk| {
                for (id, ledger) in chunk {
                    let Some(ledger) = ledger else {
                        unreadable += 1;
                        continue;
                    };
                    // The ledger `p_X` belongs to the contact `c_X`.
                    let contact = format!(
                        "{}{}",
                        DocKind::Contact.id_prefix(),
                        id.get(DocKind::ContactPrivate.id_prefix().len()..)
                            .unwrap_or_default()
                    );
                    let donor = merges.kept(&contact).to_owned();
                    gifts.extend(ledger.donations.into_iter().map(|g| Gift {
                        donor: donor.clone(),
                        date: g.date,
                        amount_minor: g.amount_minor,
                        currency: g.currency,
                    }));
                }
                Ok::<_, Error>(())
            },
        )?;
        Ok((gifts, unreadable))
    }
}

/// The fields of a private ledger the donor report reads.
#[derive(Hydrate)]
struct LedgerGifts {
    donations: Vec<GiftRow>,
}

/// The fields of a donation the donor report reads.
#[derive(Hydrate)]
struct GiftRow {
    amount_minor: i64,
    currency: String,
    date: Millis,
}

/// A gift, attributed to the contact that counts as its donor.
struct Gift {
    donor: String,
    date: Millis,
    amount_minor: i64,
    currency: String,
}

/// Adds an amount to a total per currency. Merged records are not
/// validated: a total saturates rather than overflow.
fn add_money(totals: &mut BTreeMap<String, i64>, currency: &str, amount_minor: i64) {
    match totals.get_mut(currency) {
        Some(total) => *total = total.saturating_add(amount_minor),
        None => {
            totals.insert(currency.to_owned(), amount_minor);
        }
    }
}

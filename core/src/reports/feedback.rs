//! Feedback response times against the first-response target.

use super::*;

impl Reports<'_> {
    /// Feedback cases received in `[from, to)`: how many in each workflow
    /// status, the median and 90th percentile of the time to the first
    /// response, how many met the 24-hour target
    /// ([`FIRST_RESPONSE_TARGET`]) and how many missed it, and the list of
    /// cases still waiting for a first response past the target at `now`
    /// (what [`crate::FeedbackCase::is_overdue`] says of an unanswered case).
    pub fn feedback(
        &self,
        from: Option<Millis>,
        to: Option<Millis>,
        now: Millis,
    ) -> Result<FeedbackReport> {
        check_range(from, to)?;
        let merges = self.merges()?;
        let statuses = ["received", "assigned", "responded", "resolved"];
        let mut by_status = [0i64; 4];
        let mut times = Vec::new();
        let mut report = FeedbackReport {
            cases: 0,
            by_status: Vec::new(),
            target: FIRST_RESPONSE_TARGET,
            answered: 0,
            median_first_response: None,
            p90_first_response: None,
            within_target: 0,
            answered_late: 0,
            waiting_overdue: 0,
            waiting_in_time: 0,
            resolved_without_response: 0,
            overdue: Vec::new(),
        };
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, contact_id, status, channel, category, received_at, first_response_at,
                        resolved_at, assigned_to
                 FROM feedback
                 WHERE (?1 IS NULL OR received_at >= ?1) AND (?2 IS NULL OR received_at < ?2)
                 ORDER BY received_at, id",
            )?;
            let mut rows = stmt.query(params![from, to])?;
            while let Some(r) = rows.next()? {
                let status: String = r.get(2)?;
                let received_at: Millis = r.get(5)?;
                let first_response_at: Option<Millis> = r.get(6)?;
                let resolved_at: Option<Millis> = r.get(7)?;
                report.cases += 1;
                if let Some(at) = statuses.iter().position(|s| *s == status) {
                    by_status[at] += 1;
                }
                let due_at = received_at.saturating_add(FIRST_RESPONSE_TARGET);
                match (first_response_at, resolved_at) {
                    (Some(first), _) => {
                        report.answered += 1;
                        // Clocks disagree at times: never a negative wait.
                        times.push(first.saturating_sub(received_at).max(0));
                        if first <= due_at {
                            report.within_target += 1;
                        } else {
                            report.answered_late += 1;
                        }
                    }
                    (None, Some(_)) => report.resolved_without_response += 1,
                    (None, None) if now > due_at => {
                        report.waiting_overdue += 1;
                        report.overdue.push(OverdueCase {
                            id: r.get(0)?,
                            contact_id: r.get(1)?,
                            contact_name: None,
                            channel: r.get(3)?,
                            category: r.get(4)?,
                            status,
                            assigned_to: r.get(8)?,
                            received_at,
                            due_at,
                            age: now.saturating_sub(received_at),
                            overdue_by: now.saturating_sub(due_at),
                        });
                    }
                    (None, None) => report.waiting_in_time += 1,
                }
            }
        }
        report.by_status = statuses
            .iter()
            .zip(by_status)
            .map(|(status, cases)| StatusCount {
                status: (*status).to_owned(),
                cases,
            })
            .collect();
        times.sort_unstable();
        report.median_first_response = median(&times);
        report.p90_first_response = nearest_rank(&times, 90);
        let names = self.names(
            report
                .overdue
                .iter()
                .filter_map(|c| c.contact_id.as_deref())
                .map(|c| merges.kept(c)),
        )?;
        for case in &mut report.overdue {
            case.contact_name = case
                .contact_id
                .as_deref()
                .and_then(|c| names.get(merges.kept(c)))
                .map(|n| n.0.clone());
        }
        Ok(report)
    }
}

//! Feedback cases: opening, listing, assigning, responding and resolving.

use super::*;
use crate::model::FeedbackStatus;

/// A feedback case as a list shows it (from the index, no document read).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FeedbackLine {
    /// The case (`f_…`).
    pub id: String,
    /// Who gave it, if known.
    pub contact_id: Option<String>,
    /// Where it stands.
    pub status: FeedbackStatus,
    /// How it came (`in_person`, `phone`…).
    pub channel: String,
    /// What it is about (`complaint`, `praise`…).
    pub category: String,
    /// When it was received.
    pub received_at: Millis,
    /// When the person first had an answer.
    pub first_response_at: Option<Millis>,
    /// When it was closed.
    pub resolved_at: Option<Millis>,
    /// Who must answer it.
    pub assigned_to: Option<String>,
}

impl Store {
    /// Opens a feedback case and returns its id.
    pub fn create_feedback(&mut self, new: &NewFeedback, now: Millis) -> Result<String> {
        if let Some(contact) = &new.contact_id {
            self.require(DocKind::Contact, contact)?;
        }
        self.create_record(DocKind::Feedback, now, |id, by| {
            FeedbackCase::new(id, new, by, now)
        })
    }

    /// The feedback case with this id.
    pub fn feedback(&mut self, id: &str) -> Result<FeedbackCase> {
        self.read_record(DocKind::Feedback, id)
    }

    /// Feedback cases, newest first, optionally only those in one status:
    /// `limit` from `offset`.
    pub fn list_feedback(
        &self,
        status: Option<FeedbackStatus>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<FeedbackLine>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, contact_id, status, channel, category, received_at, first_response_at,
                    resolved_at, assigned_to
             FROM feedback WHERE ?1 IS NULL OR status = ?1
             ORDER BY received_at DESC, id LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt
            .query_map(
                params![
                    status.map(FeedbackStatus::as_str),
                    limit as i64,
                    offset as i64
                ],
                |r| {
                    let status: String = r.get(2)?;
                    Ok(FeedbackLine {
                        id: r.get(0)?,
                        contact_id: r.get(1)?,
                        status: FeedbackStatus::parse(&status).unwrap_or(FeedbackStatus::Received),
                        channel: r.get(3)?,
                        category: r.get(4)?,
                        received_at: r.get(5)?,
                        first_response_at: r.get(6)?,
                        resolved_at: r.get(7)?,
                        assigned_to: r.get(8)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Assigns a case to someone.
    pub fn assign_feedback(&mut self, id: &str, assignee: &str, now: Millis) -> Result<()> {
        let assignee = crate::validate::name("assigned_to", assignee)?;
        self.edit_feedback(id, now, |f| {
            f.assigned_to = Some(assignee);
            Ok(())
        })
    }

    /// Records an answer given to the person.
    pub fn respond_feedback(&mut self, id: &str, text: &str, now: Millis) -> Result<()> {
        let by = self.device_id.clone();
        self.edit_feedback(id, now, |f| {
            f.responses.push(FeedbackResponse {
                at: now,
                by,
                text: text.to_owned(),
            });
            Ok(())
        })
    }

    /// Closes a case, with the person's satisfaction (1–5) if given.
    pub fn resolve_feedback(
        &mut self,
        id: &str,
        satisfaction: Option<i64>,
        now: Millis,
    ) -> Result<()> {
        self.edit_feedback(id, now, |f| {
            f.resolved_at.get_or_insert(now);
            if satisfaction.is_some() {
                f.satisfaction = satisfaction;
            }
            Ok(())
        })
    }

    fn edit_feedback(
        &mut self,
        id: &str,
        now: Millis,
        edit: impl FnOnce(&mut FeedbackCase) -> Result<()>,
    ) -> Result<()> {
        model::check_id(DocKind::Feedback, id)?;
        self.edit_record(id, DocKind::Feedback, now, |f: &mut FeedbackCase| {
            edit(f)?;
            f.normalise()
        })
    }
}

//! Feedback cases: opening, assigning, responding and resolving.

use super::*;

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

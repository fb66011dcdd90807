//! A feedback or complaint case, followed from receipt to resolution.
//!
//! The workflow is received → assigned → responded → resolved. The status is
//! not stored: it is read from the facts recorded (an assignee, responses, a
//! resolution), so that an assignment on one device and a response on
//! another merge into "responded" rather than into two competing statuses.
//! Likewise `first_response_at` is the earliest response, whichever device
//! recorded it.

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

use super::Millis;
use crate::error::{Error, Result};
use crate::validate;

/// The first response is due within this many milliseconds of receipt (24 h).
pub const FIRST_RESPONSE_TARGET: Millis = 24 * 60 * 60 * 1000;

/// A feedback case, as stored in its Automerge document.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate)]
pub struct FeedbackCase {
    /// The document id (`f_…`).
    pub id: String,
    /// Who it is from, if known (`c_…`).
    pub contact_id: Option<String>,
    /// How it arrived (`in_person`, `phone`, `email`, `sms`, `web`, `letter`, `other`).
    pub channel: String,
    /// Kind of feedback (`complaint`, `suggestion`, `praise`, `question`, `other`).
    pub category: String,
    /// What the person said.
    pub text: String,
    /// When it was received.
    pub received_at: Millis,
    /// Who took it.
    pub received_by: String,
    /// Who must answer it.
    pub assigned_to: Option<String>,
    /// Answers given, in the order recorded.
    pub responses: Vec<FeedbackResponse>,
    /// When it was resolved.
    pub resolved_at: Option<Millis>,
    /// Satisfaction given by the person, 1 (poor) to 5 (excellent).
    pub satisfaction: Option<i64>,
}

/// One answer given to the person.
#[derive(Debug, Clone, PartialEq, Reconcile, Hydrate, Serialize, Deserialize)]
pub struct FeedbackResponse {
    /// When it was given.
    pub at: Millis,
    /// Who gave it.
    pub by: String,
    /// What was said.
    pub text: String,
}

/// Where a case stands in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum FeedbackStatus {
    /// Taken, nobody assigned yet.
    Received,
    /// Someone must answer it.
    Assigned,
    /// The person has had an answer.
    Responded,
    /// Closed.
    Resolved,
}

impl FeedbackStatus {
    /// Parses the name given by [`FeedbackStatus::as_str`].
    pub fn parse(s: &str) -> Option<FeedbackStatus> {
        [
            FeedbackStatus::Received,
            FeedbackStatus::Assigned,
            FeedbackStatus::Responded,
            FeedbackStatus::Resolved,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// The name used in lists and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackStatus::Received => "received",
            FeedbackStatus::Assigned => "assigned",
            FeedbackStatus::Responded => "responded",
            FeedbackStatus::Resolved => "resolved",
        }
    }
}

/// Channels accepted.
pub const CHANNELS: [&str; 7] = [
    "in_person",
    "phone",
    "email",
    "sms",
    "web",
    "letter",
    "other",
];
/// Categories accepted.
pub const CATEGORIES: [&str; 5] = ["complaint", "suggestion", "praise", "question", "other"];

/// What a person types to open a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NewFeedback {
    /// Who it is from, if known.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub contact_id: Option<String>,
    /// How it arrived.
    pub channel: String,
    /// Kind of feedback.
    pub category: String,
    /// What the person said.
    pub text: String,
}

impl FeedbackCase {
    /// A case built from what was typed, validated.
    pub fn new(id: String, new: &NewFeedback, by: &str, now: Millis) -> Result<FeedbackCase> {
        let mut case = FeedbackCase {
            id,
            contact_id: new.contact_id.clone(),
            channel: new.channel.clone(),
            category: new.category.clone(),
            text: new.text.clone(),
            received_at: now,
            received_by: by.to_owned(),
            assigned_to: None,
            responses: Vec::new(),
            resolved_at: None,
            satisfaction: None,
        };
        case.normalise()?;
        Ok(case)
    }

    /// Checks every field. Called before every write.
    pub fn normalise(&mut self) -> Result<()> {
        one_of("channel", &self.channel, &CHANNELS)?;
        one_of("category", &self.category, &CATEGORIES)?;
        validate::long_text("text", &self.text)?;
        if self.text.trim().is_empty() {
            return Err(Error::invalid("text", "must say what the feedback is"));
        }
        for r in &self.responses {
            validate::long_text("response", &r.text)?;
        }
        if self.satisfaction.is_some_and(|s| !(1..=5).contains(&s)) {
            return Err(Error::invalid("satisfaction", "must be from 1 to 5"));
        }
        Ok(())
    }

    /// The earliest response, whichever device recorded it.
    pub fn first_response_at(&self) -> Option<Millis> {
        self.responses.iter().map(|r| r.at).min()
    }

    /// Where the case stands, from the facts recorded.
    pub fn status(&self) -> FeedbackStatus {
        if self.resolved_at.is_some() {
            FeedbackStatus::Resolved
        } else if !self.responses.is_empty() {
            FeedbackStatus::Responded
        } else if self.assigned_to.is_some() {
            FeedbackStatus::Assigned
        } else {
            FeedbackStatus::Received
        }
    }

    /// Whether the first response came (or is still due) later than 24 h
    /// after receipt, as of `now`.
    pub fn is_overdue(&self, now: Millis) -> bool {
        let due = self.received_at.saturating_add(FIRST_RESPONSE_TARGET);
        match self.first_response_at() {
            Some(first) => first > due,
            None => self.resolved_at.is_none() && now > due,
        }
    }
}

fn one_of(field: &'static str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{value:?} is not one of {}", allowed.join(", ")),
        ))
    }
}

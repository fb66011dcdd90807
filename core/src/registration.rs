//! What a person types on an event's public registration page, and the
//! rules it must meet before anything is written ([`PageForm::check`]).
//! The relay renders and reads the form; the store writes what passed
//! ([`crate::Store::register_from_page`]).

use crate::duplicates::normalise_phone;
use crate::model::Publication;
use crate::validate;

/// Who made what a public page wrote: the `created_by` of a contact it
/// created and the `registered_by` of its sign-ups, so that reports and
/// the desks' reconciliation report can tell registrations made online
/// from the desks' (`muster report new-contacts` lists it as a source).
pub const PAGE_SOURCE: &str = "web form";

/// The consent method recorded for a contact a page created.
pub const PAGE_CONSENT_METHOD: &str = "web form";

/// The channels a page asks consent for, each unticked until the person
/// ticks it.
pub const CONSENT_CHANNELS: [&str; 4] = ["email", "sms", "phone", "post"];

/// A page's form as submitted: every field as typed (empty when left
/// blank or not asked), and the consent channels ticked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageForm {
    /// Full name (always asked).
    pub name: String,
    /// Email address.
    pub email: String,
    /// Phone number.
    pub phone: String,
    /// Preferred language.
    pub language: String,
    /// Channels ticked, of [`CONSENT_CHANNELS`].
    pub consent: Vec<String>,
}

/// One thing wrong with a submitted form: the field it concerns (a name of
/// [`PageForm`]'s fields) and what to do, in words for the person at the
/// page, shown next to the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormProblem {
    /// `name`, `email`, `phone`, `language` or `consent`.
    pub field: &'static str,
    /// What is wrong, and how to put it right.
    pub message: String,
}

/// A form that passed [`PageForm::check`]: values in canonical form, only
/// the fields the page asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedForm {
    /// The name, as validated.
    pub name: String,
    /// The email address, if given.
    pub email: Option<String>,
    /// The phone number in E.164 when it reads as one, if given.
    pub phone: Option<String>,
    /// The preferred language, if given.
    pub language: Option<String>,
    /// The consent channels ticked, in [`CONSENT_CHANNELS`]' order.
    pub consent: Vec<String>,
}

impl PageForm {
    /// Checks the form against what `page` asks, reading phone numbers as
    /// numbers of `region`: every problem at once (so each can be shown
    /// next to its field), or the form in canonical form. Fields the page
    /// does not ask are left out, whatever was sent.
    pub fn check(
        &self,
        page: &Publication,
        region: &str,
    ) -> std::result::Result<CheckedForm, Vec<FormProblem>> {
        let mut problems = Vec::new();
        // A value that failed its check: `None`, and the problem noted.
        fn kept<T>(
            problems: &mut Vec<FormProblem>,
            field: &'static str,
            checked: crate::Result<T>,
        ) -> Option<T> {
            match checked {
                Ok(v) => Some(v),
                Err(e) => {
                    let message = match e {
                        crate::Error::Invalid { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    problems.push(FormProblem { field, message });
                    None
                }
            }
        }
        let given = |field: &str, value: &str| -> Option<String> {
            let value = value.trim();
            (page.asks_for(field) && !value.is_empty()).then(|| value.to_owned())
        };
        let name = match self.name.trim() {
            "" => {
                problems.push(FormProblem {
                    field: "name",
                    message: "Please give your name.".into(),
                });
                None
            }
            typed => kept(&mut problems, "name", validate::name("name", typed)),
        };
        let email = given("email", &self.email)
            .and_then(|e| kept(&mut problems, "email", validate::email(&e)));
        let phone = given("phone", &self.phone).and_then(|p| {
            let checked = validate::phone(&p).map(|p| normalise_phone(&p, region).unwrap_or(p));
            kept(&mut problems, "phone", checked)
        });
        let language = given("language", &self.language).and_then(|l| {
            kept(
                &mut problems,
                "language",
                validate::short_text("language", &l),
            )
        });
        let mut consent = Vec::new();
        if page.asks_for("consent") {
            for ticked in &self.consent {
                if !CONSENT_CHANNELS.contains(&ticked.as_str()) {
                    problems.push(FormProblem {
                        field: "consent",
                        message: format!("{ticked:?} is not a channel"),
                    });
                }
            }
            consent = CONSENT_CHANNELS
                .iter()
                .filter(|c| self.consent.iter().any(|t| t == *c))
                .map(|c| (*c).to_owned())
                .collect();
        }
        let reachable = page.asks_for("email") || page.asks_for("phone");
        if reachable
            && given("email", &self.email).is_none()
            && given("phone", &self.phone).is_none()
        {
            let field = if page.asks_for("email") {
                "email"
            } else {
                "phone"
            };
            problems.push(FormProblem {
                field,
                message: "Please give an email address or a phone number, so that we can tell you if anything changes.".into(),
            });
        }
        match name {
            Some(name) if problems.is_empty() => Ok(CheckedForm {
                name,
                email,
                phone,
                language,
                consent,
            }),
            _ => Err(problems),
        }
    }
}

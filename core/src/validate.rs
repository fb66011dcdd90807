//! Rules for values typed by people: what is accepted, and the size limits
//! that keep one record from swallowing a phone's storage or a relay's frame.
//!
//! Every check returns [`Error::Invalid`] naming the field and the reason, so
//! that an app can put the message next to the right input.

use crate::error::{Error, Result};

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest short text field (title, place, city, label…), in characters.
pub const MAX_SHORT_CHARS: usize = 1_000;
/// Longest long text (notes, feedback text, a response), in bytes.
pub const MAX_TEXT_BYTES: usize = 100_000;
/// Longest email address, in bytes (RFC 5321).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Most entries in one set or map field (tags, custom fields, phones…).
pub const MAX_ENTRIES: usize = 100;
/// Longest tag, role, key of a custom field, in characters.
pub const MAX_KEY_CHARS: usize = 64;

/// A name: not empty once trimmed, and not too long. Returns it trimmed.
pub fn name(field: &'static str, value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(
            field,
            format!("is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(trimmed.to_owned())
}

/// A short free-text field (may be empty). Returns it trimmed.
pub fn short_text(field: &'static str, value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.chars().count() > MAX_SHORT_CHARS {
        return Err(Error::invalid(
            field,
            format!("is longer than {MAX_SHORT_CHARS} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A long text (notes and the like), limited in bytes.
pub fn long_text(field: &'static str, value: &str) -> Result<()> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(Error::invalid(
            field,
            format!("is larger than {MAX_TEXT_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A key of a set or map field: a tag, a role, a custom field's name.
pub fn key(field: &'static str, value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid(field, "an entry must not be empty"));
    }
    if trimmed.chars().count() > MAX_KEY_CHARS {
        return Err(Error::invalid(
            field,
            format!("entry {trimmed:?} is longer than {MAX_KEY_CHARS} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// The number of entries of a list, set or map field.
pub fn entries(field: &'static str, count: usize) -> Result<()> {
    if count > MAX_ENTRIES {
        return Err(Error::invalid(
            field,
            format!("has {count} entries, more than the {MAX_ENTRIES} allowed"),
        ));
    }
    Ok(())
}

/// An email address: one `@`, a non-empty local part, a domain with a dot,
/// no spaces. Returns it trimmed, with the domain lower-cased.
pub fn email(value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.len() > MAX_EMAIL_BYTES {
        return Err(Error::invalid(
            "email",
            format!("is longer than {MAX_EMAIL_BYTES} characters"),
        ));
    }
    let bad = |why: &str| Error::invalid_value("email", trimmed, format!("{trimmed:?} {why}"));
    let (local, domain) = trimmed.split_once('@').ok_or_else(|| bad("has no @"))?;
    if local.is_empty() {
        return Err(bad("has nothing before the @"));
    }
    if domain.contains('@') {
        return Err(bad("has more than one @"));
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains spaces"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Err(bad("needs a domain such as example.org after the @"));
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// A phone number as people type it: digits with optional spaces, dots,
/// dashes and parentheses, and an optional leading `+`; 6 to 15 digits
/// (E.164 allows at most 15). Returns it trimmed, as typed.
pub fn phone(value: &str) -> Result<String> {
    let trimmed = value.trim();
    let bad = |why: String| Error::invalid_value("phone", trimmed, format!("{trimmed:?} {why}"));
    let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if let Some(c) = body
        .chars()
        .find(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')))
    {
        return Err(bad(format!(
            "contains {c:?}; use digits, spaces and dashes"
        )));
    }
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if !(6..=15).contains(&digits) {
        return Err(bad(format!(
            "has {digits} digits; a phone number has 6 to 15"
        )));
    }
    Ok(trimmed.to_owned())
}

/// The digits of a phone number, with its leading `+` if it had one: the
/// form used to search and to compare phone numbers.
pub fn phone_digits(value: &str) -> String {
    let plus = value.trim_start().starts_with('+');
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    if plus { format!("+{digits}") } else { digits }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(" Ana@Example.ORG ").unwrap(), "Ana@example.org");
        for bad in [
            "",
            "ana",
            "@example.org",
            "ana@",
            "ana@example",
            "a b@x.org",
            "a@b@c.org",
            "ana@.org",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(phone(" +44 20 7946-0958 ").unwrap(), "+44 20 7946-0958");
        assert_eq!(phone_digits("+44 (20) 7946-0958"), "+442079460958");
        for bad in [
            "",
            "12345",
            "+1 555 CALL NOW",
            "1234567890123456",
            "++123456",
        ] {
            assert!(phone(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names() {
        assert_eq!(name("name", "  Ana Silva ").unwrap(), "Ana Silva");
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(name("name", "Ana\u{0}").is_err());
    }
}

//! Finding the same person registered twice: normalised keys (a phone in
//! E.164 form, a lower-cased email, a folded name) and a fuzzy name score.
//!
//! These are pure functions; the store uses them to find candidate pairs
//! (`Store::duplicate_candidates`) and to warn at capture time
//! (`Store::possible_duplicates_of`), and imports use them to match rows to
//! existing contacts.

use unicode_normalization::UnicodeNormalization;

/// The region assumed for phone numbers typed without a `+` and country
/// code, unless the store's `phone_region` setting says otherwise.
pub const DEFAULT_PHONE_REGION: &str = "GB";

/// A phone number in E.164 form (`+447700900123`), read as a number of
/// `region` (an ISO 3166 code such as `GB` or `US`) when it has no `+`.
/// The British habit `+44 (0)…` is understood. `None` when it cannot be
/// read as a number of 7 to 15 digits. Numbers in reserved ranges (such as
/// the UK's 07700 900xxx, kept for fiction) are accepted: for matching, the
/// form matters, not whether a carrier assigned the number.
pub fn normalise_phone(raw: &str, region: &str) -> Option<String> {
    let region = region.trim().to_ascii_uppercase().parse().ok()?;
    let cleaned = raw.trim().replace("(0)", "");
    let number = phonenumber::parse(Some(region), &cleaned).ok()?;
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    let digits = e164.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits).then_some(e164)
}

/// What a phone number is compared by: E.164 when it can be read as a
/// number of `region`, else its digits.
pub fn phone_key(phone: &str, region: &str) -> String {
    normalise_phone(phone, region).unwrap_or_else(|| crate::validate::phone_digits(phone))
}

/// An email address as compared: trimmed and lower-cased whole (mail
/// systems treat the local part case-insensitively in practice).
pub fn normalise_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// A name as compared: accents removed, lower-cased, punctuation dropped,
/// runs of spaces collapsed (`"  José  O'Neil"` → `"jose oneil"`).
pub fn fold_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    for c in raw.nfd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        } else if c.is_whitespace() || c == '-' {
            space = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            normalise_phone("07700 900123", "GB").as_deref(),
            Some("+447700900123")
        );
        assert_eq!(
            normalise_phone("+44 (0)7700-900123", "US").as_deref(),
            Some("+447700900123")
        );
        assert_eq!(
            normalise_phone("(415) 555-0132", "us").as_deref(),
            Some("+14155550132")
        );
        assert_eq!(
            normalise_phone("+1-415-555-0132", "GB").as_deref(),
            Some("+14155550132")
        );
        assert_eq!(normalise_phone("12", "GB"), None);
        assert_eq!(normalise_phone("not a phone", "GB"), None);
        assert_eq!(normalise_phone("07700 900123", "not a region"), None);
    }

    #[test]
    fn emails_and_names_fold() {
        assert_eq!(
            normalise_email(" Ana.Silva@Example.ORG "),
            "ana.silva@example.org"
        );
        assert_eq!(fold_name("  José  O'Neil-Smith "), "jose oneil smith");
        assert_eq!(fold_name("ÅSA Øberg"), "asa øberg");
    }
}

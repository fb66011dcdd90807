//! How the reports read as text: percentages, plurals, times, durations,
//! money, clipped names.

use super::*;

pub(super) const MINUTE: i64 = 60_000;

/// A rate for JSON: rounded to 4 decimals.
pub(super) fn rate(r: Option<f64>) -> Option<f64> {
    r.map(|r| (r * 10_000.0).round() / 10_000.0)
}

/// "50%", or "-" when there is nothing to divide by.
pub(super) fn percent0(r: Option<f64>) -> String {
    r.map_or("-".to_owned(), |r| format!("{:.0}%", r * 100.0))
}

/// "50.0%", or "-".
pub(super) fn percent1(r: Option<f64>) -> String {
    r.map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// Says on stderr that `count` records could not be read and were left
/// out of a report.
pub(super) fn warn_unreadable(count: i64, what: &str) {
    if count > 0 {
        eprintln!(
            "muster: {} could not be read (written by a newer Muster, or damaged) and {} not counted; update this app",
            plural(count, what),
            if count == 1 { "is" } else { "are" }
        );
    }
}

/// "1 shift", "2 shifts".
pub(super) fn plural(n: i64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// "2026-03-20 18:00" from an RFC 3339 time.
pub(super) fn minute(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replacen('T', " ", 1)
}

/// Minutes as "12:50" (hours and minutes).
pub(super) fn clock(minutes: i64) -> String {
    format!("{}:{:02}", minutes / 60, minutes % 60)
}

/// Minutes as "45 min", "3 h", "5 h 20 min", "30 h" (under two days),
/// "2 d 3 h".
pub(super) fn duration(minutes: i64) -> String {
    let (h, m) = (minutes / 60, minutes % 60);
    if minutes >= 2 * 1_440 {
        format!("{} d {} h", h / 24, h % 24)
    } else if h == 0 {
        format!("{m} min")
    } else if m == 0 || h >= 24 {
        format!("{h} h")
    } else {
        format!("{h} h {m} min")
    }
}

/// The "from schedule" column: "1 shift, 180 min", or nothing.
pub(super) fn from_schedule(w: &WorkedJson) -> String {
    if w.scheduled_shifts == 0 {
        String::new()
    } else {
        format!(
            "{}, {} min",
            plural(w.scheduled_shifts, "shift"),
            w.scheduled_minutes
        )
    }
}

/// A volunteer's name, or their id when this device does not hold them.
pub(super) fn who(name: &Option<String>, id: &str) -> String {
    name.clone()
        .unwrap_or_else(|| format!("{id} (not on this device)"))
}

/// At most `width` characters, with "…" when cut.
pub(super) fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// "227.00 EUR, 30.00 USD".
pub(super) fn money(amounts: &[AmountJson]) -> String {
    amounts
        .iter()
        .map(|a| format!("{} {}", a.amount, a.currency))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_read_well() {
        assert_eq!(duration(45), "45 min");
        assert_eq!(duration(180), "3 h");
        assert_eq!(duration(200), "3 h 20 min");
        assert_eq!(duration(1_440), "24 h");
        assert_eq!(duration(1_565), "26 h");
        assert_eq!(duration(3_000), "2 d 2 h");
        assert_eq!(clock(770), "12:50");
        assert_eq!(rate(Some(2.0 / 3.0)), Some(0.6667));
        assert_eq!(percent1(Some(0.5)), "50.0%");
        assert_eq!(percent0(None), "-");
        assert_eq!(minute("2026-03-20T18:00:00.000Z"), "2026-03-20 18:00");
        assert_eq!(clip("Annual general meeting", 10), "Annual ge…");
    }
}

//! Calendar periods.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

use super::*;

/// A calendar period, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Period {
    Week,
    Month,
    Quarter,
    Year,
}

impl Period {
    pub(super) fn parse(name: &str) -> Result<Period> {
        match name {
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            "quarter" => Ok(Period::Quarter),
            "year" => Ok(Period::Year),
            other => Err(Error::invalid(
                "period",
                format!("{other:?} is not one of week, month, quarter, year"),
            )),
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }

    /// The number of the period holding `t`: consecutive periods have
    /// consecutive numbers.
    pub(super) fn index(self, t: Millis) -> i64 {
        let date = utc_date(t);
        let (year, month) = (i64::from(date.year()), i64::from(date.month()));
        match self {
            // Week 0 starts on Monday 1969-12-29.
            Period::Week => (t.div_euclid(DAY) + 3).div_euclid(7),
            Period::Month => year * 12 + (month - 1),
            Period::Quarter => year * 4 + (month - 1) / 3,
            Period::Year => year,
        }
    }

    /// When period `index` starts.
    pub(super) fn start(self, index: i64) -> Millis {
        let (year, month) = match self {
            Period::Week => return (index.saturating_mul(7) - 3).saturating_mul(DAY),
            Period::Month => (index.div_euclid(12), index.rem_euclid(12) + 1),
            Period::Quarter => (index.div_euclid(4), index.rem_euclid(4) * 3 + 1),
            Period::Year => (index, 1),
        };
        first_of_month(year, month)
    }

    /// How period `index` is written: `2026-W05`, `2026-03`, `2026-Q1`,
    /// `2026`.
    pub(super) fn label(self, index: i64) -> String {
        match self {
            Period::Week => {
                // An ISO week belongs to the year of its Thursday.
                let week = utc_date(self.start(index)).iso_week_date();
                format!("{}-W{:02}", week.year(), week.week())
            }
            Period::Month => format!(
                "{:04}-{:02}",
                index.div_euclid(12),
                index.rem_euclid(12) + 1
            ),
            Period::Quarter => format!("{}-Q{}", index.div_euclid(4), index.rem_euclid(4) + 1),
            Period::Year => index.to_string(),
        }
    }
}

/// The UTC date of `t`. Times outside jiff's range (years -9999 to 9999,
/// only in a damaged or hostile record) count on its first or last day.
pub(super) fn utc_date(t: Millis) -> Date {
    let t = t.clamp(
        Timestamp::MIN.as_millisecond(),
        Timestamp::MAX.as_millisecond(),
    );
    let at = Timestamp::from_millisecond(t).unwrap_or(Timestamp::UNIX_EPOCH);
    TimeZone::UTC.to_datetime(at).date()
}

/// Midnight UTC on the first of `month` of `year`; past jiff's range,
/// the earliest or latest time there is, so periods stay in order.
fn first_of_month(year: i64, month: i64) -> Millis {
    let date = i16::try_from(year)
        .ok()
        .zip(i8::try_from(month).ok())
        .and_then(|(y, m)| Date::new(y, m, 1).ok());
    let at = date.and_then(|d| {
        TimeZone::UTC
            .to_timestamp(d.to_datetime(Time::midnight()))
            .ok()
    });
    match at {
        Some(at) => at.as_millisecond(),
        None if year < 0 => Millis::MIN,
        None => Millis::MAX,
    }
}

//! Amounts of money as people read them: the one formatter of every
//! amount Muster shows or writes (exports, reports, the dashboard), so
//! that ¥1000 reads "1000" everywhere and never "10.00" in one place.
//!
//! Amounts are kept in a currency's minor unit (cents, pence, yen) as
//! integers; they are written with the currency's own number of decimals
//! (ISO 4217), with integer arithmetic only.

/// Decimals of a currency's minor unit (ISO 4217): two but for these.
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// An amount in minor units as a decimal in the currency's usual digits:
/// `12.50` for 1250 EUR, `1000` for 1000 JPY, `1.500` for 1500 KWD.
pub fn decimal_amount(minor: i64, currency: &str) -> String {
    let digits = minor_digits(currency);
    if digits == 0 {
        return minor.to_string();
    }
    let unit = 10u64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = digits as usize
    )
}

/// An amount with its currency, as a line of text shows it:
/// `12.50 EUR`, `1000 JPY`.
pub fn display_amount(minor: i64, currency: &str) -> String {
    format!("{} {currency}", decimal_amount(minor, currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_use_the_currencys_digits() {
        assert_eq!(decimal_amount(1250, "EUR"), "12.50");
        assert_eq!(decimal_amount(5, "GBP"), "0.05");
        assert_eq!(decimal_amount(1000, "JPY"), "1000");
        assert_eq!(decimal_amount(1500, "KWD"), "1.500");
        assert_eq!(decimal_amount(-250, "USD"), "-2.50");
        assert_eq!(decimal_amount(22_700, "EUR"), "227.00");
        assert_eq!(decimal_amount(5, "EUR"), "0.05");
        assert_eq!(decimal_amount(1_500, "JPY"), "1500");
        assert_eq!(decimal_amount(1_234, "KWD"), "1.234");
        assert_eq!(decimal_amount(12_345, "CLF"), "1.2345");
    }

    #[test]
    fn a_line_of_text_names_the_currency() {
        assert_eq!(display_amount(1250, "EUR"), "12.50 EUR");
        assert_eq!(display_amount(1000, "JPY"), "1000 JPY");
        assert_eq!(display_amount(-5, "GBP"), "-0.05 GBP");
    }
}

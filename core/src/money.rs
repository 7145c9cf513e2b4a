//! Money as integer minor units of an ISO 4217 currency: the one table of minor-unit digits
//! every part of Lifecycle uses, and exact conversions between decimal text and minor units.

/// Minor-unit digits of an ISO 4217 currency code (case-insensitive): 2 unless listed.
pub fn exponent(currency: &str) -> u32 {
    match currency.trim().to_ascii_uppercase().as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Parses a decimal amount exactly (no float arithmetic) into minor units.
pub fn parse_minor(text: &str, exponent: u32) -> Option<i64> {
    let text = text.trim();
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let exp = exponent as usize;
    // Extra digits beyond the minor unit must be zeros (e.g. "10.500" for USD), else refuse.
    if frac.len() > exp && frac[exp..].bytes().any(|b| b != b'0') {
        return None;
    }
    let mut frac_digits: String = frac.chars().take(exp).collect();
    while frac_digits.len() < exp {
        frac_digits.push('0');
    }
    let whole: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let part: i64 = if frac_digits.is_empty() {
        0
    } else {
        frac_digits.parse().ok()?
    };
    let value = whole.checked_mul(10i64.pow(exponent))?.checked_add(part)?;
    Some(if neg { -value } else { value })
}

/// Minor units as major units, for the analytics.
pub fn to_major(minor: i64, exp: u32) -> f64 {
    minor as f64 / 10f64.powi(exp as i32)
}

/// Rounds to the nearest minor unit; non-finite values (bad upstream data) become None.
pub fn to_minor(major: f64, exp: u32) -> Option<i64> {
    let v = (major * 10f64.powi(exp as i32)).round();
    (v.is_finite() && v.abs() < 9.0e15).then_some(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_and_round_trips_by_currency() {
        assert_eq!(exponent("EUR"), 2);
        assert_eq!(exponent("jpy"), 0);
        assert_eq!(exponent("KWD"), 3);
        assert_eq!(parse_minor("12.30", 2), Some(1230));
        assert_eq!(parse_minor("-0.5", 2), Some(-50));
        assert_eq!(parse_minor("1200", 0), Some(1200));
        assert_eq!(parse_minor("10.500", 2), Some(1050));
        assert_eq!(parse_minor("10.505", 2), None, "no silent rounding");
        assert_eq!(parse_minor("1e3", 2), None);
        assert_eq!(parse_minor("", 2), None);
        assert_eq!(to_major(1050, 2), 10.5);
        assert_eq!(to_minor(10.5, 2), Some(1050));
        assert_eq!(to_minor(1234.0, 0), Some(1234));
        assert_eq!(to_minor(f64::NAN, 2), None);
    }
}

//! Converting between the store's integer minor units and the analytics' f64 major units.

/// Minor-unit digits of an ISO 4217 currency (ISO 4217 exponents; 2 unless listed).
pub fn exponent(currency: &str) -> u32 {
    match currency.to_ascii_uppercase().as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

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
    fn round_trips_by_currency() {
        assert_eq!(exponent("EUR"), 2);
        assert_eq!(exponent("jpy"), 0);
        assert_eq!(exponent("KWD"), 3);
        assert_eq!(to_major(1050, 2), 10.5);
        assert_eq!(to_minor(10.5, 2), Some(1050));
        assert_eq!(to_minor(1234.0, 0), Some(1234));
        assert_eq!(to_minor(f64::NAN, 2), None);
    }
}

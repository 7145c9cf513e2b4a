//! Money as integer minor units of an ISO 4217 currency: the one table of minor-unit digits
//! every part of Lifecycle uses, and exact conversions between decimal text and minor units.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 4217 currency code: three ASCII letters, kept upper case. Copy, so an amount can
/// carry its currency without an allocation per order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// `None` unless `code` is three ASCII letters (any case).
    pub fn parse(code: &str) -> Option<Currency> {
        let b = code.trim().as_bytes();
        (b.len() == 3 && b.iter().all(u8::is_ascii_alphabetic))
            .then(|| Currency([b[0], b[1], b[2]].map(|c| c.to_ascii_uppercase())))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII letters")
    }

    /// Minor-unit digits.
    pub fn exponent(self) -> u32 {
        exponent(self.as_str())
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Currency::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a currency code")))
    }
}

/// An amount: integer minor units of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    /// Decimal text in `currency`, exactly (see [`parse_minor`]).
    pub fn parse(text: &str, currency: Currency) -> Option<Money> {
        parse_minor(text, currency.exponent()).map(|minor| Money::new(minor, currency))
    }

    /// Major units, for the analytics.
    pub fn major(self) -> f64 {
        to_major(self.minor, self.currency.exponent())
    }

    /// The nearest amount to `major` units; `None` for non-finite values.
    pub fn from_major(major: f64, currency: Currency) -> Option<Money> {
        to_minor(major, currency.exponent()).map(|minor| Money::new(minor, currency))
    }
}

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
        assert_eq!(parse_minor("12.3", 2), Some(1230));
        assert_eq!(parse_minor("1.234", 3), Some(1234));
        assert_eq!(parse_minor("99999999999999999999", 2), None, "overflow");
        assert_eq!(to_major(1050, 2), 10.5);
        assert_eq!(to_minor(10.5, 2), Some(1050));
        assert_eq!(to_minor(1234.0, 0), Some(1234));
        assert_eq!(to_minor(f64::NAN, 2), None);
    }

    #[test]
    fn an_amount_keeps_its_currency_and_its_digits() {
        let jpy = Currency::parse("jpy").unwrap();
        assert_eq!(jpy.as_str(), "JPY");
        assert_eq!(Money::parse("1200", jpy), Some(Money::new(1200, jpy)));
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::parse("1.5", kwd).unwrap().minor, 1500);
        assert_eq!(
            Money::new(1050, Currency::parse("EUR").unwrap()).major(),
            10.5
        );
        for bad in ["", "EU", "EURO", "E1R", "€€€"] {
            assert_eq!(Currency::parse(bad), None, "{bad}");
        }
        let eur = Currency::parse("EUR").unwrap();
        let json = serde_json::to_string(&Money::new(5, eur)).unwrap();
        assert_eq!(json, r#"{"minor":5,"currency":"EUR"}"#);
        assert_eq!(
            serde_json::from_str::<Money>(&json).unwrap(),
            Money::new(5, eur)
        );
        assert!(serde_json::from_str::<Currency>(r#""12""#).is_err());
    }
}

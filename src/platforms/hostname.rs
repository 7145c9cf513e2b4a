//! Host names as the DNS names they are (RFC 1035, RFC 1123): ASCII letters, digits and
//! hyphens in dot-separated labels of 1 to 63 characters, at most 253 in all, no label starting
//! with a hyphen. Platforms build their own shop-domain rules on top of this one check.

/// Why a text is not a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than 253 characters")]
    TooLong,
    #[error("it has a character a host name cannot have (only a-z, 0-9, `-` and `.`)")]
    BadCharacter,
    #[error("it has an empty label (two dots, or a dot at an end)")]
    EmptyLabel,
    #[error("a label is longer than 63 characters")]
    LabelTooLong,
    #[error("a label starts with `-`")]
    LeadingHyphen,
}

/// The host name in lower case, or why it is not one. Only ASCII letters are lowered, so a
/// Unicode look-alike (the Kelvin sign, a dotless i) stays a bad character.
pub fn hostname(raw: &str) -> Result<String, HostnameError> {
    if raw.is_empty() {
        return Err(HostnameError::Empty);
    }
    if raw.len() > 253 {
        return Err(HostnameError::TooLong);
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(HostnameError::BadCharacter);
    }
    for label in raw.split('.') {
        if label.is_empty() {
            return Err(HostnameError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(HostnameError::LabelTooLong);
        }
        if label.starts_with('-') {
            return Err(HostnameError::LeadingHyphen);
        }
    }
    Ok(raw.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(
            hostname("Shop-1.Example.COM").unwrap(),
            "shop-1.example.com"
        );
        assert_eq!(
            hostname("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        let label = "a".repeat(63);
        assert!(hostname(&format!("{label}.com")).is_ok());
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(long.len(), 253);
        assert!(hostname(&long).is_ok());
        for (bad, why) in [
            ("", HostnameError::Empty),
            (&format!("{long}x") as &str, HostnameError::TooLong),
            (&format!("a{label}.com"), HostnameError::LabelTooLong),
            ("a..com", HostnameError::EmptyLabel),
            ("a.com.", HostnameError::EmptyLabel),
            (".a.com", HostnameError::EmptyLabel),
            ("-a.com", HostnameError::LeadingHyphen),
            ("a_b.com", HostnameError::BadCharacter),
            ("a.com:443", HostnameError::BadCharacter),
            ("a.com/x", HostnameError::BadCharacter),
            ("u@a.com", HostnameError::BadCharacter),
            ("%2e.com", HostnameError::BadCharacter),
            ("bücher.com", HostnameError::BadCharacter),
            ("\u{212A}.com", HostnameError::BadCharacter),
            (" a.com", HostnameError::BadCharacter),
        ] {
            assert_eq!(hostname(bad), Err(why), "{bad:?}");
        }
    }
}

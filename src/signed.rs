//! Signed values for cookies: `{body}.{hex HMAC-SHA256(label ":" body)}`. The label keeps a
//! value signed for one purpose (say, the OAuth state) from being accepted for another.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn mac(secret: &str, label: &str, body: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(label.as_bytes());
    m.update(b":");
    m.update(body.as_bytes());
    m
}

pub fn sign(secret: &str, label: &str, body: &str) -> String {
    format!(
        "{body}.{}",
        hex::encode(mac(secret, label, body).finalize().into_bytes())
    )
}

/// The body of a value signed with any of `secrets` (constant-time comparison).
pub fn verify<'a>(secrets: &[String], label: &str, value: &'a str) -> Option<&'a str> {
    let (body, tag) = value.rsplit_once('.')?;
    let tag = hex::decode(tag).ok()?;
    secrets
        .iter()
        .any(|s| mac(s, label, body).verify_slice(&tag).is_ok())
        .then_some(body)
}

/// Signs `{payload}.{expires}`.
pub fn sign_expiring(secret: &str, label: &str, payload: &str, expires: DateTime<Utc>) -> String {
    sign(secret, label, &format!("{payload}.{}", expires.timestamp()))
}

/// The payload of an expiring signed value that is still valid at `now`.
pub fn verify_expiring(
    secrets: &[String],
    label: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    let body = verify(secrets, label, value)?;
    let (payload, expires) = body.rsplit_once('.')?;
    (expires.parse::<i64>().ok()? >= now.timestamp()).then(|| payload.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn signed_values() {
        let now = Utc::now();
        let secrets = vec!["k".to_string()];
        let v = sign_expiring("k", "session", "a.example.com", now + Duration::seconds(60));
        assert_eq!(
            verify_expiring(&secrets, "session", &v, now).as_deref(),
            Some("a.example.com")
        );
        assert_eq!(
            verify_expiring(&secrets, "oauth-state", &v, now),
            None,
            "label binds purpose"
        );
        assert_eq!(
            verify_expiring(&secrets, "session", &v, now + Duration::seconds(120)),
            None,
            "expired"
        );
        let tampered = v.replacen("a.example", "b.example", 1);
        assert_eq!(verify_expiring(&secrets, "session", &tampered, now), None);
        assert_eq!(
            verify_expiring(&["other".to_string()], "session", &v, now),
            None
        );
    }
}

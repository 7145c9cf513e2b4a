//! Shopify's two signatures: the hex HMAC of a sorted query string (install, OAuth callback)
//! and the base64 HMAC of a webhook's raw body. Comparison is constant-time (`verify_slice`),
//! against the current secret and, during a rotation, the previous one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length")
}

/// The message Shopify signs for a query: every parameter but `hmac` and `signature`, sorted
/// by key, each `key=value` with `%`, `&` and `=` escaped, joined with `&`.
pub fn query_message(params: &[(String, String)]) -> String {
    fn esc(s: &str, key: bool) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '%' => out.push_str("%25"),
                '&' => out.push_str("%26"),
                '=' if key => out.push_str("%3D"),
                c => out.push(c),
            }
        }
        out
    }
    let mut pairs: Vec<String> = params
        .iter()
        .filter(|(k, _)| k != "hmac" && k != "signature")
        .map(|(k, v)| format!("{}={}", esc(k, true), esc(v, false)))
        .collect();
    pairs.sort();
    pairs.join("&")
}

/// Hex HMAC-SHA256 of a query's signing message.
pub fn sign_query(secret: &str, params: &[(String, String)]) -> String {
    let mut m = mac(secret);
    m.update(query_message(params).as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Verifies the `hmac` parameter of a query against any of the secrets.
pub fn verify_query(secrets: &[String], params: &[(String, String)]) -> bool {
    let Some((_, given)) = params.iter().find(|(k, _)| k == "hmac") else {
        return false;
    };
    let Ok(given) = hex::decode(given) else {
        return false;
    };
    let message = query_message(params);
    secrets.iter().any(|s| {
        let mut m = mac(s);
        m.update(message.as_bytes());
        m.verify_slice(&given).is_ok()
    })
}

/// Base64 HMAC-SHA256 of a webhook body.
pub fn sign_body(secret: &str, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    STANDARD.encode(m.finalize().into_bytes())
}

/// Verifies `X-Shopify-Hmac-Sha256` over the raw body against any of the secrets.
pub fn verify_body(secrets: &[String], body: &[u8], header: &str) -> bool {
    let Ok(given) = STANDARD.decode(header.trim()) else {
        return false;
    };
    secrets.iter().any(|s| {
        let mut m = mac(s);
        m.update(body);
        m.verify_slice(&given).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn published_oauth_vector() {
        // shopify.dev's example (reference §1.3), verified there with openssl.
        let params = p(&[
            ("code", "0907a61c0c8d55e99db179b68161bc00"),
            (
                "hmac",
                "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf",
            ),
            ("shop", "some-shop.myshopify.com"),
            ("state", "0.6784241404160823"),
            ("timestamp", "1337178173"),
        ]);
        assert_eq!(
            sign_query("hush", &params),
            "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
        );
        assert!(verify_query(&["hush".into()], &params));
        assert!(!verify_query(&["other".into()], &params));
        let without_state = p(&[
            ("shop", "some-shop.myshopify.com"),
            ("code", "0907a61c0c8d55e99db179b68161bc00"),
            ("timestamp", "1337178173"),
        ]);
        assert_eq!(
            sign_query("hush", &without_state),
            "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"
        );
    }

    #[test]
    fn published_webhook_vectors() {
        assert_eq!(
            sign_body("test_secret_key", br#"{"foo": "bar"}"#),
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
        );
        assert_eq!(
            sign_body("7008c5f4da4718b9b45d26d3fcbbb157", br#"{"foo":"bar"}"#),
            "+R9TwYM4mbLTk3hEAOBkpA7zW2lc9vNFmVKs2u2jtyY="
        );
        let secrets = vec!["new".to_string(), "test_secret_key".to_string()];
        assert!(verify_body(
            &secrets,
            br#"{"foo": "bar"}"#,
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
        ));
        assert!(!verify_body(
            &secrets,
            br#"{"foo":"bar"}"#,
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
        ));
        assert!(!verify_body(&secrets, b"{}", "not base64!"));
    }
}

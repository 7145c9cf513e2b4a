//! Shopify's signatures: the query-string HMAC (install / OAuth callback), the webhook body HMAC
//! and App Bridge session tokens (HS256 JWTs), all keyed with the app's client secret.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
    m.update(message);
    m.finalize().into_bytes().to_vec()
}

/// Form-urlencodes one component the way shopify-api-js does (URLSearchParams, then `+` -> `%20`).
fn encode_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The message Shopify signs for a query: every pair except `hmac` and `signature`, sorted by
/// key, each `key=value` form-encoded, joined with `&`.
pub fn query_signing_message(params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| k != "hmac" && k != "signature")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lowercase hex HMAC-SHA256 of the query message (reference §1.3).
pub fn query_hmac(secret: &str, params: &[(String, String)]) -> String {
    hex::encode(mac(secret, query_signing_message(params).as_bytes()))
}

/// Base64 HMAC-SHA256 over the exact body bytes (`X-Shopify-Hmac-Sha256`).
pub fn webhook_hmac(secret: &str, body: &[u8]) -> String {
    STANDARD.encode(mac(secret, body))
}

/// Shopify's `host` parameter: base64 of the admin host with the padding stripped.
pub fn host_param(shop_name: &str) -> String {
    STANDARD_NO_PAD.encode(format!("admin.shopify.com/store/{shop_name}"))
}

/// App Bridge session token claims (reference §1.6).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    pub dest: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub sid: String,
}

impl SessionClaims {
    /// Claims for a one-minute token for `shop_domain`, as the embedded admin issues them.
    pub fn new(shop_domain: &str, client_id: &str, user_id: &str, now: i64) -> Self {
        SessionClaims {
            iss: format!("https://{shop_domain}/admin"),
            dest: format!("https://{shop_domain}"),
            aud: client_id.to_string(),
            sub: user_id.to_string(),
            exp: now + 60,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: hex::encode(mac(shop_domain, user_id.as_bytes()))[..32].to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid session token: {0}")]
    Invalid(String),
}

pub fn sign_session_token(secret: &str, claims: &SessionClaims) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing of plain claims cannot fail")
}

/// Verifies signature, `exp`/`nbf` (10 s leeway like the official libraries) and `aud`.
pub fn verify_session_token(
    secret: &str,
    client_id: &str,
    token: &str,
) -> Result<SessionClaims, TokenError> {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.leeway = 10;
    v.validate_nbf = true;
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["exp", "nbf", "aud"]);
    jsonwebtoken::decode::<SessionClaims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &v,
    )
    .map(|d| d.claims)
    .map_err(|e| TokenError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn published_oauth_vector() {
        let q = "code=0907a61c0c8d55e99db179b68161bc00&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173";
        assert_eq!(
            query_hmac("hush", &pairs(q)),
            "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
        );
        let q2 = "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com&timestamp=1337178173";
        assert_eq!(
            query_hmac("hush", &pairs(q2)),
            "4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"
        );
    }

    #[test]
    fn spaces_are_percent_20() {
        let m = query_signing_message(&[("a".into(), "x y".into()), ("b".into(), "1&2".into())]);
        assert_eq!(m, "a=x%20y&b=1%262");
    }

    #[test]
    fn published_webhook_vectors() {
        assert_eq!(
            webhook_hmac("test_secret_key", br#"{"foo": "bar"}"#),
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
        );
        assert_eq!(
            webhook_hmac("7008c5f4da4718b9b45d26d3fcbbb157", br#"{"foo":"bar"}"#),
            "+R9TwYM4mbLTk3hEAOBkpA7zW2lc9vNFmVKs2u2jtyY="
        );
    }

    #[test]
    fn session_token_roundtrip_and_rejections() {
        let now = chrono::Utc::now().timestamp();
        let c = SessionClaims::new("demo-1.myshopify.com", "test-client", "42", now);
        let t = sign_session_token("test-secret", &c);
        let back = verify_session_token("test-secret", "test-client", &t).unwrap();
        assert_eq!(back.dest, "https://demo-1.myshopify.com");
        assert!(verify_session_token("other-secret", "test-client", &t).is_err());
        assert!(verify_session_token("test-secret", "other-client", &t).is_err());
        let old = SessionClaims::new("demo-1.myshopify.com", "test-client", "42", now - 600);
        let t_old = sign_session_token("test-secret", &old);
        assert!(verify_session_token("test-secret", "test-client", &t_old).is_err());
    }
}

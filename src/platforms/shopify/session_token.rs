//! App Bridge session tokens: HS256 JWTs signed with the client secret, one minute long. Checked
//! as Shopify's own libraries do: signature (current or previous secret), `exp` and `nbf` with
//! 10 s leeway, `aud` = our client id, and `iss`/`dest` naming the same valid shop.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::{Deserialize, Serialize};

use super::normalize_shop;

pub const LEEWAY_SECS: u64 = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub dest: String,
    pub aud: String,
    #[serde(default)]
    pub sub: Option<String>,
    pub exp: i64,
    pub nbf: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SessionTokenError {
    #[error("session token is invalid: {0}")]
    Invalid(String),
    #[error("session token has expired")]
    Expired,
    #[error("session token is not valid yet")]
    NotYetValid,
    #[error("session token is for another app")]
    WrongAudience,
    #[error("session token does not name a valid shop")]
    BadShop,
}

/// A verified session: the shop it is for, and the token's claims.
#[derive(Debug, Clone)]
pub struct Session {
    pub shop: String,
    pub claims: Claims,
}

pub fn verify(
    token: &str,
    client_id: &str,
    secrets: &[String],
) -> Result<Session, SessionTokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    let mut last = SessionTokenError::Invalid("no secret configured".into());
    for secret in secrets {
        match decode::<Claims>(
            token,
            &DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        ) {
            Ok(data) => return session_of(data.claims),
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind;
                last = match e.kind() {
                    ErrorKind::ExpiredSignature => SessionTokenError::Expired,
                    ErrorKind::ImmatureSignature => SessionTokenError::NotYetValid,
                    ErrorKind::InvalidAudience => SessionTokenError::WrongAudience,
                    // Try the previous secret only for a signature mismatch.
                    ErrorKind::InvalidSignature => {
                        last = SessionTokenError::Invalid("bad signature".into());
                        continue;
                    }
                    other => SessionTokenError::Invalid(format!("{other:?}")),
                };
                return Err(last);
            }
        }
    }
    Err(last)
}

fn session_of(claims: Claims) -> Result<Session, SessionTokenError> {
    let dest_host = claims
        .dest
        .strip_prefix("https://")
        .ok_or(SessionTokenError::BadShop)?;
    let shop = normalize_shop(dest_host).ok_or(SessionTokenError::BadShop)?;
    let iss_host = claims
        .iss
        .strip_prefix("https://")
        .and_then(|s| s.strip_suffix("/admin"))
        .ok_or(SessionTokenError::BadShop)?;
    if normalize_shop(iss_host).as_deref() != Some(shop.as_str()) {
        return Err(SessionTokenError::BadShop);
    }
    Ok(Session { shop, claims })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn token(secret: &str, aud: &str, shop: &str, exp_in: i64, nbf_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: format!("https://{shop}/admin"),
            dest: format!("https://{shop}"),
            aud: aud.into(),
            sub: Some("42".into()),
            exp: now + exp_in,
            nbf: now + nbf_in,
            iat: Some(now),
            jti: Some("00000000-0000-4000-8000-000000000000".into()),
            sid: None,
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn checks_signature_time_audience_and_shop() {
        let secrets = vec!["s1".to_string(), "s0".to_string()];
        let ok = verify(
            &token("s1", "cid", "a.myshopify.com", 60, 0),
            "cid",
            &secrets,
        )
        .unwrap();
        assert_eq!(ok.shop, "a.myshopify.com");
        assert!(
            verify(
                &token("s0", "cid", "a.myshopify.com", 60, 0),
                "cid",
                &secrets
            )
            .is_ok(),
            "previous secret"
        );
        assert!(
            verify(
                &token("s1", "cid", "a.myshopify.com", -5, -60),
                "cid",
                &secrets
            )
            .is_ok(),
            "within leeway"
        );
        assert_eq!(
            verify(
                &token("s1", "cid", "a.myshopify.com", -30, -90),
                "cid",
                &secrets
            )
            .unwrap_err(),
            SessionTokenError::Expired
        );
        assert_eq!(
            verify(
                &token("s1", "cid", "a.myshopify.com", 90, 30),
                "cid",
                &secrets
            )
            .unwrap_err(),
            SessionTokenError::NotYetValid
        );
        assert!(
            verify(
                &token("s1", "cid", "a.myshopify.com", 60, 5),
                "cid",
                &secrets
            )
            .is_ok(),
            "nbf within leeway"
        );
        assert_eq!(
            verify(
                &token("s1", "other", "a.myshopify.com", 60, 0),
                "cid",
                &secrets
            )
            .unwrap_err(),
            SessionTokenError::WrongAudience
        );
        assert!(matches!(
            verify(
                &token("zz", "cid", "a.myshopify.com", 60, 0),
                "cid",
                &secrets
            ),
            Err(SessionTokenError::Invalid(_))
        ));
        assert_eq!(
            verify(&token("s1", "cid", "evil.com", 60, 0), "cid", &secrets).unwrap_err(),
            SessionTokenError::BadShop
        );
        assert!(verify("not.a.jwt", "cid", &secrets).is_err());
    }
}

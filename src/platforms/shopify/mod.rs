//! Shopify: install (OAuth and session tokens), webhooks, the Admin GraphQL client.

pub mod auth;
pub mod client;
pub mod events;
pub mod manifest;
pub mod resources;
pub mod session_token;
pub mod signature;

pub const PLATFORM: &str = "shopify";

/// Validates and normalises a shop domain: `^[a-z0-9][a-z0-9-]*\.myshopify\.com$` after
/// lowercasing. Anything else (another host, a port, a path, userinfo, a leading dash) is refused.
pub fn normalize_shop(raw: &str) -> Option<String> {
    let shop = raw.trim().to_ascii_lowercase();
    let name = shop.strip_suffix(".myshopify.com")?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let ok = first.is_ascii_alphanumeric()
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ok.then_some(shop)
}

/// Where the app reaches a shop: `https://{shop}` on the real platform, `{origin}/{shop}` when
/// an API origin is configured (the sandbox). Only the base URL differs; the requests are the same.
pub fn shop_base_url(origin: Option<&str>, shop: &str) -> String {
    match origin {
        Some(o) => format!("{}/{shop}", o.trim_end_matches('/')),
        None => format!("https://{shop}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_domains() {
        assert_eq!(
            normalize_shop("Demo-1.MyShopify.com").as_deref(),
            Some("demo-1.myshopify.com")
        );
        for bad in [
            "evil.com",
            "x.myshopify.com.evil.com",
            "x.myshopify.com@evil.com",
            "-x.myshopify.com",
            "x.myshopify.com:443",
            "x.myshopify.com/admin",
            ".myshopify.com",
            "x_y.myshopify.com",
            "x.y.myshopify.com",
            "https://x.myshopify.com",
            "",
        ] {
            assert_eq!(normalize_shop(bad), None, "{bad}");
        }
    }
}

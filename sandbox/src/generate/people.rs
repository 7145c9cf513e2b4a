//! Who the customers and guests are: names, email, phone, tags, place and currency.

use chrono::{DateTime, Utc};
use rand::Rng;

use super::model::{CustomerState, GenCustomer};
use super::names::{self, EMAIL_DOMAINS, LOCALES, Locale, MERCHANT_TAGS, Name};
use super::orders::Buyer;

/// A person's name, place, email and presentment currency.
pub(crate) struct Identity {
    pub locale: &'static Locale,
    pub first: Name,
    pub last: Name,
    pub email: String,
    pub currency: String,
}

/// A random identity; `n` makes the email unique and must differ between people of a shop.
pub(crate) fn identity(rng: &mut impl Rng, n: u64, currencies: &Currencies<'_>) -> Identity {
    let locale = names::pick_locale(rng);
    let first = *names::pick(rng, locale.first);
    let last = *names::pick(rng, locale.last);
    let domain = names::pick(rng, EMAIL_DOMAINS);
    Identity {
        locale,
        first,
        last,
        email: names::email(&first, &last, n, domain),
        currency: currencies.pick(rng).to_string(),
    }
}

impl Identity {
    pub fn buyer(&self, customer_id: Option<u64>) -> Buyer<'_> {
        Buyer {
            customer_id,
            email: &self.email,
            currency: &self.currency,
            tax_rate: self.locale.tax_rate,
        }
    }

    /// The customer record of this identity, drawing phone, merchant tags and city.
    pub fn customer(
        self,
        rng: &mut impl Rng,
        id: u64,
        created_at: DateTime<Utc>,
        state: CustomerState,
    ) -> GenCustomer {
        let phone = (rng.random::<f64>() < 0.4).then(|| names::phone(rng, self.locale));
        let tags = MERCHANT_TAGS
            .iter()
            .filter(|(_, share)| rng.random::<f64>() < *share)
            .map(|(tag, _)| tag.to_string())
            .collect();
        GenCustomer {
            id,
            first_name: self.first.0.to_string(),
            last_name: self.last.0.to_string(),
            email: self.email,
            phone,
            created_at,
            updated_at: created_at,
            tags,
            state,
            currency: self.currency,
            country_code: self.locale.country_code.to_string(),
            country: self.locale.country.to_string(),
            city: names::pick(rng, self.locale.cities).to_string(),
        }
    }
}

/// The shop's currencies and how often the second one is used.
pub(crate) struct Currencies<'a> {
    pub shop: &'a str,
    pub second: &'a str,
    pub second_share: f64,
}

impl Currencies<'_> {
    pub fn pick(&self, rng: &mut impl Rng) -> &str {
        if self.second != self.shop && rng.random::<f64>() < self.second_share {
            self.second
        } else {
            self.shop
        }
    }
}

/// The locale of a country code (for tax and cities of live activity); the first as fallback.
pub(crate) fn locale_of(country_code: &str) -> &'static Locale {
    LOCALES
        .iter()
        .find(|l| l.country_code == country_code)
        .unwrap_or(&LOCALES[0])
}

//! Name, place and product pools. Each name carries its own ASCII form, so email local parts are
//! ASCII-folded without a transliteration table ("Zoë Ångström" -> zoe.angstrom).

use rand::Rng;

/// A display name and its ASCII fold for email addresses.
pub(crate) type Name = (&'static str, &'static str);

pub(crate) struct Locale {
    pub country_code: &'static str,
    pub country: &'static str,
    /// Country calling code without "+".
    pub dial: &'static str,
    pub first: &'static [Name],
    pub last: &'static [Name],
    pub cities: &'static [&'static str],
    /// Sales tax / VAT rate applied on top of the subtotal.
    pub tax_rate: f64,
    /// Relative weight among the shop's customers.
    pub weight: u32,
}

pub(crate) const LOCALES: &[Locale] = &[
    Locale {
        country_code: "US",
        country: "United States",
        dial: "1",
        first: &[
            ("James", "james"),
            ("Mary", "mary"),
            ("Olivia", "olivia"),
            ("Liam", "liam"),
            ("Emma", "emma"),
            ("Noah", "noah"),
            ("Ava", "ava"),
            ("Zoë", "zoe"),
            ("Chloé", "chloe"),
            ("Renée", "renee"),
        ],
        last: &[
            ("Smith", "smith"),
            ("Johnson", "johnson"),
            ("Williams", "williams"),
            ("Brown", "brown"),
            ("García", "garcia"),
            ("Miller", "miller"),
            ("O'Connor", "oconnor"),
            ("Nguyễn", "nguyen"),
        ],
        cities: &[
            "New York",
            "Chicago",
            "Austin",
            "Seattle",
            "San José",
            "Boston",
        ],
        tax_rate: 0.07,
        weight: 40,
    },
    Locale {
        country_code: "DE",
        country: "Germany",
        dial: "49",
        first: &[
            ("Jürgen", "juergen"),
            ("Anna", "anna"),
            ("José", "jose"),
            ("Sören", "soeren"),
            ("Lena", "lena"),
            ("Jörg", "joerg"),
        ],
        last: &[
            ("Müller", "mueller"),
            ("Schröder", "schroeder"),
            ("Weiß", "weiss"),
            ("Groß", "gross"),
            ("Becker", "becker"),
            ("Köhler", "koehler"),
        ],
        cities: &["München", "Köln", "Düsseldorf", "Berlin", "Nürnberg"],
        tax_rate: 0.19,
        weight: 12,
    },
    Locale {
        country_code: "SE",
        country: "Sweden",
        dial: "46",
        first: &[
            ("Zoë", "zoe"),
            ("Åsa", "asa"),
            ("Björn", "bjorn"),
            ("Linnéa", "linnea"),
            ("Håkan", "hakan"),
        ],
        last: &[
            ("Ångström", "angstrom"),
            ("Öberg", "oberg"),
            ("Lindqvist", "lindqvist"),
            ("Sjögren", "sjogren"),
        ],
        cities: &["Malmö", "Göteborg", "Stockholm", "Västerås"],
        tax_rate: 0.25,
        weight: 5,
    },
    Locale {
        country_code: "PL",
        country: "Poland",
        dial: "48",
        first: &[
            ("Łukasz", "lukasz"),
            ("Małgorzata", "malgorzata"),
            ("Paweł", "pawel"),
            ("Zofia", "zofia"),
            ("Wojciech", "wojciech"),
        ],
        last: &[
            ("Wiśniewski", "wisniewski"),
            ("Dąbrowska", "dabrowska"),
            ("Zieliński", "zielinski"),
            ("Kowalczyk", "kowalczyk"),
        ],
        cities: &["Kraków", "Łódź", "Gdańsk", "Wrocław", "Poznań"],
        tax_rate: 0.23,
        weight: 6,
    },
    Locale {
        country_code: "FR",
        country: "France",
        dial: "33",
        first: &[
            ("Élodie", "elodie"),
            ("François", "francois"),
            ("Hélène", "helene"),
            ("Jérôme", "jerome"),
            ("Maëlle", "maelle"),
        ],
        last: &[
            ("Lefèvre", "lefevre"),
            ("Dupont", "dupont"),
            ("Bérénger", "berenger"),
            ("Garçon", "garcon"),
        ],
        cities: &["Paris", "Orléans", "Besançon", "Nîmes", "Lyon"],
        tax_rate: 0.2,
        weight: 8,
    },
    Locale {
        country_code: "BR",
        country: "Brazil",
        dial: "55",
        first: &[
            ("João", "joao"),
            ("Conceição", "conceicao"),
            ("Luís", "luis"),
            ("Inês", "ines"),
        ],
        last: &[
            ("Gonçalves", "goncalves"),
            ("Araújo", "araujo"),
            ("Simões", "simoes"),
            ("Silva", "silva"),
        ],
        cities: &["São Paulo", "Brasília", "Belém", "Goiânia"],
        tax_rate: 0.17,
        weight: 6,
    },
    Locale {
        country_code: "CN",
        country: "China",
        dial: "86",
        first: &[
            ("伟", "wei"),
            ("芳", "fang"),
            ("静", "jing"),
            ("强", "qiang"),
            ("敏", "min"),
        ],
        last: &[("李", "li"), ("王", "wang"), ("张", "zhang"), ("刘", "liu")],
        cities: &["北京", "上海", "深圳", "杭州"],
        tax_rate: 0.13,
        weight: 5,
    },
    Locale {
        country_code: "JP",
        country: "Japan",
        dial: "81",
        first: &[("翔太", "shota"), ("さくら", "sakura"), ("健", "ken")],
        last: &[("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi")],
        cities: &["東京", "大阪", "京都"],
        tax_rate: 0.1,
        weight: 4,
    },
    Locale {
        country_code: "GB",
        country: "United Kingdom",
        dial: "44",
        first: &[
            ("Oliver", "oliver"),
            ("Amelia", "amelia"),
            ("Siobhán", "siobhan"),
            ("Eóin", "eoin"),
        ],
        last: &[
            ("Taylor", "taylor"),
            ("Ó Briain", "obriain"),
            ("Davies", "davies"),
            ("Wright", "wright"),
        ],
        cities: &["London", "Manchester", "Leeds", "Bristol"],
        tax_rate: 0.2,
        weight: 10,
    },
    Locale {
        country_code: "TR",
        country: "Türkiye",
        dial: "90",
        first: &[("Ayşe", "ayse"), ("Çağrı", "cagri"), ("Gökhan", "gokhan")],
        last: &[
            ("Yılmaz", "yilmaz"),
            ("Şahin", "sahin"),
            ("Öztürk", "ozturk"),
        ],
        cities: &["İstanbul", "İzmir", "Ankara"],
        tax_rate: 0.2,
        weight: 4,
    },
];

pub(crate) const EMAIL_DOMAINS: &[&str] = &["example.com", "example.org", "example.net"];

/// Merchant tags with the share of customers carrying each.
pub(crate) const MERCHANT_TAGS: &[(&str, f64)] = &[
    ("vip", 0.04),
    ("wholesale", 0.02),
    ("newsletter", 0.15),
    ("instagram", 0.05),
    ("b2b", 0.01),
];

pub(crate) const DISCOUNT_CODES: &[(&str, f64)] = &[
    ("WELCOME10", 0.10),
    ("SPRING15", 0.15),
    ("SUMMER20", 0.20),
    ("VIP25", 0.25),
    ("FRIEND5", 0.05),
];

pub(crate) const CANCEL_REASONS: &[&str] = &["customer", "inventory", "fraud", "declined", "other"];

pub(crate) const REFUND_NOTES: &[&str] = &[
    "Damaged in transit",
    "Wrong size",
    "Customer changed their mind",
    "Late delivery – goodwill",
    "Item not as described",
];

/// Product catalogue; a product's id is `PRODUCT_ID_BASE + index`. Some titles are non-ASCII.
pub(crate) const PRODUCTS: &[&str] = &[
    "Organic Cotton Tee",
    "Merino Wool Beanie",
    "Crème Brûlée Candle",
    "Café Latte Mug",
    "Linen Tote Bag",
    "Matcha Starter Kit – 抹茶",
    "Ceramic Pour-Over",
    "Leather Card Wallet",
    "Piñata Party Pack",
    "Bamboo Toothbrush (4×)",
    "Smørrebrød Cutting Board",
    "Hiking Socks",
    "Naïve Art Print",
    "Espresso Beans 1 kg",
    "Yoga Mat",
    "Dark Chocolate 85 %",
];

/// Base of the catalogue's product ids.
pub const PRODUCT_ID_BASE: u64 = 8_100_000_000_000;

/// Picks a locale by weight.
pub(crate) fn pick_locale(rng: &mut impl Rng) -> &'static Locale {
    let total: u32 = LOCALES.iter().map(|l| l.weight).sum();
    let mut ticket = rng.random_range(0..total);
    for locale in LOCALES {
        if ticket < locale.weight {
            return locale;
        }
        ticket -= locale.weight;
    }
    &LOCALES[0]
}

pub(crate) fn pick<'a, T>(rng: &mut impl Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A unique, ASCII email: `first.last.{n}@example.*`, where `n` is unique within the shop.
pub(crate) fn email(first: &Name, last: &Name, n: u64, domain: &str) -> String {
    format!("{}.{}.{}@{}", first.1, last.1, n, domain)
}

/// An E.164 phone number in the locale's country.
pub(crate) fn phone(rng: &mut impl Rng, locale: &Locale) -> String {
    format!(
        "+{}{}",
        locale.dial,
        rng.random_range(200_000_000u64..1_000_000_000)
    )
}

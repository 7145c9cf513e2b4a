//! A shop's segments: the built-ins with its thresholds, plus its custom rules, validated
//! together once. The [`Evaluator`] then computes each customer's [`Membership`] for a run.

use crate::segments::builtin::{
    BUILTIN_COUNT, BuiltinSegment, BuiltinThresholds, ShopContext, builtin_bits,
};
use crate::segments::facts::CustomerFacts;
use crate::segments::rule::{BoundSegment, RuleError, Segment};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Shopify lets a shop query at most 250 segments; we keep the same ceiling.
pub const MAX_CUSTOM_SEGMENTS: usize = 250;
const MAX_KEY_LEN: usize = 48;

/// A merchant's custom segment as stored in settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomSegmentDef {
    /// Stable key, also the tag slug: lower-case letters, digits and `-`, e.g. `vip-lapsed`.
    pub key: String,
    pub rule: String,
    #[serde(default = "yes")]
    pub publish_as_tag: bool,
}

fn yes() -> bool {
    true
}

/// Everything a shop configures about segments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SegmentSettings {
    pub thresholds: BuiltinThresholds,
    /// Keys of built-in segments that are NOT pushed as tags (all are pushed by default).
    pub unpublished_builtins: Vec<String>,
    pub custom: Vec<CustomSegmentDef>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid threshold: {0}")]
    Threshold(String),
    #[error("unknown built-in segment `{key}`; valid keys: {valid}")]
    UnknownBuiltin { key: String, valid: String },
    #[error(
        "invalid segment key `{0}`: use 1 to 48 lower-case letters, digits or `-`, starting with a letter or digit"
    )]
    InvalidKey(String),
    #[error("segment key `{0}` is already used by another segment or a built-in tag")]
    DuplicateKey(String),
    #[error("too many custom segments: {0} (at most 250)")]
    TooMany(usize),
    #[error("segment `{key}`: {error}")]
    Rule { key: String, error: RuleError },
}

/// Identifies a segment within one catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentId {
    Builtin(BuiltinSegment),
    /// Index into the catalog's custom segments.
    Custom(u16),
}

#[derive(Debug, Clone)]
struct CustomSegment {
    key: String,
    segment: Segment,
    publish: bool,
}

#[derive(Debug, Clone)]
pub struct SegmentCatalog {
    thresholds: BuiltinThresholds,
    builtin_published: u64,
    builtin_slugs: Vec<String>,
    custom: Vec<CustomSegment>,
}

impl SegmentCatalog {
    /// Validates everything the merchant configured; the errors name the offending part.
    pub fn new(settings: &SegmentSettings) -> Result<SegmentCatalog, CatalogError> {
        settings
            .thresholds
            .validate()
            .map_err(CatalogError::Threshold)?;
        let mut builtin_published = u64::MAX >> (64 - BUILTIN_COUNT);
        for key in &settings.unpublished_builtins {
            let s = BuiltinSegment::from_key(key).ok_or_else(|| CatalogError::UnknownBuiltin {
                key: key.clone(),
                valid: BuiltinSegment::all().map(|s| s.key()).join(", "),
            })?;
            builtin_published &= !(1 << s.index());
        }
        if settings.custom.len() > MAX_CUSTOM_SEGMENTS {
            return Err(CatalogError::TooMany(settings.custom.len()));
        }
        let builtin_slugs: Vec<String> = BuiltinSegment::all().iter().map(|s| s.slug()).collect();
        let mut custom: Vec<CustomSegment> = Vec::with_capacity(settings.custom.len());
        for def in &settings.custom {
            if !valid_key(&def.key) {
                return Err(CatalogError::InvalidKey(def.key.clone()));
            }
            let taken = builtin_slugs.contains(&def.key)
                || BuiltinSegment::from_key(&def.key).is_some()
                || custom.iter().any(|c| c.key == def.key);
            if taken {
                return Err(CatalogError::DuplicateKey(def.key.clone()));
            }
            let segment = Segment::compile(&def.rule).map_err(|error| CatalogError::Rule {
                key: def.key.clone(),
                error,
            })?;
            custom.push(CustomSegment {
                key: def.key.clone(),
                segment,
                publish: def.publish_as_tag,
            });
        }
        Ok(SegmentCatalog {
            thresholds: settings.thresholds.clone(),
            builtin_published,
            builtin_slugs,
            custom,
        })
    }

    pub fn thresholds(&self) -> &BuiltinThresholds {
        &self.thresholds
    }

    /// Every segment of the catalog: built-ins first, then custom in settings order.
    pub fn ids(&self) -> impl Iterator<Item = SegmentId> + '_ {
        BuiltinSegment::all()
            .into_iter()
            .map(SegmentId::Builtin)
            .chain((0..self.custom.len()).map(|i| SegmentId::Custom(i as u16)))
    }

    pub fn key(&self, id: SegmentId) -> &str {
        match id {
            SegmentId::Builtin(b) => b.key(),
            SegmentId::Custom(i) => self.custom.get(usize::from(i)).map_or("", |c| &c.key),
        }
    }

    /// The text after the shop's tag prefix.
    pub fn slug(&self, id: SegmentId) -> &str {
        match id {
            SegmentId::Builtin(b) => &self.builtin_slugs[b.index()],
            SegmentId::Custom(i) => self.custom.get(usize::from(i)).map_or("", |c| &c.key),
        }
    }

    pub fn published(&self, id: SegmentId) -> bool {
        match id {
            SegmentId::Builtin(b) => self.builtin_published & (1 << b.index()) != 0,
            SegmentId::Custom(i) => self.custom.get(usize::from(i)).is_some_and(|c| c.publish),
        }
    }

    pub fn id_of(&self, key: &str) -> Option<SegmentId> {
        self.ids().find(|id| self.key(*id) == key)
    }

    pub fn custom_segment(&self, i: u16) -> Option<&Segment> {
        self.custom.get(usize::from(i)).map(|c| &c.segment)
    }

    /// Binds the custom rules to `now` for one run.
    pub fn evaluator(&self, ctx: &ShopContext, now: DateTime<Utc>) -> Evaluator<'_> {
        Evaluator {
            catalog: self,
            ctx: *ctx,
            now,
            bound: self.custom.iter().map(|c| c.segment.at(now)).collect(),
        }
    }
}

fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_KEY_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Computes memberships for one run (one `now`, one shop context).
#[derive(Debug)]
pub struct Evaluator<'c> {
    catalog: &'c SegmentCatalog,
    ctx: ShopContext,
    now: DateTime<Utc>,
    bound: Vec<BoundSegment>,
}

impl<'c> Evaluator<'c> {
    pub fn catalog(&self) -> &'c SegmentCatalog {
        self.catalog
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The segments `facts` belongs to. Allocates only when the shop has more than 64 custom
    /// segments.
    pub fn membership(&self, facts: &CustomerFacts) -> Membership {
        let mut m = Membership {
            builtin: builtin_bits(facts, &self.catalog.thresholds, &self.ctx, self.now),
            custom: 0,
            more: Vec::new(),
        };
        for (i, seg) in self.bound.iter().enumerate() {
            if seg.matches(facts) {
                m.insert_custom(i);
            }
        }
        m
    }

    /// The keys of the segments `facts` belongs to, built-ins first.
    pub fn segment_keys(&self, facts: &CustomerFacts) -> Vec<&'c str> {
        let m = self.membership(facts);
        m.ids().map(|id| self.catalog.key(id)).collect()
    }
}

/// A customer's segments as a bit set: built-ins, the first 64 custom segments, then more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    builtin: u64,
    custom: u64,
    more: Vec<u64>,
}

impl Membership {
    fn insert_custom(&mut self, i: usize) {
        if i < 64 {
            self.custom |= 1 << i;
        } else {
            let w = i / 64 - 1;
            if self.more.len() <= w {
                self.more.resize(w + 1, 0);
            }
            self.more[w] |= 1 << (i % 64);
        }
    }

    pub fn contains(&self, id: SegmentId) -> bool {
        match id {
            SegmentId::Builtin(b) => self.builtin & (1 << b.index()) != 0,
            SegmentId::Custom(i) => {
                let i = usize::from(i);
                if i < 64 {
                    self.custom & (1 << i) != 0
                } else {
                    self.more
                        .get(i / 64 - 1)
                        .is_some_and(|w| w & (1 << (i % 64)) != 0)
                }
            }
        }
    }

    /// Members in catalog order.
    pub fn ids(&self) -> impl Iterator<Item = SegmentId> + '_ {
        bits(self.builtin)
            .map(|i| SegmentId::Builtin(BuiltinSegment::all()[i]))
            .chain(
                std::iter::once(self.custom)
                    .chain(self.more.iter().copied())
                    .enumerate()
                    .flat_map(|(w, word)| {
                        bits(word).map(move |b| SegmentId::Custom((w * 64 + b) as u16))
                    }),
            )
    }

    pub fn is_empty(&self) -> bool {
        self.builtin == 0 && self.custom == 0 && self.more.iter().all(|w| *w == 0)
    }
}

fn bits(mut word: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if word == 0 {
            return None;
        }
        let i = word.trailing_zeros() as usize;
        word &= word - 1;
        Some(i)
    })
}

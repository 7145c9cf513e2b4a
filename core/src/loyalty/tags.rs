//! The tag plan: which `prefix + slug` tags to add to and remove from each customer so the
//! shop shows exactly the customer's published segments.
//!
//! - desired = prefix + slug of every published segment the customer belongs to;
//! - add = desired − last confirmed pushed;
//! - remove = (last confirmed pushed ∪ tags on the customer now) that carry the prefix − desired.
//!
//! Only tags that start with the prefix, exactly and case-sensitively, are ever added or
//! removed: `Lifecycle:vip` or `my-lifecycle:vip` belong to the merchant. Tags are compared
//! trimmed, and a tag that equals a desired tag up to case counts as that tag (Shopify treats
//! tags case-insensitively), so a run never fights the shop over spelling. A tag the merchant
//! removed by hand is not re-added until the customer leaves and re-enters the segment, since
//! planning starts from what was last pushed. After a prefix change, tags under the old prefix
//! are left alone.

use crate::segments::text::eq_ignore_case;
use crate::segments::{Membership, SegmentCatalog, SegmentId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const DEFAULT_TAG_PREFIX: &str = "lifecycle:";
const MAX_PREFIX_LEN: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagPrefixError {
    #[error("the tag prefix must not be empty")]
    Empty,
    #[error("the tag prefix must be at most {MAX_PREFIX_LEN} characters")]
    TooLong,
    #[error("the tag prefix must not contain a comma (platforms split tags on commas)")]
    Comma,
    #[error("the tag prefix must not start or end with whitespace")]
    Whitespace,
}

/// A shop's tag prefix, e.g. `lifecycle:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TagPrefix(String);

impl TagPrefix {
    pub fn new(prefix: &str) -> Result<TagPrefix, TagPrefixError> {
        if prefix.is_empty() {
            return Err(TagPrefixError::Empty);
        }
        if prefix.chars().count() > MAX_PREFIX_LEN {
            return Err(TagPrefixError::TooLong);
        }
        if prefix.contains(',') {
            return Err(TagPrefixError::Comma);
        }
        if prefix.trim() != prefix {
            return Err(TagPrefixError::Whitespace);
        }
        Ok(TagPrefix(prefix.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether Lifecycle manages this tag.
    pub fn owns(&self, tag: &str) -> bool {
        tag.trim().starts_with(self.0.as_str())
    }
}

impl Default for TagPrefix {
    fn default() -> Self {
        TagPrefix(DEFAULT_TAG_PREFIX.to_string())
    }
}

impl TryFrom<String> for TagPrefix {
    type Error = TagPrefixError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TagPrefix::new(&s)
    }
}

impl From<TagPrefix> for String {
    fn from(p: TagPrefix) -> String {
        p.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagAction {
    Add,
    Remove,
}

/// Why a tag is in the plan, for the audit table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagReason {
    pub tag: String,
    pub action: TagAction,
    /// Add: the segment the customer entered. Remove: the segment the customer left, or `None`
    /// for a prefixed tag that no current segment publishes (deleted or unpublished segment).
    pub segment_key: Option<String>,
}

/// The writes for one customer. Never contains a tag without the shop's prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagChange {
    pub customer_id: String,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    pub reasons: Vec<TagReason>,
}

/// What the plan needs to know about one customer's tags.
#[derive(Debug, Clone, Copy)]
pub struct CustomerTags<'a> {
    pub customer_id: &'a str,
    /// Tags on the customer in the shop now (merchant's and ours).
    pub current: &'a [String],
    /// Tags Lifecycle last confirmed as pushed for this customer.
    pub last_pushed: &'a [String],
}

/// Plans tag changes for one shop and run. Tag strings are built once here, so planning a
/// customer whose tags are already right allocates nothing.
#[derive(Debug)]
pub struct TagPlanner<'c> {
    catalog: &'c SegmentCatalog,
    prefix: TagPrefix,
    builtin_tags: Vec<Option<String>>,
    custom_tags: Vec<Option<String>>,
    /// Lower-cased tag → segment, to explain removals.
    by_tag: HashMap<String, SegmentId>,
}

impl<'c> TagPlanner<'c> {
    pub fn new(catalog: &'c SegmentCatalog, prefix: TagPrefix) -> TagPlanner<'c> {
        let mut builtin_tags = Vec::new();
        let mut custom_tags = Vec::new();
        let mut by_tag = HashMap::new();
        for id in catalog.ids() {
            let tag = format!("{}{}", prefix.as_str(), catalog.slug(id));
            by_tag.insert(tag.to_lowercase(), id);
            let published = catalog.published(id).then_some(tag);
            match id {
                SegmentId::Builtin(_) => builtin_tags.push(published),
                SegmentId::Custom(_) => custom_tags.push(published),
            }
        }
        TagPlanner {
            catalog,
            prefix,
            builtin_tags,
            custom_tags,
            by_tag,
        }
    }

    /// The same plan restricted to the segments `keep` accepts: for platforms that hold one
    /// label per customer (a customer group), only the segments that drive it, say the
    /// loyalty tiers, of which a customer is in at most one. Tags of the other segments are
    /// neither added nor kept.
    pub fn only(mut self, keep: impl Fn(SegmentId) -> bool) -> TagPlanner<'c> {
        for id in self.catalog.ids() {
            if keep(id) {
                continue;
            }
            let slot = match id {
                SegmentId::Builtin(b) => self.builtin_tags.get_mut(b.index()),
                SegmentId::Custom(i) => self.custom_tags.get_mut(usize::from(i)),
            };
            if let Some(tag) = slot {
                *tag = None;
            }
        }
        self
    }

    pub fn prefix(&self) -> &TagPrefix {
        &self.prefix
    }

    fn tag_of(&self, id: SegmentId) -> Option<&str> {
        let slot = match id {
            SegmentId::Builtin(b) => self.builtin_tags.get(b.index()),
            SegmentId::Custom(i) => self.custom_tags.get(usize::from(i)),
        };
        slot.and_then(|t| t.as_deref())
    }

    /// The tags the customer should carry, with the segment behind each, in catalog order.
    pub fn desired<'m>(
        &'m self,
        m: &'m Membership,
    ) -> impl Iterator<Item = (&'m str, SegmentId)> + 'm {
        m.ids().filter_map(|id| self.tag_of(id).map(|t| (t, id)))
    }

    /// What to record as "last confirmed pushed" once a change (or no change) is confirmed.
    pub fn desired_tags(&self, m: &Membership) -> Vec<String> {
        self.desired(m).map(|(t, _)| t.to_string()).collect()
    }

    /// `None` when the customer's tags are already right.
    pub fn plan_customer(&self, c: CustomerTags<'_>, m: &Membership) -> Option<TagChange> {
        let mut change: Option<TagChange> = None;
        let mut entry = |tag: &str, action: TagAction, segment: Option<SegmentId>| {
            let ch = change.get_or_insert_with(|| TagChange {
                customer_id: c.customer_id.to_string(),
                add: Vec::new(),
                remove: Vec::new(),
                reasons: Vec::new(),
            });
            let list = match action {
                TagAction::Add => &mut ch.add,
                TagAction::Remove => &mut ch.remove,
            };
            if list.iter().any(|t| t == tag) {
                return;
            }
            list.push(tag.to_string());
            ch.reasons.push(TagReason {
                tag: tag.to_string(),
                action,
                segment_key: segment.map(|id| self.catalog.key(id).to_string()),
            });
        };

        // Collected once: each held tag is checked against it.
        let desired: Vec<(&str, SegmentId)> = self.desired(m).collect();
        for &(tag, id) in &desired {
            if !holds(c.last_pushed.iter().map(|p| p.trim()), tag) {
                entry(tag, TagAction::Add, Some(id));
            }
        }
        for held in c.last_pushed.iter().chain(c.current) {
            let held = held.trim();
            if !self.prefix.owns(held) {
                continue;
            }
            if holds(desired.iter().map(|(t, _)| *t), held) {
                continue;
            }
            let segment = self.by_tag.get(&held.to_lowercase()).copied();
            entry(held, TagAction::Remove, segment);
        }
        change
    }

    /// Plans a whole run; customers whose tags are right produce nothing.
    pub fn plan<'a>(
        &self,
        customers: impl IntoIterator<Item = (CustomerTags<'a>, &'a Membership)>,
    ) -> Vec<TagChange> {
        customers
            .into_iter()
            .filter_map(|(c, m)| self.plan_customer(c, m))
            .collect()
    }
}

/// Whether `tags` holds `tag` up to case. The exact pass first: in a run with no change every
/// lookup hits there, which keeps planning an unchanged customer cheap.
fn holds<'t>(tags: impl Iterator<Item = &'t str> + Clone, tag: &str) -> bool {
    tags.clone().any(|t| t == tag) || tags.into_iter().any(|t| eq_ignore_case(t, tag))
}

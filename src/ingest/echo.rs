//! Recognising the platform's echo of Lifecycle's own writes, so it costs no re-analysis.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use crate::core::loyalty::TagPrefix;
use crate::model::{Customer, DataEvent};
use crate::store::stmt;

/// Customer updates in `events` that change nothing re-scoring reads of a customer (e-mail,
/// sign-up date, and tags other than Lifecycle's own, which the planner works out from what it
/// pushed). Above all this is the platform's echo of our own tag writes: a push to N customers
/// comes back as N `customers/update` webhooks, and re-scoring each would cost N jobs that
/// change nothing. Read before the events are applied, in the same transaction.
pub async fn unchanged_customers(
    db: &impl ConnectionTrait,
    shop_id: i64,
    prefix: &TagPrefix,
    events: &[DataEvent],
) -> Result<HashSet<String>, DbErr> {
    let incoming: HashMap<&str, &Customer> = events
        .iter()
        .filter_map(|e| match e {
            DataEvent::CustomerUpserted(c) => Some((c.platform_id.as_str(), c)),
            _ => None,
        })
        .collect();
    let mut unchanged = HashSet::new();
    let ids: Vec<&str> = incoming.keys().copied().collect();
    for chunk in ids.chunks(500) {
        let list = vec!["?"; chunk.len()].join(", ");
        let mut values: Vec<sea_orm::Value> = vec![shop_id.into()];
        values.extend(chunk.iter().map(|id| sea_orm::Value::from(*id)));
        let rows = db
            .query_all_raw(stmt(
                db.get_database_backend(),
                &format!(
                    "SELECT platform_id, email, tags, platform_created_at FROM customers \
                     WHERE shop_id = ? AND platform_id IN ({list}) \
                     AND deleted_at IS NULL AND redacted_at IS NULL"
                ),
                values,
            ))
            .await?;
        for r in rows {
            let id: String = r.try_get("", "platform_id")?;
            let Some(c) = incoming.get(id.as_str()) else {
                continue;
            };
            let email: Option<String> = r.try_get("", "email")?;
            let created: Option<DateTime<Utc>> = r.try_get("", "platform_created_at")?;
            let tags: Option<String> = r.try_get("", "tags")?;
            let stored_tags: Vec<String> = tags
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let same_tags = match &c.tags {
                // A payload without tags keeps the stored ones.
                None => true,
                Some(new) => merchant_tags(prefix, new) == merchant_tags(prefix, &stored_tags),
            };
            if same_tags && email == c.email && created == c.created_at {
                unchanged.insert(id);
            }
        }
    }
    Ok(unchanged)
}

/// The tags that are not Lifecycle's, normalised as the shop compares them.
fn merchant_tags(prefix: &TagPrefix, tags: &[String]) -> BTreeSet<String> {
    tags.iter()
        .filter(|t| !prefix.owns(t))
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

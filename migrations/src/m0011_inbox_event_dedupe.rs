//! One event, stored once: a platform that delivers an event through two subscriptions sends
//! two webhook ids but one event id, so the inbox also refuses a second row with the same shop,
//! topic and event id. The topic is part of the key because one merchant action may share its
//! event id across topics (an order's create and paid), and those are different events to apply.
//! Rows without an event id never conflict (NULLs are distinct in a unique index on both
//! engines).

use sea_orm_migration::prelude::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Duplicates stored before the index existed would stop it being built; the first copy
        // of each event is the one that was (or will be) applied.
        m.get_connection()
            .execute_unprepared(
                "DELETE FROM webhook_inbox WHERE event_id IS NOT NULL AND id NOT IN (\
                 SELECT MIN(id) FROM webhook_inbox WHERE event_id IS NOT NULL \
                 GROUP BY platform, shop_id, topic, event_id)",
            )
            .await?;
        m.create_index(
            index(
                "inbox_event_dedupe",
                "webhook_inbox",
                &["platform", "shop_id", "topic", "event_id"],
            )
            .unique()
            .take(),
        )
        .await
    }
}

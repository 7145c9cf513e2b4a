//! Indexes that keep per-shop statements from scanning a whole table at real store sizes:
//! an order's refund total is recomputed from its refunds on every order upsert, which without
//! this index scanned every refund of the shop (quadratic in the shop's size); and re-scoring
//! one customer reads their abandoned checkouts, which scanned every checkout of the shop.

use sea_orm_migration::prelude::*;

use crate::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index(
            "refunds_shop_order",
            "refunds",
            &["shop_id", "order_platform_id"],
        ))
        .await?;
        m.create_index(index(
            "checkouts_shop_customer",
            "checkouts",
            &["shop_id", "customer_platform_id"],
        ))
        .await
    }
}

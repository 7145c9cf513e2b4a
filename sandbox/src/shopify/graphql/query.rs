//! The `QueryRoot` of the Admin API.

use super::context::visible;
use super::paging::{self, Args};
use super::types::*;
use crate::shopify::bulk::{BulkOperationNode, BulkOperationType};
use crate::store::model as m;
use crate::store::search::Search;
use crate::store::table::SortKey;
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, Result};

pub struct QueryRoot;

fn customer_matches(c: &m::Customer, s: &Search) -> bool {
    s.email.as_ref().is_none_or(|e| {
        c.email
            .as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(e))
    }) && s
        .tags
        .iter()
        .all(|t| c.tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
}

fn order_matches(o: &m::Order, s: &Search) -> bool {
    s.email.as_ref().is_none_or(|e| {
        o.email
            .as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(e))
    })
}

fn count_matching<T: crate::store::table::Row>(
    table: &crate::store::table::Table<T>,
    query: Option<&str>,
    extra: &dyn Fn(&T, &Search) -> bool,
) -> Result<usize> {
    let s = paging::parse_query(query)?;
    if query.is_none() {
        return Ok(table.len());
    }
    let pred = |row: &T| extra(row, &s);
    let req = crate::store::table::PageRequest {
        sort: SortKey::Id,
        reverse: false,
        after: None,
        before: None,
        first: None,
        last: None,
        filter: s.index,
        predicate: &pred,
    };
    Ok(table.page(&req).rows.len())
}

#[Object]
impl QueryRoot {
    async fn shop(&self) -> ShopNode {
        ShopNode
    }

    #[allow(clippy::too_many_arguments)]
    async fn customers(
        &self,
        c: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(default = false)] reverse: bool,
        #[graphql(default_with = "CustomerSortKeys::Id")] sort_key: CustomerSortKeys,
        query: Option<String>,
    ) -> Result<Connection<String, CustomerNode>> {
        let x = ctx(c);
        let a = Args {
            first,
            after,
            last,
            before,
            reverse,
            query,
            bulk_page: None,
        };
        let data = x.shop.data.read();
        paging::root(c, a, |a| {
            paging::connection(
                "customers",
                &data.customers,
                a,
                sort_key.key(),
                x,
                &customer_matches,
                |c| CustomerNode(c.clone()),
            )
        })
    }

    async fn customers_count(
        &self,
        c: &Context<'_>,
        query: Option<String>,
        #[graphql(default = 10000)] limit: Option<i32>,
    ) -> Result<Count> {
        let data = ctx(c).shop.data.read();
        let n = count_matching(&data.customers, query.as_deref(), &customer_matches)?;
        Ok(Count::capped(n, limit))
    }

    async fn customer(&self, c: &Context<'_>, id: ID) -> Result<Option<CustomerNode>> {
        let id = parse_gid(&id, "Customer")?;
        let data = ctx(c).shop.data.read();
        Ok(data.customers.get(id).map(|c| CustomerNode(c.clone())))
    }

    #[allow(clippy::too_many_arguments)]
    async fn orders(
        &self,
        c: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(default = false)] reverse: bool,
        #[graphql(default_with = "OrderSortKeys::Id")] sort_key: OrderSortKeys,
        query: Option<String>,
    ) -> Result<Connection<String, OrderNode>> {
        let x = ctx(c);
        let a = Args {
            first,
            after,
            last,
            before,
            reverse,
            query,
            bulk_page: None,
        };
        let from = x.orders_from();
        let data = x.shop.data.read();
        paging::root(c, a, |a| {
            paging::connection(
                "orders",
                &data.orders,
                a,
                sort_key.key(),
                x,
                &|o: &m::Order, s| visible(from, o) && order_matches(o, s),
                |o| OrderNode(o.clone()),
            )
        })
    }

    async fn orders_count(
        &self,
        c: &Context<'_>,
        query: Option<String>,
        #[graphql(default = 10000)] limit: Option<i32>,
    ) -> Result<Count> {
        let x = ctx(c);
        let data = x.shop.data.read();
        let n = match x.orders_from() {
            None => count_matching(&data.orders, query.as_deref(), &order_matches)?,
            Some(from) => {
                let s = paging::parse_query(query.as_deref())?;
                data.orders
                    .values()
                    .filter(|o| visible(Some(from), o) && order_matches(o, &s))
                    .count()
            }
        };
        Ok(Count::capped(n, limit))
    }

    async fn order(&self, c: &Context<'_>, id: ID) -> Result<Option<OrderNode>> {
        let id = parse_gid(&id, "Order")?;
        let x = ctx(c);
        let data = x.shop.data.read();
        Ok(data
            .orders
            .get(id)
            .filter(|o| visible(x.orders_from(), o))
            .map(|o| OrderNode(o.clone())))
    }

    #[allow(clippy::too_many_arguments)]
    async fn abandoned_checkouts(
        &self,
        c: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(default = false)] reverse: bool,
        #[graphql(default_with = "AbandonedCheckoutSortKeys::Id")]
        sort_key: AbandonedCheckoutSortKeys,
        query: Option<String>,
    ) -> Result<Connection<String, CheckoutNode>> {
        let x = ctx(c);
        let a = Args {
            first,
            after,
            last,
            before,
            reverse,
            query,
            bulk_page: None,
        };
        let sort = match sort_key {
            AbandonedCheckoutSortKeys::CreatedAt => SortKey::CreatedAt,
            _ => SortKey::Id,
        };
        let data = x.shop.data.read();
        paging::root(c, a, |a| {
            paging::connection(
                "abandonedCheckouts",
                &data.checkouts,
                a,
                sort,
                x,
                &|k: &m::Checkout, s: &Search| {
                    s.email.as_ref().is_none_or(|e| {
                        k.email
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(e))
                    })
                },
                |k| CheckoutNode(k.clone()),
            )
        })
    }

    async fn abandoned_checkouts_count(
        &self,
        c: &Context<'_>,
        query: Option<String>,
        #[graphql(default = 10000)] limit: Option<i32>,
    ) -> Result<Count> {
        let data = ctx(c).shop.data.read();
        let n = count_matching(&data.checkouts, query.as_deref(), &|_, _| true)?;
        Ok(Count::capped(n, limit))
    }

    async fn webhook_subscriptions(
        &self,
        c: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        topics: Option<Vec<WebhookSubscriptionTopic>>,
    ) -> Result<Connection<String, WebhookSubscriptionNode>> {
        let x = ctx(c);
        let a = Args {
            first,
            after,
            last: None,
            before: None,
            reverse: false,
            query: None,
            bulk_page: None,
        };
        let wanted: Option<Vec<String>> =
            topics.map(|t| t.iter().map(|t| t.rest().to_string()).collect());
        paging::root(c, a, |a| {
            let (first, _) = paging::limits("webhookSubscriptions", a, x.bulk)?;
            let start = a
                .after
                .as_deref()
                .map(paging::decode_cursor)
                .transpose()?
                .map(|k| k.1);
            let data = x.shop.data.read();
            let subs: Vec<_> = data
                .webhooks
                .values()
                .filter(|s| start.is_none_or(|st| s.id > st))
                .filter(|s| wanted.as_ref().is_none_or(|w| w.contains(&s.topic)))
                .collect();
            let n = first.unwrap_or(usize::MAX);
            let mut conn = Connection::new(start.is_some(), subs.len() > n);
            conn.edges.extend(subs.into_iter().take(n).map(|s| {
                async_graphql::connection::Edge::new(
                    paging::encode_cursor((0, s.id)),
                    WebhookSubscriptionNode(s.clone()),
                )
            }));
            Ok(conn)
        })
    }

    async fn current_bulk_operation(
        &self,
        c: &Context<'_>,
        #[graphql(name = "type", default_with = "BulkOperationType::Query")]
        kind: BulkOperationType,
    ) -> Option<BulkOperationNode> {
        crate::shopify::shop::ShopifyShop::of(&ctx(c).shop)
            .bulk
            .lock()
            .iter()
            .rev()
            .find(|o| o.kind == kind)
            .cloned()
            .map(BulkOperationNode)
    }

    async fn bulk_operation(&self, c: &Context<'_>, id: ID) -> Result<Option<BulkOperationNode>> {
        let id = parse_gid(&id, "BulkOperation")?;
        Ok(crate::shopify::shop::ShopifyShop::of(&ctx(c).shop)
            .bulk
            .lock()
            .iter()
            .find(|o| o.id == id)
            .cloned()
            .map(BulkOperationNode))
    }
}

//! sea-orm entities, one module per table.

pub mod shop {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "shops")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub platform: String,
        pub domain: String,
        /// The platform's credentials, sealed as one value (`platforms::Credentials`); never
        /// plain. (The older `access_token` and `refresh_token` columns stay empty.)
        pub credentials: Option<String>,
        pub token_expires_at: Option<DateTimeUtc>,
        pub scopes: String,
        pub status: String,
        pub installed_at: Option<DateTimeUtc>,
        pub uninstalled_at: Option<DateTimeUtc>,
        pub settings: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod customer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "customers")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub shop_id: i64,
        pub platform_id: String,
        pub email: Option<String>,
        pub first_name: Option<String>,
        pub last_name: Option<String>,
        /// JSON array of the customer's tags as the platform last reported them.
        pub tags: Option<String>,
        pub state: Option<String>,
        pub platform_created_at: Option<DateTimeUtc>,
        pub platform_updated_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
        pub redacted_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod order {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "orders")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub shop_id: i64,
        pub platform_id: String,
        pub customer_platform_id: Option<String>,
        pub name: Option<String>,
        pub email: Option<String>,
        pub currency: String,
        pub subtotal_minor: i64,
        pub total_minor: i64,
        pub discounts_minor: i64,
        pub refunded_minor: i64,
        /// JSON array of the discount codes used.
        pub discount_codes: String,
        pub financial_status: Option<String>,
        pub cancelled_at: Option<DateTimeUtc>,
        pub platform_created_at: DateTimeUtc,
        pub platform_updated_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod checkout {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "checkouts")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub shop_id: i64,
        pub platform_id: String,
        pub customer_platform_id: Option<String>,
        pub email: Option<String>,
        pub currency: String,
        pub total_minor: i64,
        pub completed_at: Option<DateTimeUtc>,
        pub platform_created_at: DateTimeUtc,
        pub platform_updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod inbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_inbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub platform: String,
        pub shop_id: Option<i64>,
        pub shop_domain: String,
        pub topic: String,
        pub webhook_id: String,
        pub event_id: Option<String>,
        pub api_version: Option<String>,
        pub triggered_at: Option<DateTimeUtc>,
        pub body: Vec<u8>,
        pub state: String,
        pub attempts: i32,
        pub run_at: DateTimeUtc,
        pub locked_by: Option<String>,
        pub lease_until: Option<DateTimeUtc>,
        pub last_error: Option<String>,
        pub finished_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "jobs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub kind: String,
        pub shop_id: Option<i64>,
        pub payload: String,
        pub dedupe_key: Option<String>,
        pub state: String,
        pub attempts: i32,
        pub max_attempts: i32,
        pub run_at: DateTimeUtc,
        pub locked_by: Option<String>,
        pub lease_until: Option<DateTimeUtc>,
        pub last_error: Option<String>,
        pub progress_done: i64,
        pub progress_total: Option<i64>,
        pub finished_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod oauth_nonce {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_nonces")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub nonce: String,
        pub shop_domain: String,
        pub created_at: DateTimeUtc,
        pub used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

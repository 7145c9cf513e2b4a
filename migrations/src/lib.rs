//! Schema migrations. Each migration is a module named after what it adds; the app runs them at
//! start-up (under an advisory lock on PostgreSQL) and through `lifecycle migrate`.

pub use sea_orm_migration::prelude::*;

mod m0001_foundation;
mod m0002_refunds_privacy;
mod m0003_sync;
mod m0004_loyalty;
mod m0005_scale;
mod m0006_job_kinds;
mod m0007_credentials;
mod m0008_model_card;
mod m0009_experiments;
mod m0010_shop_leases;
mod m0011_inbox_event_dedupe;
mod m0012_retention_indexes;
mod m0013_login_links;

pub struct Migrator;

/// An index on `cols` of `table`, created only if missing (shared by the migrations).
pub(crate) fn index(
    name: &'static str,
    table: &'static str,
    cols: &[&'static str],
) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table).if_not_exists();
    for c in cols {
        idx.col(*c);
    }
    idx.take()
}

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_foundation::Migration),
            Box::new(m0002_refunds_privacy::Migration),
            Box::new(m0003_sync::Migration),
            Box::new(m0004_loyalty::Migration),
            Box::new(m0005_scale::Migration),
            Box::new(m0006_job_kinds::Migration),
            Box::new(m0007_credentials::Migration),
            Box::new(m0008_model_card::Migration),
            Box::new(m0009_experiments::Migration),
            Box::new(m0010_shop_leases::Migration),
            Box::new(m0011_inbox_event_dedupe::Migration),
            Box::new(m0012_retention_indexes::Migration),
            Box::new(m0013_login_links::Migration),
        ]
    }
}

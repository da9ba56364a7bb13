//! The engine's schema: plans and their items, jobs with their checkpoint and lease, the
//! effects of applied chunks (what revert undoes), and the `request_log`; then when plan
//! items and job effects expire, and whether they were pruned (`service::retention`); then
//! who made each plan and started each job.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_merge_engine::Migration),
            Box::new(ferry_kit::idempotency::IndexByAge),
            Box::new(m20261205_000001_retention::MIGRATION),
            Box::new(ferry_kit::audit::store::Migration),
            Box::new(m20261206_000001_creators::MIGRATION),
        ]
    }
}

/// A migration of statements only: `up` runs them in order, `down` undoes them.
struct Statements {
    name: &'static str,
    up: &'static [&'static str],
    down: &'static [&'static str],
}

impl MigrationName for Statements {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Statements {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ferry_kit::db::execute_schema(manager.get_connection(), self.up).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        ferry_kit::db::execute_schema(manager.get_connection(), self.down).await
    }
}

mod m20261123_000001_create_merge_engine {
    use super::*;

    pub struct Migration;

    // Named by hand: `DeriveMigrationName` takes the file's name, which every migration
    // in this file shares.
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261123_000001_create_merge_engine"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE merge_plans (
            id TEXT NOT NULL PRIMARY KEY,
            plan_type BIGINT NOT NULL,
            source TEXT NOT NULL,
            recipient TEXT NOT NULL,
            recipient_display_name TEXT NOT NULL,
            strategy BIGINT NOT NULL,
            selection TEXT NOT NULL,
            source_revision BIGINT NOT NULL,
            recipient_revision BIGINT NOT NULL,
            state BIGINT NOT NULL,
            creates BIGINT NOT NULL,
            links BIGINT NOT NULL,
            skips BIGINT NOT NULL,
            conflicts BIGINT NOT NULL,
            missing_dependencies BIGINT NOT NULL,
            source_entries BIGINT NOT NULL,
            job_id TEXT,
            created_at BIGINT NOT NULL
        )",
        "CREATE INDEX merge_plans_created ON merge_plans (created_at, id)",
        "CREATE TABLE plan_items (
            plan_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            kind BIGINT NOT NULL,
            key TEXT NOT NULL,
            outcome BIGINT NOT NULL,
            sharing BIGINT NOT NULL,
            source_entity_id BIGINT NOT NULL,
            recipient_entity_id BIGINT NOT NULL,
            source_hash TEXT NOT NULL,
            recipient_hash TEXT NOT NULL,
            missing_kind BIGINT NOT NULL,
            missing_key TEXT NOT NULL,
            PRIMARY KEY (plan_id, seq)
        )",
        "CREATE TABLE jobs (
            id TEXT NOT NULL PRIMARY KEY,
            kind BIGINT NOT NULL,
            state BIGINT NOT NULL,
            plan_id TEXT,
            source TEXT NOT NULL,
            recipient TEXT NOT NULL,
            params TEXT NOT NULL,
            chunk_size BIGINT NOT NULL,
            cursor_seq BIGINT NOT NULL,
            chunk_no BIGINT NOT NULL,
            done BIGINT NOT NULL,
            total BIGINT NOT NULL,
            phase TEXT NOT NULL,
            result TEXT NOT NULL,
            error TEXT,
            produced TEXT NOT NULL,
            cancel_requested BIGINT NOT NULL,
            lease_owner TEXT,
            lease_until BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            started_at BIGINT,
            ended_at BIGINT,
            updated_at BIGINT NOT NULL,
            reverted_job TEXT,
            reverted_by TEXT,
            claims BIGINT NOT NULL DEFAULT 0
        )",
        "CREATE INDEX jobs_claim ON jobs (state, created_at)",
        "CREATE INDEX jobs_created ON jobs (created_at, id)",
        "CREATE TABLE job_effects (
            job_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            action BIGINT NOT NULL,
            kind BIGINT NOT NULL,
            key TEXT NOT NULL,
            entity_id BIGINT NOT NULL,
            content_hash TEXT NOT NULL,
            PRIMARY KEY (job_id, seq)
        )",
    ];

    const DOWN: &[&str] =
        &["DROP TABLE request_log", "DROP TABLE job_effects", "DROP TABLE jobs", "DROP TABLE plan_items", "DROP TABLE merge_plans"];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await?;
            let backend: DbBackend = manager.get_database_backend();
            manager.get_connection().execute_unprepared(&ferry_kit::idempotency::create_table_sql(backend)).await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), DOWN).await
        }
    }
}

/// When a plan's items and an ended job's effects expire, and whether they were pruned.
/// Rows from before get the default retention (7 days) from their creation or end.
mod m20261205_000001_retention {
    use super::Statements;

    pub(super) const MIGRATION: Statements = Statements { name: "m20261205_000001_retention", up: UP, down: DOWN };

    const UP: &[&str] = &[
        "ALTER TABLE merge_plans ADD COLUMN expire_at BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE merge_plans ADD COLUMN items_pruned BIGINT NOT NULL DEFAULT 0",
        "UPDATE merge_plans SET expire_at = created_at + 604800000000",
        "CREATE INDEX merge_plans_expiry ON merge_plans (items_pruned, expire_at)",
        "ALTER TABLE jobs ADD COLUMN expire_at BIGINT",
        "ALTER TABLE jobs ADD COLUMN effects_pruned BIGINT NOT NULL DEFAULT 0",
        "UPDATE jobs SET expire_at = ended_at + 604800000000 WHERE ended_at IS NOT NULL",
        "CREATE INDEX jobs_expiry ON jobs (effects_pruned, expire_at)",
    ];

    const DOWN: &[&str] = &[
        "DROP INDEX jobs_expiry",
        "ALTER TABLE jobs DROP COLUMN effects_pruned",
        "ALTER TABLE jobs DROP COLUMN expire_at",
        "DROP INDEX merge_plans_expiry",
        "ALTER TABLE merge_plans DROP COLUMN items_pruned",
        "ALTER TABLE merge_plans DROP COLUMN expire_at",
    ];
}

/// Who made each plan and started each job (the caller's subject). Rows from before read
/// `""`.
mod m20261206_000001_creators {
    use super::Statements;

    pub(super) const MIGRATION: Statements = Statements { name: "m20261206_000001_creators", up: UP, down: DOWN };

    const UP: &[&str] = &[
        "ALTER TABLE merge_plans ADD COLUMN created_by TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE jobs ADD COLUMN created_by TEXT NOT NULL DEFAULT ''",
    ];

    const DOWN: &[&str] = &["ALTER TABLE jobs DROP COLUMN created_by", "ALTER TABLE merge_plans DROP COLUMN created_by"];
}

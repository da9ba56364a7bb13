//! integration-control's schema. Ids collate byte-wise on both backends (`COLLATE "C"` on
//! PostgreSQL, SQLite's default BINARY), so lists order the same everywhere.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_integration_control::Migration),
            Box::new(ferry_kit::idempotency::IndexByAge),
            Box::new(m20261203_000001_index_snapshots_by_age::Migration),
            Box::new(ferry_kit::audit::store::Migration),
            Box::new(m20261207_000001_sync_leases::Migration),
            Box::new(m20261215_000001_record_sealing_key_ids::Migration),
            Box::new(ferry_kit::outbox::Migration),
            Box::new(m20261216_000001_webhooks::Migration),
        ]
    }
}

mod m20261123_000001_create_integration_control {
    use super::*;

    pub struct Migration;

    // Named by hand: `DeriveMigrationName` takes the file's name, which every migration
    // in this file shares.
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261123_000001_create_integration_control"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE integrations (
            env {KEY} NOT NULL,
            id {KEY} NOT NULL,
            display_name TEXT NOT NULL,
            external_system TEXT NOT NULL,
            base_url TEXT NOT NULL,
            active BOOLEAN NOT NULL,
            credential_state INTEGER NOT NULL,
            sealed_key {BLOB},
            fingerprint TEXT NOT NULL,
            fenced BOOLEAN NOT NULL,
            origin_env TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (env, id)
        )",
        "CREATE TABLE mappings (
            env {KEY} NOT NULL,
            integration {KEY} NOT NULL,
            id {KEY} NOT NULL,
            display_name TEXT NOT NULL,
            target_env TEXT NOT NULL,
            bound_env TEXT NOT NULL,
            active BOOLEAN NOT NULL,
            field_mapping_json TEXT NOT NULL,
            fenced BOOLEAN NOT NULL,
            origin_env TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (env, integration, id),
            FOREIGN KEY (env, integration) REFERENCES integrations (env, id)
        )",
        "CREATE INDEX mappings_target ON mappings (target_env)",
        "CREATE TABLE sync_jobs (
            env {KEY} NOT NULL,
            id {KEY} NOT NULL,
            display_name TEXT NOT NULL,
            integration TEXT,
            schedule TEXT NOT NULL,
            state INTEGER NOT NULL,
            external BOOLEAN NOT NULL,
            paused_by TEXT NOT NULL,
            pause_reason TEXT NOT NULL,
            pause_time BIGINT,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (env, id)
        )",
        "CREATE INDEX sync_jobs_integration ON sync_jobs (env, integration)",
        "CREATE TABLE fences (
            env {KEY} NOT NULL PRIMARY KEY,
            holder TEXT NOT NULL,
            reason TEXT NOT NULL,
            fence_time BIGINT NOT NULL
        )",
        "CREATE TABLE snapshots (
            env {KEY} NOT NULL,
            id {KEY} NOT NULL,
            description TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            integration_count BIGINT NOT NULL,
            mapping_count BIGINT NOT NULL,
            sync_job_count BIGINT NOT NULL,
            checksum TEXT NOT NULL,
            contents TEXT NOT NULL,
            PRIMARY KEY (env, id)
        )",
        "CREATE INDEX snapshots_newest ON snapshots (env, created_at, id)",
    ];

    const DOWN: &[&str] = &[
        "DROP TABLE request_log",
        "DROP TABLE snapshots",
        "DROP TABLE fences",
        "DROP TABLE sync_jobs",
        "DROP TABLE mappings",
        "DROP TABLE integrations",
    ];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await?;
            let sql = ferry_kit::idempotency::create_table_sql(manager.get_database_backend());
            manager.get_connection().execute_unprepared(&sql).await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), DOWN).await
        }
    }
}

/// Snapshots are pruned by age (`store::snapshots::AGED`).
mod m20261203_000001_index_snapshots_by_age {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000001_index_snapshots_by_age"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), &["CREATE INDEX snapshots_by_age ON snapshots (created_at)"]).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), &["DROP INDEX snapshots_by_age"]).await
        }
    }
}

/// Sync leases (`store::leases`): outstanding ones are found per environment by state and
/// expiry; ended ones are pruned by expiry.
mod m20261207_000001_sync_leases {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261207_000001_sync_leases"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE sync_leases (
            env {KEY} NOT NULL,
            id {KEY} NOT NULL,
            integration {KEY} NOT NULL,
            mapping {KEY} NOT NULL,
            job {KEY},
            holder TEXT NOT NULL,
            state INTEGER NOT NULL,
            acquired_at BIGINT NOT NULL,
            renewed_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            ended_at BIGINT,
            end_reason TEXT NOT NULL,
            acknowledged_at BIGINT,
            renewals BIGINT NOT NULL,
            PRIMARY KEY (env, id)
        )",
        "CREATE INDEX sync_leases_outstanding ON sync_leases (env, integration, mapping, state, expires_at)",
        "CREATE INDEX sync_leases_newest ON sync_leases (env, acquired_at, id)",
        "CREATE INDEX sync_leases_by_age ON sync_leases (expires_at)",
    ];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), &["DROP TABLE sync_leases"]).await
        }
    }
}

/// Sealed values record the id of the key that sealed them (`store::sealed`): those from
/// before key ids are under the key a bare key-file line stands for, `default`. A snapshot
/// holds its values under one key (`snapshots.sealing_key_id`; NULL: it holds none).
/// `fingerprint_keys` holds the HMAC keys of fingerprints, sealed, so they outlive any
/// one sealing key.
mod m20261215_000001_record_sealing_key_ids {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261215_000001_record_sealing_key_ids"
        }
    }

    const UP: &[&str] = &[
        "ALTER TABLE integrations ADD COLUMN sealing_key_id TEXT",
        "UPDATE integrations SET sealing_key_id = 'default' WHERE sealed_key IS NOT NULL",
        "CREATE INDEX integrations_sealing_key ON integrations (sealing_key_id)",
        "ALTER TABLE snapshots ADD COLUMN sealing_key_id TEXT",
        "UPDATE snapshots SET sealing_key_id = 'default' WHERE contents LIKE '%\"sealed\":\"%'",
        "CREATE INDEX snapshots_sealing_key ON snapshots (sealing_key_id)",
        "CREATE TABLE fingerprint_keys (
            name {KEY} NOT NULL PRIMARY KEY,
            sealed {BLOB} NOT NULL,
            sealing_key_id TEXT NOT NULL
        )",
    ];

    const DOWN: &[&str] = &[
        "DROP TABLE fingerprint_keys",
        "DROP INDEX snapshots_sealing_key",
        "ALTER TABLE snapshots DROP COLUMN sealing_key_id",
        "DROP INDEX integrations_sealing_key",
        "ALTER TABLE integrations DROP COLUMN sealing_key_id",
    ];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), DOWN).await
        }
    }
}

/// Webhook subscriptions (secrets sealed, with their key id), the events they deliver (the
/// outbox's sequence and the body as sent), one delivery per event and subscription, and
/// every attempt.
mod m20261216_000001_webhooks {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261216_000001_webhooks"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE webhook_subscriptions (
            id {KEY} NOT NULL PRIMARY KEY,
            url TEXT NOT NULL,
            event_types TEXT NOT NULL,
            environments TEXT NOT NULL,
            state INTEGER NOT NULL,
            disabled_reason TEXT NOT NULL,
            failure_disabled INTEGER NOT NULL,
            consecutive_failures INTEGER NOT NULL,
            next_attempt_at BIGINT NOT NULL,
            sealed_secret {BLOB} NOT NULL,
            sealing_key_id TEXT NOT NULL,
            secret_fingerprint TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
        "CREATE INDEX webhook_subscriptions_sealing_key ON webhook_subscriptions (sealing_key_id)",
        "CREATE TABLE webhook_events (
            sequence BIGINT NOT NULL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            environment TEXT NOT NULL,
            resource TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
        "CREATE TABLE webhook_deliveries (
            subscription {KEY} NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
            sequence BIGINT NOT NULL REFERENCES webhook_events (sequence),
            created_at BIGINT NOT NULL,
            delivered_at BIGINT,
            PRIMARY KEY (subscription, sequence)
        )",
        "CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (subscription, sequence) WHERE delivered_at IS NULL",
        "CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (delivered_at)",
        "CREATE INDEX webhook_events_by_age ON webhook_events (created_at)",
        "CREATE TABLE webhook_attempts (
            subscription {KEY} NOT NULL,
            sequence BIGINT NOT NULL,
            time BIGINT NOT NULL,
            status_code INTEGER NOT NULL,
            error TEXT NOT NULL,
            duration_micros BIGINT NOT NULL,
            FOREIGN KEY (subscription, sequence) REFERENCES webhook_deliveries (subscription, sequence) ON DELETE CASCADE
        )",
        "CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (subscription, sequence, time)",
    ];

    const DOWN: &[&str] =
        &["DROP TABLE webhook_attempts", "DROP TABLE webhook_deliveries", "DROP TABLE webhook_events", "DROP TABLE webhook_subscriptions"];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), DOWN).await
        }
    }
}

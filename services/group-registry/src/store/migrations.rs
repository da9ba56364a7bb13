//! The registry's schema. One membership table with a unique (group, kind, key) makes G1
//! one rule for duplicated and shared entities alike. Keys collate byte-wise on both
//! backends (`COLLATE "C"` on PostgreSQL, SQLite's default BINARY), so key manifests
//! sort the same everywhere and the merge engine can merge-join them.

use sea_orm::ConnectionTrait;
use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_registry::Migration),
            Box::new(m20261124_000001_tune_bulk_paths::Migration),
            Box::new(m20261203_000001_create_restore_points::Migration),
            Box::new(m20261204_000001_create_masking_keys::Migration),
            Box::new(ferry_kit::idempotency::IndexByAge),
            Box::new(ferry_kit::audit::store::Migration),
            Box::new(m20261206_000001_create_prior_contents::Migration),
        ]
    }
}

mod m20261123_000001_create_registry {
    use super::*;

    pub struct Migration;

    // Named by hand: `DeriveMigrationName` takes the file's name, which every migration
    // in this file shares.
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261123_000001_create_registry"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE environments (
            id {SERIAL},
            name TEXT NOT NULL UNIQUE,
            tier INTEGER NOT NULL,
            display_name TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )",
        "CREATE TABLE groups (
            id {SERIAL},
            environment_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            display_name TEXT NOT NULL,
            revision BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            UNIQUE (environment_id, name)
        )",
        "CREATE TABLE entities (
            id {SERIAL},
            environment_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
            kind INTEGER NOT NULL,
            key {KEY} NOT NULL,
            sharing INTEGER NOT NULL,
            payload TEXT NOT NULL,
            refs TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            copied_from BIGINT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
        "CREATE INDEX entities_copied_from ON entities (environment_id, copied_from)",
        "CREATE TABLE memberships (
            group_id BIGINT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
            kind INTEGER NOT NULL,
            key {KEY} NOT NULL,
            entity_id BIGINT NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
            PRIMARY KEY (group_id, kind, key)
        )",
        "CREATE INDEX memberships_entity ON memberships (entity_id)",
        "CREATE TABLE projects (
            id {SERIAL},
            environment_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            display_name TEXT NOT NULL,
            revision BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            UNIQUE (environment_id, name)
        )",
        "CREATE TABLE project_groups (
            project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            group_id BIGINT NOT NULL REFERENCES groups(id),
            PRIMARY KEY (project_id, position),
            UNIQUE (project_id, group_id)
        )",
        "CREATE INDEX project_groups_group ON project_groups (group_id)",
        "CREATE TABLE config_items (
            project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            name {KEY} NOT NULL,
            value TEXT NOT NULL,
            refs TEXT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (project_id, name)
        )",
        "CREATE TABLE config_item_refs (
            project_id BIGINT NOT NULL,
            item_name {KEY} NOT NULL,
            position INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            key {KEY} NOT NULL,
            PRIMARY KEY (project_id, item_name, position),
            FOREIGN KEY (project_id, item_name) REFERENCES config_items(project_id, name) ON DELETE CASCADE
        )",
    ];

    const DOWN: &[&str] = &[
        "DROP TABLE request_log",
        "DROP TABLE config_item_refs",
        "DROP TABLE config_items",
        "DROP TABLE project_groups",
        "DROP TABLE projects",
        "DROP TABLE memberships",
        "DROP TABLE entities",
        "DROP TABLE groups",
        "DROP TABLE environments",
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

/// Indexes that answer the bulk paths' per-entity probes without reading the entity's row
/// (payloads make rows wide: about 650 bytes, so a heap page holds a dozen and a key
/// manifest, which walks a group kind by kind, would read each page once per kind).
/// `entities_heads` covers what a manifest entry, a merge operation's check and a
/// recipient lookup read; `entities_with_refs` holds only the entities that reference
/// others, so a manifest entry without references needs no row either. On PostgreSQL a
/// probe is then an index-only scan wherever the visibility map says so (autovacuum
/// keeps it current; a freshly loaded table reads the rows until it has run).
mod m20261124_000001_tune_bulk_paths {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261124_000001_tune_bulk_paths"
        }
    }

    const UP: &[&str] = &[
        "CREATE INDEX entities_heads ON entities (id, environment_id, kind, key, sharing, content_hash)",
        "CREATE INDEX entities_with_refs ON entities (id) WHERE refs <> '[]'",
    ];

    const DOWN: &[&str] = &["DROP INDEX entities_with_refs", "DROP INDEX entities_heads"];

    /// PostgreSQL only. Every membership written checks its group's row (a foreign key,
    /// locked FOR KEY SHARE), and every batch that changes a group writes a new version of
    /// that row (its revision). The check scans the group's page, versions and all, and
    /// when merge batches run at once each version carries a multixact to look up. At the
    /// default fill factor a page is pruned only when nearly full (about 70 versions of a
    /// group row); at 10 it is pruned as soon as it holds a few, so the check stays short.
    const UP_POSTGRES: &[&str] = &["ALTER TABLE groups SET (fillfactor = 10)"];
    const DOWN_POSTGRES: &[&str] = &["ALTER TABLE groups RESET (fillfactor)"];

    fn postgres(manager: &SchemaManager, statements: &'static [&'static str]) -> &'static [&'static str] {
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres { statements } else { &[] }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await?;
            ferry_kit::db::execute_schema(manager.get_connection(), postgres(manager, UP_POSTGRES)).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), postgres(manager, DOWN_POSTGRES)).await?;
            ferry_kit::db::execute_schema(manager.get_connection(), DOWN).await
        }
    }
}

/// Restore points: the row naming each, beside the hidden environment holding its content
/// (`store::restore_points`).
mod m20261203_000001_create_restore_points {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000001_create_restore_points"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE restore_points (
            id {SERIAL},
            environment_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
            name {KEY} NOT NULL,
            archive_id BIGINT NOT NULL REFERENCES environments(id),
            run TEXT NOT NULL,
            integration_snapshot TEXT NOT NULL,
            description TEXT NOT NULL,
            groups BIGINT NOT NULL,
            entities BIGINT NOT NULL,
            links BIGINT NOT NULL,
            projects BIGINT NOT NULL,
            config_items BIGINT NOT NULL,
            size_bytes BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            expire_at BIGINT NOT NULL,
            restored_at BIGINT,
            UNIQUE (environment_id, name)
        )",
        "CREATE INDEX restore_points_by_expiry ON restore_points (expire_at)",
    ];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), &["DROP TABLE restore_points"]).await
        }
    }
}

/// Masking keys: the secret HMAC key of each environment's pseudonyms and fakes
/// (`store::copy::masking_key`), made on its first masked copy.
mod m20261204_000001_create_masking_keys {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261204_000001_create_masking_keys"
        }
    }

    const UP: &[&str] = &["CREATE TABLE masking_keys (
            environment_id BIGINT PRIMARY KEY REFERENCES environments(id) ON DELETE CASCADE,
            secret TEXT NOT NULL
        )"];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), &["DROP TABLE masking_keys"]).await
        }
    }
}

/// What an overwrite replaced (`store::prior`), kept for a revert.
mod m20261206_000001_create_prior_contents {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261206_000001_create_prior_contents"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE prior_contents (
            entity_id BIGINT NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
            overwritten_hash TEXT NOT NULL,
            payload TEXT NOT NULL,
            refs TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (entity_id, overwritten_hash)
        )",
        "CREATE INDEX prior_contents_by_age ON prior_contents (created_at)",
    ];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), &["DROP TABLE prior_contents"]).await
        }
    }
}

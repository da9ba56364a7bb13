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
        vec![Box::new(m20261123_000001_create_registry::Migration)]
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

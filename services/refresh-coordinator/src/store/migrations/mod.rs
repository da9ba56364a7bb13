//! refresh-coordinator's schema: the engine's tables (`runs`, one row per run of every
//! kind: the run as a JSON document plus the columns the driver and lists query;
//! `run_subjects`, what runs are listed by; `journal`, each remote operation a step made;
//! `locks` and `lock_guards`) and the request log. The per-kind tables before the engine
//! (`refresh_runs`, `promotion_runs`, `run_locks`, `promotion_locks`) are converted and
//! then left as they were, for the release before this one.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_refresh_runs::Migration),
            Box::new(m20261123_000002_create_promotion_runs::Migration),
            Box::new(m20261123_000003_add_run_traceparent::Migration),
            Box::new(m20261203_000001_add_run_heartbeat::Migration),
            Box::new(m20261203_000002_create_locks::Migration),
            Box::new(m20261203_000003_create_runs::Migration),
            Box::new(m20261203_000004_create_schedules::Migration),
            Box::new(m20261203_000005_create_run_step_parts::Migration),
            Box::new(m20261203_000006_compress_documents::Migration),
            Box::new(ferry_kit::idempotency::IndexByAge),
            Box::new(ferry_kit::audit::store::Migration),
            Box::new(ferry_kit::outbox::Migration),
        ]
    }
}

mod per_kind;
use per_kind::*;

/// One locks table for every run kind (environment and project locks), and the guard rows
/// that serialise starts on an environment (`store::locks`). The locks held in the tables
/// before are carried over; those tables stay for the release before this one.
mod m20261203_000002_create_locks {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000002_create_locks"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            let pg = db.get_database_backend() == DbBackend::Postgres;
            let key = if pg { "TEXT COLLATE \"C\"" } else { "TEXT" };
            let env_of_project = if pg {
                "substr(project, 1, strpos(project, '/projects/') - 1)"
            } else {
                "substr(project, 1, instr(project, '/projects/') - 1)"
            };
            for sql in [
                format!("CREATE TABLE locks (resource {key} NOT NULL PRIMARY KEY, environment {key} NOT NULL, run TEXT NOT NULL)"),
                "CREATE INDEX locks_by_environment ON locks (environment)".to_owned(),
                "CREATE INDEX locks_by_run ON locks (run)".to_owned(),
                format!("CREATE TABLE lock_guards (environment {key} NOT NULL PRIMARY KEY, touched BIGINT NOT NULL)"),
                "INSERT INTO locks (resource, environment, run) \
                 SELECT 'environments/' || environment, 'environments/' || environment, 'refreshRuns/' || run_id FROM run_locks"
                    .to_owned(),
                format!(
                    "INSERT INTO locks (resource, environment, run) SELECT project, {env_of_project}, 'promotionRuns/' || run_id \
                     FROM promotion_locks"
                ),
            ] {
                db.execute_unprepared(&sql).await?;
            }
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            for t in ["lock_guards", "locks"] {
                db.execute_unprepared(&format!("DROP TABLE IF EXISTS {t}")).await?;
            }
            Ok(())
        }
    }
}

/// The engine's runs, subjects and journal; every run of the per-kind tables converted
/// into them (`store::legacy`), with the outputs its steps recorded as journal entries.
mod m20261203_000003_create_runs {
    use super::*;
    use crate::store::{all, exec, legacy};

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000003_create_runs"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE runs (
            id {KEY} NOT NULL PRIMARY KEY,
            kind TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            state INTEGER NOT NULL,
            version BIGINT NOT NULL,
            lease_owner TEXT NOT NULL,
            lease_until BIGINT NOT NULL,
            heartbeat_at BIGINT NOT NULL,
            abort_request TEXT,
            body TEXT NOT NULL,
            traceparent TEXT
        )",
        "CREATE INDEX runs_by_time ON runs (kind, created_at DESC, id DESC)",
        "CREATE INDEX runs_by_state ON runs (state, lease_until)",
        "CREATE TABLE run_subjects (
            subject {KEY} NOT NULL,
            run_id {KEY} NOT NULL,
            PRIMARY KEY (subject, run_id)
        )",
        "CREATE TABLE journal (
            run_id {KEY} NOT NULL,
            step INTEGER NOT NULL,
            op {KEY} NOT NULL,
            request_id TEXT NOT NULL,
            result TEXT NOT NULL,
            recorded_at BIGINT NOT NULL,
            PRIMARY KEY (run_id, step, op)
        )",
    ];

    async fn insert<C: ConnectionTrait>(db: &C, kind: &str, row: &sea_orm::QueryResult, c: legacy::Converted) -> Result<(), DbErr> {
        let id: String = row.try_get("", "id")?;
        let text = |v: &serde_json::Value| v.to_string();
        exec(
            db,
            "INSERT INTO runs (id, kind, created_at, state, version, lease_owner, lease_until, heartbeat_at, abort_request, body, traceparent) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                id.as_str().into(),
                kind.into(),
                row.try_get::<i64>("", "created_at")?.into(),
                row.try_get::<i32>("", "state")?.into(),
                row.try_get::<i64>("", "version")?.into(),
                row.try_get::<String>("", "lease_owner")?.into(),
                row.try_get::<i64>("", "lease_until")?.into(),
                row.try_get::<i64>("", "heartbeat_at")?.into(),
                c.abort_request.as_ref().map(text).into(),
                text(&c.body).into(),
                row.try_get::<Option<String>>("", "traceparent")?.into(),
            ],
        )
        .await?;
        for s in &c.subjects {
            exec(
                db,
                "INSERT INTO run_subjects (subject, run_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                vec![s.as_str().into(), id.as_str().into()],
            )
            .await?;
        }
        for (step, op, request_id, result) in &c.journal {
            exec(
                db,
                "INSERT INTO journal (run_id, step, op, request_id, result, recorded_at) VALUES (?, ?, ?, ?, ?, 0)",
                vec![id.as_str().into(), (*step).into(), op.as_str().into(), request_id.as_str().into(), text(result).into()],
            )
            .await?;
        }
        Ok(())
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            ferry_kit::db::execute_schema(db, UP).await?;
            let cols = "id, created_at, state, version, lease_owner, lease_until, heartbeat_at, traceparent, body, abort_requested";
            for row in all(db, &format!("SELECT {cols}, abort_reason, aborted_by FROM refresh_runs"), vec![]).await? {
                let id: String = row.try_get("", "id")?;
                let converted = legacy::refresh(
                    &id,
                    &row.try_get::<String>("", "body")?,
                    row.try_get("", "abort_requested")?,
                    row.try_get("", "abort_reason")?,
                    row.try_get("", "aborted_by")?,
                )
                .map_err(DbErr::Migration)?;
                insert(db, "refresh", &row, converted).await?;
            }
            for row in all(db, &format!("SELECT {cols} FROM promotion_runs"), vec![]).await? {
                let id: String = row.try_get("", "id")?;
                let converted = legacy::promotion(&id, &row.try_get::<String>("", "body")?, row.try_get("", "abort_requested")?)
                    .map_err(DbErr::Migration)?;
                insert(db, "promotion", &row, converted).await?;
            }
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            for t in ["journal", "run_subjects", "runs"] {
                db.execute_unprepared(&format!("DROP TABLE IF EXISTS {t}")).await?;
            }
            Ok(())
        }
    }
}

/// Schedules of runs (`engine::schedules`): the document, its next due time (NULL while
/// paused or deleted) and the lease of the coordinator handling a due time.
mod m20261203_000004_create_schedules {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000004_create_schedules"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE schedules (
            id {KEY} NOT NULL PRIMARY KEY,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            next_due BIGINT,
            lease_owner TEXT NOT NULL,
            lease_until BIGINT NOT NULL,
            version BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            deleted_at BIGINT
        )",
        "CREATE INDEX schedules_by_due ON schedules (next_due)",
    ];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager.get_connection().execute_unprepared("DROP TABLE IF EXISTS schedules").await?;
            Ok(())
        }
    }
}

/// The large parts of a run's steps (what each changed, left alone, and undid), kept beside
/// the run document so a transition rewrites only what it changed (`engine::store::split`).
mod m20261203_000005_create_run_step_parts {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000005_create_run_step_parts"
        }
    }

    const UP: &[&str] = &["CREATE TABLE run_step_parts (
        run_id {KEY} NOT NULL,
        step INTEGER NOT NULL,
        part {KEY} NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (run_id, step, part)
    )"];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::execute_schema(manager.get_connection(), UP).await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager.get_connection().execute_unprepared("DROP TABLE IF EXISTS run_step_parts").await?;
            Ok(())
        }
    }
}

/// The run documents, journal results and step parts are JSON, the largest a few hundred
/// KiB (a 1,000-mapping change set): on PostgreSQL they are compressed with lz4 rather
/// than pglz, which took most of a step's own time on such a value (docs/performance.md).
mod m20261203_000006_compress_documents {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000006_compress_documents"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            ferry_kit::db::compress_with_lz4(manager.get_connection(), &["runs.body", "journal.result", "run_step_parts.body"]).await
        }

        async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
            Ok(())
        }
    }
}

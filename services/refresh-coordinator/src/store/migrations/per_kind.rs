//! The per-kind tables from before the engine (`refresh_runs`, `promotion_runs`, their
//! trace parent and heartbeat), kept as they were for the release before the engine.

use super::*;

pub(super) mod m20261123_000001_create_refresh_runs {
    use super::*;

    pub struct Migration;

    // Named explicitly: the derive would name both after this file.
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261123_000001_create_refresh_runs"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE refresh_runs (
            id {KEY} NOT NULL PRIMARY KEY,
            created_at BIGINT NOT NULL,
            source TEXT NOT NULL,
            destination TEXT NOT NULL,
            state INTEGER NOT NULL,
            version BIGINT NOT NULL,
            lease_owner TEXT NOT NULL,
            lease_until BIGINT NOT NULL,
            abort_requested BOOLEAN NOT NULL,
            abort_reason TEXT NOT NULL,
            aborted_by TEXT NOT NULL,
            body TEXT NOT NULL
        )",
        "CREATE INDEX refresh_runs_by_time ON refresh_runs (created_at DESC, id DESC)",
        "CREATE INDEX refresh_runs_by_state ON refresh_runs (state, lease_until)",
        // One run per environment: the primary key is the lock.
        "CREATE TABLE run_locks (
            environment {KEY} NOT NULL PRIMARY KEY,
            run_id TEXT NOT NULL
        )",
    ];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            let backend = db.get_database_backend();
            ferry_kit::db::execute_schema(db, UP).await?;
            db.execute_unprepared(&ferry_kit::idempotency::create_table_sql(backend)).await?;
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            for t in ["run_locks", "refresh_runs", "request_log"] {
                db.execute_unprepared(&format!("DROP TABLE IF EXISTS {t}")).await?;
            }
            Ok(())
        }
    }
}

pub(super) mod m20261123_000002_create_promotion_runs {
    use super::*;

    pub struct Migration;

    // Named explicitly: the derive would name both after this file.
    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261123_000002_create_promotion_runs"
        }
    }

    const UP: &[&str] = &[
        "CREATE TABLE promotion_runs (
            id {KEY} NOT NULL PRIMARY KEY,
            created_at BIGINT NOT NULL,
            source TEXT NOT NULL,
            target TEXT NOT NULL,
            state INTEGER NOT NULL,
            version BIGINT NOT NULL,
            lease_owner TEXT NOT NULL,
            lease_until BIGINT NOT NULL,
            abort_requested BOOLEAN NOT NULL,
            body TEXT NOT NULL
        )",
        "CREATE INDEX promotion_runs_by_time ON promotion_runs (created_at DESC, id DESC)",
        "CREATE INDEX promotion_runs_by_state ON promotion_runs (state, lease_until)",
        // One promotion per target project.
        "CREATE TABLE promotion_locks (
            project {KEY} NOT NULL PRIMARY KEY,
            run_id TEXT NOT NULL
        )",
    ];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            let id = if db.get_database_backend() == DbBackend::Postgres { "TEXT COLLATE \"C\"" } else { "TEXT" };
            for sql in UP {
                db.execute_unprepared(&sql.replace("{KEY}", id)).await?;
            }
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            for t in ["promotion_locks", "promotion_runs"] {
                db.execute_unprepared(&format!("DROP TABLE IF EXISTS {t}")).await?;
            }
            Ok(())
        }
    }
}

/// The W3C `traceparent` of the call that started a run: the driver executes the run's
/// steps as children of it, so a run is one trace (also after a restart).
pub(super) mod m20261123_000003_add_run_traceparent {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261123_000003_add_run_traceparent"
        }
    }

    const TABLES: [&str; 2] = ["refresh_runs", "promotion_runs"];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            for t in TABLES {
                db.execute_unprepared(&format!("ALTER TABLE {t} ADD COLUMN traceparent TEXT")).await?;
            }
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            for t in TABLES {
                db.execute_unprepared(&format!("ALTER TABLE {t} DROP COLUMN traceparent")).await?;
            }
            Ok(())
        }
    }
}

/// When a run's lease holder last claimed or renewed it: a run taken over from a
/// coordinator that stopped says when that one was last heard from.
pub(super) mod m20261203_000001_add_run_heartbeat {
    use super::*;

    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20261203_000001_add_run_heartbeat"
        }
    }

    const TABLES: [&str; 2] = ["refresh_runs", "promotion_runs"];

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            for t in TABLES {
                db.execute_unprepared(&format!("ALTER TABLE {t} ADD COLUMN heartbeat_at BIGINT NOT NULL DEFAULT 0")).await?;
            }
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let db = manager.get_connection();
            for t in TABLES {
                db.execute_unprepared(&format!("ALTER TABLE {t} DROP COLUMN heartbeat_at")).await?;
            }
            Ok(())
        }
    }
}

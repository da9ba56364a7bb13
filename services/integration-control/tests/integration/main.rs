//! integration-control's behaviour suite, written once and run on SQLite and on PostgreSQL
//! (`sqlite::…` and `postgres::…` tests), against the real registry on the same backend.

mod helpers;

mod authorize;
mod bulk;
mod crud;
mod edge;
mod leases;
mod rotation;
mod secrets;
mod snapshots;
mod webhooks;

use helpers::Backend;

use ferry_testkit::per_backend;

per_backend!(
    crud::integrations_crud_and_credentials,
    crud::mappings_crud_and_fenced_activation,
    crud::sync_jobs_pause_resume_record_who,
    authorize::authorize_sync_every_deny_reason_in_order,
    authorize::authorize_sync_bad_input,
    bulk::deactivate_then_reactivate_restores_exactly,
    bulk::suspend_instead_then_reactivate_restores_exactly,
    bulk::pause_then_resume_jobs_restores_exactly,
    bulk::refresh_copy_disable_activate_provisioned,
    bulk::fence_and_unfence_environment,
    snapshots::snapshot_round_trip_restores_exactly,
    snapshots::snapshot_restore_refusals,
    snapshots::snapshots_expire_and_are_pruned,
    edge::bad_input_is_refused_precisely,
    edge::request_id_makes_retries_no_ops,
    edge::concurrent_retries_and_fences_stay_consistent,
    leases::leases_are_granted_renewed_and_revoked,
    leases::lease_release_expiry_and_refusals,
    rotation::rotate_reseal_and_remove_a_key,
    webhooks::every_change_arrives_signed_and_in_order,
    webhooks::a_dead_receiver_disables_its_subscription,
    webhooks::subscriptions_refuse_bad_input,
    webhooks::delivered_deliveries_are_pruned_pending_ones_kept,
);

/// The leak test installs a thread-local log subscriber, so it runs on a current-thread
/// runtime: every task of both servers then logs through that subscriber.
mod leaks {
    #[tokio::test(flavor = "current_thread")]
    async fn sqlite_plaintext_key_never_in_replies_logs_or_database() {
        crate::secrets::plaintext_key_never_in_replies_logs_or_database(crate::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "current_thread")]
    async fn postgres_plaintext_key_never_in_replies_logs_or_database() {
        crate::secrets::plaintext_key_never_in_replies_logs_or_database(crate::Backend::Postgres).await
    }
}

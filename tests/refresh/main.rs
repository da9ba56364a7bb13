//! Cross-service tests of the refresh coordinator: all four real services in-process on
//! port 0, on one backend (SQLite or PostgreSQL), called through generated clients.

mod audit;
mod durability;
mod gates;
mod helpers;
mod leases;
mod promotion;
mod restore;
mod rollback;
mod scenario;
mod schedules;
mod webhooks;

use ferry_testkit::per_backend;

per_backend!(
    scenario::managed_refresh_article_scenario,
    scenario::managed_refresh_activates_mapping_provisioned_in_production,
    scenario::managed_refresh_suspending_credentials_instead,
    scenario::plan_says_concretely_what_each_step_changes,
    durability::coordinator_restarted_between_and_mid_step_completes_once,
    durability::restarted_coordinator_takes_its_runs_back_at_once,
    durability::coordinator_stopped_between_every_pair_of_journal_entries,
    durability::integration_control_outage_post_refresh_is_retried,
    durability::step_failing_for_good_is_aborted_and_source_restored,
    durability::failed_step_retried_completes,
    durability::abort_while_running_undoes_in_reverse,
    restore::abort_after_the_copy_gives_the_destination_back,
    restore::abort_without_its_restore_point_says_the_copy_stays,
    restore::a_refresh_with_a_profile_preserves_excludes_and_masks,
    rollback::rollback_gives_the_destination_back,
    rollback::rollback_refusals,
    rollback::abort_of_a_rollback_gives_back_what_it_replaced,
    gates::external_mode_with_approval_gates,
    gates::refusals,
    gates::four_eyes_approval,
    audit::audit_log_says_who_did_what,
    promotion::plan_promotion_shows_the_merge_plans,
    promotion::promotion_merges_groups_then_project_with_approval,
    promotion::promotion_aborted_after_group_merge_reverts_it,
    promotion::promotion_with_stale_given_plans_is_refused,
    promotion::promotion_resumes_after_coordinator_crash,
    promotion::promotion_abort_refused_for_changed_entities_then_forced,
    promotion::concurrent_starts_of_every_kind_exclude_each_other,
    schedules::schedule_operations_and_refusals,
    schedules::schedule_missed_while_down_starts_one_run,
    schedules::schedule_due_while_locked_is_skipped,
    schedules::two_coordinators_start_a_due_schedule_once,
    schedules::scoped_schedule_list_is_filtered_in_the_query,
    leases::refresh_waits_until_no_sync_is_in_flight,
    leases::refresh_with_revoke_drain_goes_on_at_once,
    webhooks::refresh_run_events_arrive_through_the_coordinators_outbox,
);

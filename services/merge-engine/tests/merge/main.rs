//! The merge engine's behaviour suite, written once and run on SQLite and on PostgreSQL
//! (`sqlite::…` and `postgres::…` tests) against the real group registry. Rules are named
//! as in DESIGN.md (G5, G6, G10–G13).

mod content;
mod helpers;

mod edge;
mod jobs;
mod projects;
mod retention;
mod revert;
mod rules;

use helpers::Backend;

use ferry_testkit::per_backend;

per_backend!(
    rules::g6_merge_creates_links_skips_and_keeps_recipient_on_conflict,
    rules::g6_take_source_overwrites_and_fail_refuses,
    rules::g10_plan_items_page_and_stale_plan_is_aborted,
    rules::g11_applying_twice_changes_nothing,
    rules::g12_missing_dependencies_refused_unless_proceed,
    rules::g13_selective_merge_by_kind_and_key,
    rules::g5_clone_group_copies_duplicated_and_links_shared,
    rules::revert_removes_what_the_merge_created_and_linked,
    rules::revert_refuses_entities_changed_since_unless_proceed,
    revert::revert_puts_back_what_take_source_overwrote,
    jobs::concurrent_applies_into_one_recipient_never_duplicate_keys,
    jobs::job_resumes_after_engine_stopped_mid_apply,
    jobs::cancel_job_stops_between_chunks_and_watch_ends_terminal,
    projects::g8_clone_project_resolves_against_chosen_groups,
    projects::g9_project_merge_refused_listing_missing_unless_groups_first,
    edge::bad_input_is_refused_precisely_and_writes_nothing,
    edge::request_id_makes_retries_no_ops,
    edge::scoped_lists_are_filtered_in_the_query,
    retention::expired_items_and_effects_are_pruned_in_batches_and_refused_after,
);

/// Several engine replicas share one job table on PostgreSQL (DESIGN.md §6). SQLite is the
/// embedded, one-process default: two processes writing one SQLite file can be refused
/// outright when both upgrade a read to a write, so this topology runs on PostgreSQL only.
mod postgres_replicas {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_engines_share_one_queue_without_double_work() {
        crate::jobs::two_engines_share_one_queue_without_double_work(crate::Backend::Postgres).await
    }
}

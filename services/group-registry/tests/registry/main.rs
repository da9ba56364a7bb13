//! The registry's behaviour suite, written once and run on SQLite and on PostgreSQL
//! (`sqlite::…` and `postgres::…` tests). Rules are named as in DESIGN.md (G1…).

mod helpers;

mod bulk;
mod edge;
mod merge_ops;
mod migrate_only;
mod prior;
mod profiles;
mod projects;
mod restore_points;
mod rules;

use helpers::Backend;

use ferry_testkit::per_backend;

per_backend!(
    rules::g1_key_unique_per_group_across_duplicated_and_shared,
    rules::g2_deleting_duplicated_leaves_other_groups,
    rules::g3_deleting_shared_needs_confirmation_naming_groups,
    rules::g4_unlink_removes_one_link_never_the_last,
    rules::sharing_follows_kind_and_portal_must_choose,
    rules::sharing_against_the_kind_is_reported_never_delivered,
    rules::entities_by_key_within_a_group,
    rules::revisions_move_with_every_change_and_only_then,
    projects::g7_references_resolve_through_project_groups_in_order,
    projects::projects_validate_groups_and_bump_on_change,
    projects::upsert_config_items_counts_and_is_idempotent,
    projects::writes_racing_a_delete_are_answered_not_internal,
    bulk::import_export_and_manifest_sorted_bytewise,
    bulk::import_is_all_or_nothing_and_retry_safe,
    bulk::reads_are_answered_while_an_import_is_open,
    merge_ops::merge_operations_apply_once_and_report_outcomes,
    merge_ops::operations_on_one_key_answer_in_order,
    prior::a_restore_puts_back_what_an_overwrite_replaced_once,
    merge_ops::concurrent_batches_into_one_recipient_never_duplicate_keys,
    bulk::environment_copy_replaces_destination_and_refuses_production,
    edge::bad_input_is_refused_with_field_violations_and_writes_nothing,
    edge::request_id_makes_retries_no_ops,
    edge::paging_walks_every_item_once_and_refuses_foreign_tokens,
    edge::auth_roles_and_environment_scopes,
    edge::delete_group_guards,
    edge::get_group_read_mask_returns_only_the_fields_asked_for,
    edge::concurrent_retries_with_one_request_id_answer_alike,
    migrate_only::migrate_only_creates_the_schema_and_exits_without_serving,
    profiles::a_profile_preserves_excludes_and_masks,
    profiles::a_bad_profile_is_refused_with_field_violations,
    restore_points::restore_point_gives_back_exactly_what_was_there,
    restore_points::an_expired_restore_point_is_refused_naming_when_then_pruned,
);

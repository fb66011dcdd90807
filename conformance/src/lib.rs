//! What every relay backend must do, as tests any backend can run.
//!
//! - [`contract`]: one test per sentence of the storage contract
//!   (`muster_core::sync::storage`), with scopes, the visibility log,
//!   erasure, tokens and concurrent appenders from several threads;
//! - [`session_rules`]: what the relay lets a device do, message by message
//!   (a core `RelaySession` driven in process, no socket);
//! - [`sim`]: the deterministic simulation of devices syncing through the
//!   relay, dropped connections, reordering, scoped volunteer devices,
//!   erasures and restores from a backup, with an oracle of what must exist
//!   where at the end.
//!
//! A backend joins with one line: implement [`Backend`] for it and invoke
//! [`relay_backend_tests!`] in a test file. `tests/memory.rs` runs it all
//! over core's `MemoryRelay`; the server's `tests/conformance.rs` over
//! `SqliteRelay`.

pub mod contract;
pub mod session_rules;
pub mod sim;

use muster_core::sync::memory::MemoryRelay;
use muster_core::sync::storage::RelayStorage;

/// A relay backend under test.
pub trait Backend: Sized + Send + Sync + 'static {
    /// A new, empty backend.
    fn fresh() -> Self;
    /// Its storage.
    fn storage(&self) -> &dyn RelayStorage;
    /// A copy of everything it holds now, as a backup taken now would be.
    fn backup(&self) -> Self;
    /// Replaces everything it holds with `backup`'s copy, as restoring an
    /// older backup onto the relay's disk would.
    fn restore(&mut self, backup: &Self);
    /// Closes it and opens it again on the same data, as a restart does.
    fn reopen(&mut self);
}

impl Backend for MemoryRelay {
    fn fresh() -> Self {
        MemoryRelay::new("epoch-1")
    }

    fn storage(&self) -> &dyn RelayStorage {
        self
    }

    fn backup(&self) -> Self {
        MemoryRelay::backup(self)
    }

    fn restore(&mut self, backup: &Self) {
        MemoryRelay::restore(self, backup);
    }

    fn reopen(&mut self) {
        // Nothing to close: memory is all there is.
    }
}

/// Generates a `#[test]` for every test of this crate over `$backend`
/// (a type implementing [`Backend`]).
#[macro_export]
macro_rules! relay_backend_tests {
    ($backend:ty) => {
        $crate::relay_backend_tests!(@each $backend;
            contract::appends_are_serialised_and_seen_in_commit_order,
            contract::concurrent_appends_each_learn_their_own_positions,
            contract::a_failed_transaction_keeps_nothing_and_leaves_no_gap,
            contract::the_chain_never_forks,
            contract::a_change_is_logged_once,
            contract::acknowledged_changes_survive_a_restart,
            contract::erased_entries_are_skipped,
            contract::the_visibility_log_is_ordered,
            contract::a_snapshot_loads_as_the_document,
            contract::entries_come_in_bounded_batches,
            contract::a_volunteer_scope_follows_sign_ups_creations_and_merges,
            contract::tokens_are_checked_and_administered,
            contract::the_audit_names_who_wrote_what,
            session_rules::a_volunteer_cannot_sign_up_a_contact_it_cannot_see,
            session_rules::a_scoped_device_is_never_sent_ids_outside_its_view,
            session_rules::the_fallback_holds_a_bounded_number_of_waiting_documents,
            session_rules::doc_sync_applies_the_rules_of_push,
            session_rules::a_new_record_must_be_readable,
            session_rules::a_volunteer_cannot_tell_whether_an_id_exists,
            session_rules::a_waiting_change_cannot_carry_an_unseen_contact_in,
            session_rules::the_fallback_bounds_its_sync_states,
            session_rules::a_record_must_hold_its_own_id,
            session_rules::merges_are_followed_through_token_edits_and_chains,
            session_rules::every_refusal_about_an_unseen_id_is_the_same,
            session_rules::a_catch_up_cut_short_leaves_a_cursor_the_relay_trusts,
            session_rules::what_joins_a_view_during_the_fallback_is_sent_after_it,
            session_rules::an_edit_of_a_record_the_relay_lost_waits_for_it,
            session_rules::a_first_sync_cut_short_forgets_what_left_the_view_meanwhile,
            sim::devices_converge_through_the_relay_despite_drops_and_reordering,
            sim::scoped_devices_and_erasures_keep_every_record_where_it_belongs,
            sim::the_oracle_catches_a_relay_that_loses_a_document,
            sim::a_relay_restored_from_an_older_backup_loses_nothing,
            sim::reconnecting_with_nothing_new_is_one_round_trip_of_a_few_hundred_bytes,
            sim::changes_acknowledged_after_the_cursor_are_recovered_when_the_relay_loses_them,
        );
    };
    (@each $backend:ty; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                $crate::$module::$test::<$backend>();
            }
        )*
    };
}

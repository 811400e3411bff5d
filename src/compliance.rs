//! # For the auditor: the rule, where it is enforced, and what it does not cover
//!
//! This page is documentation only. It says what this crate guarantees about Microsoft's
//! recording rule, where each guarantee is enforced (by a type, at run time, by the trail's
//! verifier) and which tests would fail if it broke; it shows the protocol as a picture
//! generated from the executable spec, lists every misuse that does not compile, says what
//! each layer of the audit trail proves (and what no trail can), specifies the command-line
//! auditor, and ends with the limits, said plainly.
//!
//! # The rule
//!
//! Microsoft's terms for the Media Access API forbid a compliance-recording bot to persist a
//! call's media, or anything derived from it, until it has called
//! `POST /communications/calls/{id}/updateRecordingStatus` with `status: recording` **and
//! received a success reply**, and require it to **stop recording before** it reports
//! `notRecording` (or `failed`). In this crate:
//!
//! - media reaches storage only through a retention capability ([`Retention`](crate::Retention),
//!   [`RetentionHandle`](crate::RetentionHandle), used by
//!   [`RetentionWriter`](crate::RetentionWriter)), and only a [`Call`](crate::Call) in state
//!   [`Recording`](crate::Recording) mints one;
//! - the only way into `Recording` is a `recording` request whose operation Graph reported
//!   `completed`, with no error, in the response or in a notification about that very request;
//! - leaving `Recording` ends every capability first (statically for borrowed ones, by an
//!   awaited drain for owned ones), and only then is `notRecording` or `failed` built and sent.
//!
//! # Where each guarantee is enforced
//!
//! The guarantees are those of the design (G1–G10, and the checkpoints of G12). For each: the types that make the wrong
//! program impossible, what happens at run time where types cannot reach, the verifier's rule
//! ([`audit::Rule`](crate::audit::Rule), by its [`code`](crate::audit::Rule::code)), and the
//! tests that would fail if it broke.
//!
//! **G1. No retention before acknowledgement.**
//! - *Types:* [`Call<S>`](crate::Call) over the sealed [`State`](crate::State); only
//!   `Call<Recording>` has `retention()` and `retention_handle()`; capabilities and states have
//!   private fields and no `Clone`, `Default`, `Deserialize` or `From`.
//! - *Run time:* [`response::interpret_response`](crate::response::interpret_response) calls
//!   only a 2xx `completed` with no error `Completed`;
//!   [`Operation::is_successful_completion`](crate::response::Operation::is_successful_completion)
//!   and [`Call::is_for_this_request`](crate::Call::is_for_this_request) decide whether a
//!   notification acknowledges the outstanding request; notifications need
//!   [`auth::Authenticated`](crate::auth::Authenticated).
//! - *Verifier:* `G1/recording-without-ack` (the acknowledgement is re-derived from the trail and
//!   used up by entering `Recording`), `G1/retention-outside-recording`.
//! - *Tests:* `tests/ui/retain_in_*.rs`, `tests/ui/retention_handle_in_pending_recording.rs`;
//!   `tests/core/lifecycle.rs` `never_recording_without_completed`,
//!   `running_stays_pending_until_completed_notification`,
//!   `failed_can_begin_again_and_needs_fresh_ack`; `tests/core/properties.rs`
//!   `responses_are_total_and_honest`, `g1_holds_under_arbitrary_transport_behaviour`,
//!   `only_an_acknowledgement_unlocks_retention`; `tests/core/one_call.rs`
//!   `our_operation_id_with_another_context_does_not_settle`,
//!   `a_foreign_operation_type_never_settles`, `a_completed_notification_with_an_error_fails_the_call`;
//!   `tests/driver/driver.rs` `a_notification_for_another_request_cannot_unlock_recording`;
//!   `tests/webhook/forged.rs` `forged_completed_cannot_unlock_retention` (feature `jwt`);
//!   `tests/driver/spellings.rs` `the_outcome_is_read_from_status_never_from_change_type`,
//!   `every_enum_of_an_operation_update_in_any_case_decides_alike`;
//!   `tests/audit/verify.rs`; `tests/core/steps.rs`.
//!
//! **G2. Stop before notify.**
//! - *Types:* a borrowed [`Retention<'c>`](crate::Retention) borrows the call, and
//!   `stop_recording`, `report_failure`, their first steps `start_stop` and
//!   `start_failure_report`, and `end` take the call by value: stopping while one is alive does
//!   not compile. The first step returns a [`Draining`](crate::Draining) call, which has no
//!   request to send: only [`Draining::drained`](crate::Draining::drained) (or its blocking
//!   twin), which waits for every owned handle, yields the status update.
//! - *Run time:* owned handles are drained: leaving `Recording` raises the stop signal, awaits
//!   the end of every handle under a deadline (a `DrainTimedOut` hands the call back, still
//!   `Recording`, and sends nothing), and builds the status request afterwards.
//! - *Verifier:* `G2/end-reported-while-retention-alive`, `G2/left-recording-while-retention-alive`,
//!   `G2/retention-after-end-reported`.
//! - *Tests:* `tests/ui/stop_while_retention_alive.rs`, `stop_while_writer_alive.rs`,
//!   `report_failure_while_retention_alive.rs`, `end_while_retention_alive.rs`,
//!   `stop_request_before_drain.rs`, `forge_draining_literal.rs`;
//!   `tests/core/lifecycle.rs` `stop_waits_for_every_owned_handle`,
//!   `drain_deadline_hands_the_call_back_and_sends_nothing`,
//!   `retention_ends_are_audited_before_the_stop_request_under_races`; `tests/loom/main.rs`
//!   `stop_drains_after_every_capability_and_is_always_woken`; `tests/driver/driver.rs`
//!   `stop_waits_for_media_tasks_under_the_drain_deadline`; `tests/core/rule_at_every_instant.rs`.
//!
//! **G3. Misuse does not compile.**
//! - *Types:* sealed traits (`State`, the capability trait), private fields, consuming
//!   transitions, lifetimes on borrowed capabilities.
//! - *Tests:* `tests/compile_fail/compile_fail.rs` `misuse_does_not_compile` over `tests/ui/` (the catalogue
//!   below) and `legal_paths_compile` over `tests/ui-pass/`; `tests/core/protocol_spec.rs`, whose
//!   every edge calls the real API.
//!
//! **G4. Nothing is lost from the audit trail.**
//! - *Run time:* every request, response, notification, transition and capability start or end
//!   is an [`AuditEvent`](crate::audit::AuditEvent) handed to the
//!   [`AuditSink`](crate::audit::AuditSink) *before* the step goes on.
//! - *Verifier:* [`audit::verify`](crate::audit::verify) replays any trail;
//!   `G4/capability-started-twice`, `G4/capability-ended-without-start`.
//! - *Tests:* `tests/core/lifecycle.rs` `nothing_is_sent_without_an_audit_record`,
//!   `json_lines_sink_is_flushed_per_event_and_verifies`, `verifier_catches_retention_before_ack`;
//!   `tests/core/properties.rs` `capability_numbers_stay_unique_across_recording_episodes`;
//!   `tests/audit/verify.rs`.
//!
//! **G5. Outcomes are honest.**
//! - *Run time:* ambiguous failures (timeout, 500/504, reset after sending) are unknown
//!   outcomes, never retried blindly and never success; the call enters `Failed` remembering the
//!   attempt, so a late `completed` is surfaced for reconciliation instead of promoting it.
//! - *Tests:* `tests/driver/driver.rs` `server_error_is_unknown_and_never_retried`,
//!   `reset_after_send_is_unknown_but_refused_connection_is_retried`,
//!   `deadline_fails_and_late_completion_is_surfaced_not_promoted`,
//!   `a_completion_after_an_ambiguous_failure_is_surfaced`,
//!   `a_cancelled_wait_still_surfaces_a_late_completion`; `tests/core/properties.rs`
//!   `responses_are_total_and_honest`.
//!
//! **G6. Hostile input is rejected with a clear error.**
//! - *Types:* [`CallId`](crate::CallId) (one path segment), [`ClientContext`](crate::ClientContext)
//!   (ASCII, 1–256 characters), [`AccessToken`](crate::AccessToken) (redacted everywhere).
//! - *Run time:* lenient, total parsers for responses and notifications; redirects never
//!   followed with the token.
//! - *Tests:* unit tests in `src/types.rs` (`rejects_hostile_ids`, `client_context_bounds`,
//!   `token_never_prints`) and `src/notification.rs` (`not_json`, `too_large`,
//!   `missing_and_wrong_typed_fields`); `tests/e2e/transports.rs` `redirect_not_followed`,
//!   `location_on_success_never_contacted`; `tests/e2e/emulator.rs`
//!   `foreign_location_is_never_followed`; fuzz targets `fuzz/fuzz_targets/{call_id,
//!   notification, response}.rs`.
//!
//! **G7. One Graph call, one typestate value, one episode at a time.**
//! - *Types:* calls are created only by [`Calls`](crate::Calls) (or the driver), keyed by the
//!   normalised id; there is no public `Call::new`.
//! - *Run time:* a second live value for a call is refused anywhere in the process, whatever
//!   registry or driver asks (one table per process, keyed by the normalised id: Graph call
//!   ids are GUIDs, so this reaches across clouds, tenants and base URLs); a report of an
//!   earlier episode is not sent once a later one began, through any registry of the process
//!   (`ReportSuperseded` in the trail).
//! - *Verifier:* calls are keyed by normalised id, so a GUID and its upper-case dash-less
//!   spelling are one call. Across the trails of several instances of a bot (each process has
//!   its own registry, so no type or run-time check spans them),
//!   [`verify_instances`](crate::audit::verify_instances) flags a call two instances held at
//!   overlapping times: `G7/live-in-two-instances`.
//! - *Tests:* `tests/ui/call_new_without_registry.rs`; `tests/core/one_call.rs`
//!   `a_second_live_value_is_refused_under_either_spelling`,
//!   `a_second_registry_cannot_open_a_call_another_registry_holds`; `tests/driver/driver.rs`
//!   `a_second_driver_cannot_open_a_call_the_first_records`,
//!   `an_orphan_report_is_superseded_by_another_drivers_new_episode`;
//!   `the_trail_uses_one_spelling_per_call`,
//!   `verify_rejects_a_stop_under_another_spelling_while_retention_is_alive`;
//!   `tests/driver/driver.rs` `an_orphan_report_is_never_sent_once_a_new_episode_began`,
//!   `reconcile_sends_nothing_once_a_later_episode_began`; `tests/core/rule_at_every_instant.rs`;
//!   `tests/audit/verify.rs` `a_stop_under_another_spelling_is_rejected`; `tests/audit/instances.rs`
//!   `one_call_held_by_two_instances_at_once_is_flagged_under_either_spelling`,
//!   `a_call_recorded_by_one_instance_after_the_other_stopped_holds`;
//!   `tests/driver/spellings.rs` `either_id_form_in_every_field_settles_the_waiting_request`,
//!   `a_terminated_call_in_either_id_form_in_every_field_is_revoked`.
//!
//! **G8. Revocation is final.**
//! - *Run time:* the retention gate (`src/retention/gate.rs`): `RetentionWriter` holds its
//!   capability around each inner write (its own slot at the gate, marked busy, then the
//!   revoked flag read, with a fence between; on Linux the revocation pays for the fence with
//!   `membarrier(2)`, `src/retention/sync.rs`); `Call::end` and the drop of a
//!   `Call<Recording>` revoke and return only when no write is in flight; later writes fail.
//! - *Verifier:* a revoked capability no longer holds the call in `Recording`, but only that
//!   one: a later episode's capabilities are checked afresh (`tests/audit/verify.rs`
//!   `a_second_episode_after_a_revocation_is_rejected`).
//! - *Tests:* `tests/loom/main.rs` (every interleaving, and `naive_check_then_write_is_caught` and
//!   `the_gate_without_its_fences_is_caught` showing the model can fail); `tests/core/revocation.rs`; `tests/core/rule_at_every_instant.rs`;
//!   `tests/core/lifecycle.rs` `ending_a_recording_call_revokes_handles_and_sends_nothing`,
//!   `dropping_a_recording_call_revokes_handles`.
//!
//! **G9. The trail is honest and complete.**
//! - *Run time:* a step whose event the sink refused does not happen, and a refused event never
//!   appears later; [`JsonLinesSink`](crate::audit::JsonLinesSink) sequences and hash-chains its
//!   lines, and [`check_chain`](crate::audit::check_chain) finds an edit, deletion, insertion or
//!   reordering. Concurrent events share writes (group commit: the sink's own queue, and
//!   [`GroupCommit`](crate::audit::GroupCommit) for a bot's storage); a write that fails
//!   refuses exactly the events it carried, and each of their steps is not taken. At
//!   `Durability::Synced` a request leaves, and a transition's result is handed back, only once
//!   its lines are on the disk; the async loops await that sync without holding a thread, and
//!   a failed sync stops the trail at its last synced line: the steps whose lines it lost are
//!   not taken (a withheld request is not sent; a result becomes the transition the trail
//!   refused), nor any later one (`src/graph/tests.rs`, ten rounds of 64 calls in flight with
//!   a sync failing part-way).
//! - *Verifier:* re-derives what it checks instead of trusting flags (an operation update's
//!   `matched` is never a reason to accept); refuses a line stamped earlier than the one before
//!   it (`G9/time-goes-back`: the sink stamps under its lock, so a request, its answer and the
//!   step they lead to are in the rule's order by time as well as by line); the command-line
//!   auditor refuses a broken chain (`G9/chain`), lines without one (`G9/unchained`) and a
//!   chain it could not check under the bot's key (`G9/unkeyed`) unless told to accept them;
//!   and [`Verified::open`](crate::audit::Verified::open)
//!   lists the calls a cut trail leaves pending or recording, with their live capabilities;
//!   [`Verified::unauthenticated`](crate::audit::Verified::unauthenticated) lists recordings
//!   entered through the escape hatch.
//! - *Tests:* `tests/audit/verify.rs` (every forged trail in `tests/fixtures/trails/`, real and cut
//!   trails, `a_retention_stamped_before_its_recording_request_is_rejected`);
//!   `tests/audit/audit_sink.rs`; `audit-cli/tests/cli.rs`
//!   (`a_retention_stamped_before_its_recording_request_is_a_violation`,
//!   `an_unchained_line_before_a_chained_trail_is_a_violation_unless_allowed`,
//!   `a_trail_without_a_chain_is_a_violation_unless_allowed`,
//!   `a_chain_checked_without_a_key_is_a_violation_unless_allowed`,
//!   `summary_and_timeline_say_when_a_trail_is_broken`); `tests/core/one_call.rs`
//!   `an_end_the_sink_refused_is_recorded_before_the_stop_or_nothing_is_sent`;
//!   `tests/driver/group_commit.rs` (`a_refused_group_write_fails_exactly_the_steps_it_carried`:
//!   every k-th write refused at 64 calls in flight, ten rounds; the trail verifies, every
//!   request sent and every step handed to the bot has its event in the trail) and
//!   `src/audit/sink.rs`
//!   (`failing_every_kth_group_write_at_64_callers_refuses_exactly_the_events_it_carried`).
//!
//! **G10. Bounded, never silent.**
//! - *Run time:* the driver's notification hub (`src/driver/hub.rs`) is indexed and bounded by
//!   bytes and age, caps strings from the network, and reports what it forgets as a driver
//!   event.
//! - *Tests:* `tests/driver/hub.rs`; `src/notification.rs` `many_ignored_entries_stay_linear`,
//!   `too_large`; `benches/hub.rs` (routing cost against the number of pending calls).
//!
//! **G12. Evidence beyond the operator's reach** (witnessed checkpoints; the layers are
//! explained [below](#what-the-trail-proves-layer-by-layer)).
//! - *Run time:* a [`JsonLinesSink`](crate::audit::JsonLinesSink) opened with
//!   [`JsonLinesOptions::checkpoints`](crate::audit::JsonLinesOptions::checkpoints) signs its
//!   chain head, `(seq, chain value)`, with an Ed25519 key (a C2SP signed note,
//!   [`audit::Checkpoint`](crate::audit::Checkpoint)) every N lines or T seconds (checked
//!   when lines are written), at [`sync`](crate::audit::AuditSink::sync) (so at
//!   [`Driver::shutdown`](crate::driver::Driver::shutdown)) and on demand
//!   ([`JsonLinesSink::checkpoint`](crate::audit::JsonLinesSink::checkpoint)), and hands it to
//!   a [`Witness`](crate::audit::Witness): an append-only file
//!   ([`FileWitness`](crate::audit::FileWitness)) or an HTTP endpoint
//!   ([`HttpWitness`](crate::audit::HttpWitness), feature `driver`). A checkpoint covers only
//!   lines on the disk. A witness that fails never fails an event: it is logged and counted
//!   ([`JsonLinesSink::checkpoint_status`](crate::audit::JsonLinesSink::checkpoint_status)).
//! - *Verifier:* [`check_checkpoints`](crate::audit::check_checkpoints) and `recording-audit
//!   verify --checkpoints`: `G9/checkpoint-truncated` (the trail ends before a checkpoint),
//!   `G9/checkpoint-contradicted` (the line at a checkpoint's `seq` has another chain value:
//!   rewritten and rechained, or another trail's), `G9/checkpoint-unverified` (not signed by
//!   the auditor's key), `G9/checkpoint-foreign` (another origin); the witnessed prefix and the
//!   unwitnessed tail are reported.
//! - *Tests:* `tests/audit/checkpoints.rs` (`a_trail_cut_before_its_last_checkpoint_names_it`,
//!   `a_trail_rewritten_with_a_recomputed_chain_contradicts_its_checkpoints`,
//!   `a_trail_rewritten_and_rechained_with_its_hmac_key_contradicts_its_checkpoints`,
//!   `a_checkpoint_signed_by_another_key_is_named_unverified`,
//!   `a_checkpoint_of_another_origin_is_named_foreign`,
//!   `a_checkpoint_of_another_trail_with_the_same_origin_is_contradicted`,
//!   `a_trail_longer_than_its_last_checkpoint_holds_and_reports_its_unwitnessed_tail`,
//!   `a_torn_witness_file_keeps_its_earlier_checkpoints`, the cadence, a failing witness, the
//!   driver's shutdown, and the HTTP witness over loopback); `src/audit/checkpoint/` (the
//!   note format against the module's own example, key ids, strict parsing, every cut of a
//!   torn witness file); `audit-cli/tests/checkpoints.rs` (each case through the command
//!   line).
//!
//! # An instance's stop, and its restart after a crash
//!
//! - *A clean stop:* [`Driver::shutdown`](crate::driver::Driver::shutdown) refuses new begins,
//!   stops every recording call (its stop signal audited, its capabilities revoked at the
//!   deadline), reports `failed` for what Graph did not settle, and ends with an
//!   `instance_stopped` event, after which the trail is synced. No request of the instance
//!   follows that event. *Tests:* `tests/e2e/shutdown.rs` (1,000 calls in every state against
//!   the emulator: none left `recording`, the trail complete; a shutdown dropped mid-way or
//!   called twice; a bot's stop racing the shutdown, 40 rounds), `tests/driver/shutdown.rs`.
//! - *A crash:* the trail ends with calls open, and [`verify`](crate::audit::verify) lists them
//!   ([`Verified::open`](crate::audit::Verified::open)). The next run passes them to
//!   [`Driver::recover`](crate::driver::Driver::recover), which records `call_recovered` for
//!   each (the crashed process's capabilities died with it: none can count as writing) and
//!   reports `notRecording`, or `failed` for a pending call. The verifier lists those calls
//!   apart, under [`Verified::recovered`](crate::audit::Verified::recovered), with whether the
//!   report followed; `recording-audit verify` prints them as "recovered". *Tests:*
//!   `tests/e2e/example_bot.rs` `a_killed_run_is_recovered_by_the_next_and_every_call_is_closed`
//!   (`SIGKILL` during 1,000 calls, a torn tail, then `--append`), `tests/audit/verify.rs`
//!   `a_call_recovered_after_a_crash_is_told_apart_from_one_left_open`.
//!
//! # An acknowledgement Microsoft can confirm
//!
//! Every answer Graph gives is in the trail as `response_received`, 2xx included, with Graph's
//! `request-id`, its echo of the request's `client-request-id` (`echoed_client_request_id`) and
//! its `Date`, as Graph sent them: the `completed` that unlocked `Recording` can be looked up on
//! Microsoft's side (a support case quotes the request id and the time). Values that are not
//! short visible ASCII are left out. *Tests:* `tests/e2e/emulator.rs`
//! `every_answer_is_recorded_with_graphs_request_id_and_date` (matched against the emulator's
//! own record of the ids it answered with), `tests/core/lifecycle.rs`
//! `hostile_correlation_headers_are_left_out_of_the_trail`.
//!
//! # The protocol, as a picture
//!
//! Generated from the same executable spec as the Mermaid copy in the crate docs:
//! `#[typestate]` in `tests/core/protocol_spec.rs` exports the automaton while compiling, and the
//! test `picture_matches_docs` renders it to `docs/states.svg` and fails if the committed copy
//! differs (`UPDATE_DIAGRAM=1 cargo test --test core protocol_spec` rewrites it). Boxes are the
//! states; diamonds are the outcomes Graph decides (a choice the bot's code then matches on);
//! the dot is the start and the ringed dots are `end` (the call terminated).
//!
#![doc = include_str!("../docs/states.svg")]
//!
//! # Misuses that do not compile (G3)
//!
//! Generated from `tests/ui/` by `tests/compile_fail/catalogue.rs` (the misuse is the first sentence of the
//! file's doc, the error the first one of its `.stderr` snapshot for the pinned compiler).
//!
#![doc = include_str!("../docs/compile-fail.md")]
//!
//! # What the trail proves, layer by layer
//!
//! Each layer closes something the one before leaves open; none closes everything. The
//! commands are the auditor's, on the trail `audit.jsonl` and what the bot's operator hands
//! over with it.
//!
//! 1. **The chain** (every line carries `seq` and `chain`, plain SHA-256 of the previous
//!    chain value and the line; [`check_chain`](crate::audit::check_chain)). It proves that
//!    no line was edited, deleted, inserted or reordered *by someone who did not recompute
//!    the chain*: accidental damage, a careless edit, lines lost in the middle. It proves
//!    nothing against whoever recomputes it (the algorithm is public), and nothing about a
//!    cut at the end (a shorter chain is whole).
//!    `recording-audit verify --allow-unkeyed audit.jsonl`
//! 2. **The HMAC key** (the chain keyed with a secret the bot holds,
//!    [`JsonLinesOptions::key`](crate::audit::JsonLinesOptions::key)). It proves the same
//!    against whoever can write the file without holding the key: a storage administrator, a
//!    restored backup, another process. It proves nothing against the key's holders (the
//!    bot, its operator), who can rewrite the trail and rechain it, nor about a cut at the
//!    end. `recording-audit verify --key-file chain.key audit.jsonl`
//! 3. **Witnessed checkpoints** (the chain head, `(seq, chain value of line seq)`, signed with
//!    an Ed25519 key whose public half the auditor holds, and handed as it goes to a witness
//!    the operator does not control; [`audit::checkpoint`](crate::audit::Checkpoint) has the
//!    format). Once the auditor holds a checkpoint, lines `1..=seq` can no longer be changed
//!    unseen, even by the holder of the chain key and of the signing key: a trail cut before
//!    it is `G9/checkpoint-truncated`, one rewritten and rechained after it is
//!    `G9/checkpoint-contradicted`, each naming the checkpoint (its number in the witness
//!    file, its `seq` and time). For that prefix a plain chain is as good as a keyed one (the
//!    checkpoint, not the key, pins it). Checkpoints do not cover the **tail** after the last
//!    one (printed as the unwitnessed tail, which can still be cut or rewritten unseen); they
//!    prove nothing if the operator **never sends them**, or if the **witness is within the
//!    operator's reach** (a witness file beside the trail can be rewritten with it); and a
//!    checkpoint under another key, or of another trail, proves nothing and is itself a
//!    violation (`G9/checkpoint-unverified`, `G9/checkpoint-foreign`: ask why it is there).
//!    `recording-audit verify --key-file chain.key --checkpoints checkpoints.txt
//!    --public-key bot-1.vkey --origin example.com/bot-1/audit audit.jsonl`
//!    (`bot-1.vkey` holds the key line the operator published,
//!    [`CheckpointSigner::verifier_key`](crate::audit::CheckpointSigner::verifier_key), such
//!    as `bot-1+16732a50+ARl/ayPhbIUyxqvIOPrNXqeJvgx2spIDNAOb+os9No1h`; take it from the
//!    operator once, out of band, not with each trail).
//! 4. **What no trail can prove.** That its events are true: a bot that does not record
//!    what it does (a write through storage it reaches around the gate, a forged `completed`
//!    taken through `danger_authenticated_elsewhere`) writes a trail that holds. That it is
//!    complete up to now: only the witnessed prefix is fixed, and a bot still running, or
//!    whose last checkpoint is old, may have more to say. That its clocks were right: times
//!    are the bot's machine's. A trail shows that the bot followed the rule as far as its own
//!    records go; the types, the gate and the run-time checks above (G1–G3, G8) are what make
//!    those records the only way the bot can act.
//!
//! # The command-line auditor
//!
//! `recording-audit`, the workspace's command-line tool (package `recording-audit` in
//! `audit-cli/`, which a bot linking this crate never builds), reads JSON-lines trails as
//! [`JsonLinesSink`](crate::audit::JsonLinesSink) writes them (chained or not) and runs
//! [`check_chain`](crate::audit::check_chain) and [`verify`](crate::audit::verify) on them, and
//! [`verify_instances`](crate::audit::verify_instances) across the trails of several instances.
//! Every subcommand runs the same checks on every trail before it reports on it: the chain,
//! then the rule. A trail that cannot show it was not edited is a violation unless the auditor
//! says otherwise: lines without `seq` and `chain` (the whole trail, or lines before its chain,
//! as trails written before the chain existed have; `G9/unchained`), or a chain checked without
//! `--key-file` (plain SHA-256, which whoever can write the file can recompute;
//! `G9/unkeyed`). From the repository: `cargo run -p recording-audit -- verify audit.jsonl`, or
//! `cargo install --path audit-cli` and then `recording-audit verify audit.jsonl`;
//! `recording-audit --help` lists the subcommands and their options.
//!
//! ```text
//! CHECKS, for every subcommand:
//!     --key-file PATH     the key the bots chained their trails with (HMAC-SHA256), as raw
//!                         bytes; the same key for every file
//!     --allow-unchained   accept lines without seq and chain (else G9/unchained, at line 1)
//!     --allow-unkeyed     accept a chain checked without --key-file (else G9/unkeyed, at
//!                         line 1)
//!     An empty trail has nothing to chain and is not refused.
//!     A trail's first violation is its chain's (G9/chain, then G9/unchained, then
//!     G9/unkeyed), else the rule's (including G9/time-goes-back: a line stamped earlier
//!     than the line before it).
//!
//! recording-audit verify FILE... [--json] [CHECKS] [WITNESSED]
//!     Checks each trail: the hash chain (keyed with --key-file when the bot keyed it) and
//!     the recording rule. Prints, per file, "the rule holds" with the counts, the chain, a
//!     torn last line (reported and ignored, as JsonLinesSink::read does), the calls left open
//!     (pending or recording, with their live capabilities) and the recordings entered through
//!     danger_authenticated_elsewhere; or the first violation:
//!         FILE:LINE: VIOLATION RULE_CODE (call CALL_ID): words
//!     --json   one JSON array instead, with an object per file in the order given, of
//!              this shape ([T] is a list of T, [T, T] a pair, A | B either one):
//!              {"file": string, "holds": bool,
//!               "events": integer, "calls": integer, "retentions": integer,
//!               "chain": string,
//!               "torn_tail": [integer, integer] | null,
//!               "violation": {"line": integer, "call_id": string, "rule": string,
//!                             "words": string} | null,
//!               "open": [string], "recovered": [string], "unauthenticated": [string]}
//!              holds is false exactly when violation is not null; torn_tail is
//!              [offset, bytes]; chain says "holds over N lines", with ", after U
//!              unchained lines" and " (keyed)" or " (not keyed)", or "absent …", or "broken
//!              at line N: …"; a violation of the chain (rule G9/chain, G9/unchained or
//!              G9/unkeyed) has an empty call_id; open, recovered and unauthenticated hold the lines the
//!              text prints for them (recovered: the calls a crashed run left open that a
//!              later run closed, "CALL left STATE by a crash, recovered at line N, then
//!              reported" or "NOT reported").
//!     Several files are the trails of several instances of one bot (one --key-file for
//!     all; a file given twice is refused). After the per-file reports, every call two
//!     instances held at overlapping times (PendingRecording, Recording or a capability alive;
//!     see audit::verify_instances), at the line where the second hold began:
//!         FILE:LINE: VIOLATION G7/live-in-two-instances (call CALL_ID): words
//!           held by FILE from TIME (line N) until TIME (line N)
//!           held by FILE from TIME (line N) until TIME (line N)
//!     or "across N instances: no call held by two at once". With --json and several files,
//!     each object also has "overlaps": [{"call_id", "rule", "words", "holds": [{"file",
//!     "from", "from_line", "until", "until_line", "open"}, …]}], and "holds" is false for a
//!     file in an overlap; with one file the object is as above.
//!     WITNESSED, for one FILE only (with several: exit 2, naming the rule):
//!     --checkpoints PATH  the witness's file of the trail's signed checkpoints (notes one
//!                         after another, each ended by an empty line)
//!     --public-key KEY    their key: the note verifier key text NAME+ID+KEY, or a file
//!                         holding it
//!     --origin NAME       the trail's name in them; without it, the first checkpoint whose
//!                         signature verifies names it
//!     Checks the trail against every checkpoint, after its chain and before the rule: one
//!     it contradicts (G9/checkpoint-truncated: the trail ends before its seq;
//!     G9/checkpoint-contradicted: the line at its seq has another chain value) or that
//!     proves nothing (G9/checkpoint-unverified, G9/checkpoint-foreign) is a violation, the
//!     first one the file's (at the trail's line where it is contradicted, line 1 for one
//!     that proves nothing), with words "checkpoint #N (seq S, signed T): what (PATH, note
//!     at line L)". Then prints
//!         checkpoints: N read from PATH (key NAME+ID, origin "O"): H hold, P contradicted
//!           or proving nothing
//!         witnessed: up to seq S (line L), by checkpoint #N signed T
//!         unwitnessed tail: U lines from line L (seq A to B): they can still be cut or
//!           rewritten unseen
//!     and each problem and unreadable note (a torn last one included: it witnesses
//!     nothing, and changes no exit status). With --json the object also has
//!              "checkpoints": {"file": string, "key": string, "origin": string | null,
//!               "read": integer, "holding": integer, "witnessed_seq": integer,
//!               "witnessed_line": integer | null, "witnessed_by": integer | null,
//!               "witnessed_at": string | null, "trail_seq": integer,
//!               "unwitnessed": integer, "unwitnessed_from_line": integer | null,
//!               "problems": [{"checkpoint": integer, "note_line": integer,
//!                             "seq": integer, "at": string, "rule": string,
//!                             "line": integer | null, "words": string}],
//!               "unreadable": [{"line": integer, "torn": bool, "reason": string}]}
//!              (witnessed_by and checkpoint count notes from 1 in the file).
//!     Exit status: 0 the rule holds in every file and across them (open calls are listed,
//!                    not failures);
//!                  1 a file breaks the rule or its chain (or the chain is refused), its
//!                    checkpoints are contradicted or prove nothing, or two
//!                    instances held a call at once: whatever else could not be read, a
//!                    violation decides the status;
//!                  2 the key, a file, the checkpoints or their key cannot be read (missing,
//!                    not UTF-8, a line that is not an event), or the arguments are wrong,
//!                    and nothing read violates.
//!
//! recording-audit summary FILE... [--json] [CHECKS]
//!     Per call (an audit::CallSummary): episodes, time spent recording, capabilities
//!     started, state at the end of the trail. With several files, each file's calls, then a
//!     line per instance and a total across them (calls, episodes, recording ms,
//!     capabilities; a call held by several instances counts once); with --json,
//!     {"instances": [{"file", "calls", "totals"}], "total"}.
//!     Episodes are counted per call, 1, 2, …; the trail ("recording requested
//!     (registry episode N)", report_superseded) and the logs (episode_seq) number them
//!     by one sequence shared by every call of the bot, so a call's first episode may be
//!     registry episode 7: its k-th "recording requested" line is its k-th episode.
//!     Checks every trail as verify does (and, with several, across instances); prints the
//!     summary all the same, then, on stderr, each trail that does not hold:
//!         FILE:LINE: VIOLATION RULE_CODE (call CALL_ID): words
//!           the trail does not hold: what is printed of it above cannot be trusted
//!     and each call two instances held at once. Exit status as verify's.
//!
//! recording-audit timeline FILE [--call ID] --svg OUT.svg [--force] [CHECKS]
//!     A printable SVG page with a labelled time axis and a legend. With --call, one call's
//!     trail (any spelling of ID): its states as bands, requests and responses as marks,
//!     capabilities as bars from start to end, and each of the rule's checkpoints numbered,
//!     with its gap written out ("last capability (#1) ended 10.0 ms before `notRecording`
//!     was sent"). Without it, the whole trail: one row per call, each call verified on its
//!     own events and its violations marked (audit::trail_timeline). An existing
//!     OUT.svg is left alone (exit 2, naming it) unless --force. Checks the trail as verify
//!     does; draws it all the same, then names a broken trail on stderr as summary does and
//!     exits 1.
//! ```
//!
//! # Honest limits
//!
//! What the types, the gate and the verifier do not cover:
//!
//! - **A leaked call never stops.** `std::mem::forget` of a `Call<Recording>` (or a reference
//!   cycle holding one) runs no destructor: its capabilities stay alive forever, no revocation
//!   happens and no `notRecording` is sent. The trail shows it: the verifier lists the call as
//!   open, with its live capabilities.
//! - **Storage the bot reaches around the gate.** The gate guards the
//!   [`RetentionWriter`](crate::RetentionWriter), not the storage: a bot that keeps its own
//!   handle on the file, socket or buffer behind a `RetentionWriter` (a cloned `File`, an
//!   `Arc<Mutex<Vec<u8>>>`) can write to it without a capability, and nothing here notices.
//! - **Buffers inside a `RetentionWriter` flush on their own schedule.** Bytes that
//!   `RetentionWriter::new(handle, BufWriter::new(file))` has accepted reach the file whenever
//!   the buffer decides, possibly after revocation or after `notRecording`. Put buffers outside:
//!   `BufWriter::new(RetentionWriter::new(handle, file))`, and `finish()` the writer before
//!   dropping its capability.
//! - **`danger_authenticated_elsewhere`.**
//!   [`Authenticated::danger_authenticated_elsewhere`](crate::auth::Authenticated::danger_authenticated_elsewhere)
//!   takes the bot's word that a webhook request was authenticated; a forged `completed`
//!   delivered that way unlocks retention. The trail records the bot's words with every such
//!   update, and the verifier lists every recording entered through one, but cannot tell
//!   whether the words were true.
//! - **A trail is only as good as its storage, up to its last witnessed checkpoint.** Without
//!   a key, the hash chain shows accidental damage and careless edits, not a forger who
//!   recomputes it; with one, not its holder. Lines removed from the end leave a shorter chain
//!   that is still whole, and a trail cut between two episodes looks complete to the verifier
//!   (nothing is open). Checkpoints held by a witness outside the operator's reach close both
//!   for the prefix they cover, not for the tail after the last one, and not at all if they
//!   are never sent (see [what the trail proves](#what-the-trail-proves-layer-by-layer)):
//!   keep the trail where the bot cannot rewrite it, and its checkpoints where the operator
//!   cannot.
//! - **A checkpoint is signed by a key the bot holds.** Whoever controls the bot can sign a
//!   checkpoint of a rewritten trail; the protection is that the witness already holds the
//!   earlier ones, which the rewrite contradicts. A witness that accepts a note only after
//!   the ones it holds (by `seq`) is the witness's business, not this crate's; the auditor's
//!   check lists every checkpoint the trail contradicts, earlier ones included.
//! - **Several instances are compared on their own clocks.**
//!   [`verify_instances`](crate::audit::verify_instances) reads each trail's timestamps as its
//!   machine wrote them: skew between the machines can hide an overlap shorter than the skew,
//!   or show one that was not. A trail that ends with a call held (a crash, a copy taken while
//!   the bot ran) counts as holding it up to its last event only; an instance taking the call
//!   over after that is not flagged, and the open call is listed with the first trail.
//! - **Two storage failures in a row.** A refused write's bytes are cut off the file at once,
//!   before the next write, and when the sink is dropped. If the file system refuses every one
//!   of those cuts, or the process dies (killed, aborted, `exit`) before the next of them,
//!   whole lines of the refused write stay in the file and read as events; at `Synced`, a cut
//!   whose sync failed can also come back after a power loss. A write cut short leaves a torn
//!   tail instead, which is detected.

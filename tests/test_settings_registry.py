# ruff: noqa: E501  (test node ids are long and read best one per line)
"""Every setting either has an effect that a named test proves, or is refused.

The rule (issue: "no setting that silently does nothing"): each ``ServerConfig`` field is in
``PROOFS`` here, naming a test that fails when the setting stops having its effect, or in
``pounce.unbuilt.UNBUILT``, which serving refuses. Adding a setting without either fails this
test; so does a proof that names a test which no longer exists. Every field is documented in
``docs/configuration.md`` and every flag of ``pounce --help`` sets a field.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
from pathlib import Path

from pounce.cli import OPTIONS
from pounce.config import ServerConfig
from pounce.unbuilt import UNBUILT, UNBUILT_TUNING

ROOT = Path(__file__).resolve().parent.parent

# setting -> "path::test" that proves it has its effect (both worker paths where it applies).
PROOFS: dict[str, str] = {
    "host": "tests/test_cli.py::test_serves_the_example_on_port_0",
    "port": "tests/test_cli.py::test_serves_the_example_on_port_0",
    "uds": "tests/net/test_listeners.py::test_unix_socket",
    "fd": "tests/net/test_listeners.py::test_inherited_listening_socket",
    "backlog": "tests/test_cli.py::test_uvicorn_command_line_runs_unchanged",
    "reuse_port": "tests/net/test_listeners.py::test_reuse_port_gives_each_worker_its_own_socket",
    "workers": "tests/supervisor/test_workers.py::test_crashed_worker_thread_is_replaced_and_others_keep_their_connections",
    "worker_mode": "tests/pipeline/static/test_from_config.py::test_pounce_static_on_each_worker_kind",
    "loop": "tests/workers/test_loops.py::test_four_worker_loops_under_concurrent_clients",
    "cpu_affinity": "tests/workers/sync/test_distributor.py::test_cpu_affinity_gives_each_worker_its_own_cpu",
    "accept_distributor": "tests/workers/sync/test_distributor.py::test_connections_spread_over_the_worker_threads",
    "max_requests": "tests/test_cli.py::test_max_requests_replaces_the_worker_and_loses_no_request",
    "max_requests_jitter": "tests/test_cli.py::test_max_requests_replaces_the_worker_and_loses_no_request",
    "pid_file": "tests/test_cli.py::test_pid_file_is_written_while_serving_and_removed",
    "root_path": "tests/asgi/test_scope.py::test_root_path",
    "lifespan": "tests/asgi/test_lifespan.py::test_lifespan_on_requires_support",
    "startup_timeout": "tests/asgi/test_lifespan.py::test_startup_timeout_is_a_lifespan_error",
    "debug": "tests/asgi/test_http_cycle.py::test_debug_shows_the_error_page",
    "log_level": "tests/test_cli_output.py::test_log_level_warning_still_shows_the_url_once",
    "log_format": "tests/test_cli_output.py::test_json_logs_are_flat_objects_with_iso_timestamps",
    "log_config": "tests/test_cli.py::test_log_config_formats_pounce_lines",
    "access_log": "tests/server/test_access_log.py::test_no_access_log_when_off",
    "access_log_format": "tests/server/test_access_log.py::test_access_log_format_shapes_each_line",
    "lifecycle_logging": "tests/server/test_lifecycle_logging.py::test_lifecycle_events_are_logged_when_enabled",
    "use_colors": "tests/test_cli_output.py::test_text_log_colour",
    "server_header": "tests/workers/test_h1_wire.py::test_server_header_can_be_turned_off",
    "date_header": "tests/protocols/h1/test_serializer.py::test_default_lines_can_be_turned_off",
    "gc_freeze": "tests/workers/test_gc_freeze.py::test_a_served_worker_freezes_its_start_up_heap",
    "response_headers": "tests/test_cli.py::test_header_is_on_every_response_of_both_worker_paths",
    "keep_alive_timeout": "tests/workers/sync/test_timeouts_limits.py::test_partial_head_gets_408_after_header_timeout",
    "header_timeout": "tests/workers/sync/test_timeouts_limits.py::test_partial_head_gets_408_after_header_timeout",
    "request_timeout": "tests/workers/sync/test_timeouts_limits.py::test_partial_body_gets_408_after_request_timeout",
    "write_timeout": "tests/workers/sync/test_slow_clients.py::test_write_timeout_closes_a_client_that_stopped_reading",
    "shutdown_timeout": "tests/supervisor/test_drain.py::test_drain_timeout_cancels_what_is_left",
    "max_connections": "tests/workers/test_limits.py::test_connection_limit_closes_the_oldest_idle_connection",
    "max_request_size": "tests/workers/test_lingering_close.py::test_default_limit_lets_ordinary_uploads_through",
    "max_request_line_size": "tests/workers/test_limits.py::test_header_limits_are_431",
    "max_header_size": "tests/workers/test_limits.py::test_header_limits_are_431",
    "max_header_count": "tests/workers/test_limits.py::test_header_limits_are_431",
    "ssl_certfile": "tests/server/test_tls.py::test_https_request_has_the_tls_extension",
    "ssl_keyfile": "tests/server/test_tls.py::test_https_request_has_the_tls_extension",
    "ssl_keyfile_password": "tests/server/test_tls.py::test_ssl_keyfile_password_unlocks_an_encrypted_key",
    "ssl_ca_certs": "tests/server/test_tls.py::test_ssl_ca_certs_verifies_client_certificates",
    "compression": "tests/test_cli.py::test_switches_override_the_file_both_ways",
    "compression_min_size": "tests/pipeline/test_compression_fused.py::test_fused_path_honours_min_size_setting",
    "health_check_path": "integrations/bengal/tests/test_bengal_preview.py::test_health_endpoint",
    "readiness_path": "tests/ops/test_health.py::test_readiness_is_503_while_a_worker_is_starting",
    "metrics_enabled": "tests/ops/test_metrics.py::test_requests_by_method_and_status_class",
    "metrics_path": "tests/ops/test_metrics.py::test_metrics_path_moves_the_page",
    "metrics_port": "tests/ops/test_metrics.py::test_metrics_port_is_a_separate_listener",
    "metrics_host": "tests/ops/test_metrics.py::test_metrics_host_picks_the_interface",
    "reload_timeout": "tests/ops/test_rolling_reload.py::test_reload_timeout_bounds_the_old_workers_drain",
    "request_id": "tests/server/test_request_id.py::test_off_means_no_header_and_no_extension",
    "static_files": "tests/pipeline/static/test_from_config.py::test_server_static_files_setting",
    "static_cache_control": "tests/pipeline/static/test_from_config.py::test_mounts_follow_the_config",
    "static_precompress": "tests/pipeline/static/test_from_config.py::test_precompress_at_start_up",
    "static_follow_symlinks": "tests/pipeline/static/test_from_config.py::test_mounts_follow_the_config",
    "static_allow_dotfiles": "tests/pipeline/static/test_from_config.py::test_mounts_follow_the_config",
    "static_stat_cache_ttl": "tests/pipeline/static/test_handler.py::test_stat_cache_window_skips_the_stat",
    "reload": "tests/supervisor/test_reload.py::test_reload_edit_break_fix",
    "reload_include": "tests/supervisor/test_reload.py::test_filter_default_suffixes_include_and_exclude",
    "reload_dirs": "tests/test_cli_output.py::test_missing_reload_dir_is_an_error",
    "reload_exclude": "tests/supervisor/test_reload.py::test_filter_default_suffixes_include_and_exclude",
    "sentry_dsn": "tests/observe/test_sentry.py::test_an_app_exception_is_reported_once_with_its_request",
    "sentry_environment": "tests/observe/test_sentry.py::test_an_app_exception_is_reported_once_with_its_request",
    "sentry_release": "tests/observe/test_sentry.py::test_an_app_exception_is_reported_once_with_its_request",
    "sentry_traces_sample_rate": "tests/observe/test_sentry.py::test_traces_sample_rate_one_sends_a_transaction",
    "otel_endpoint": "tests/observe/test_otlp_export.py::test_spans_reach_an_otlp_http_receiver_and_are_flushed_at_stop",
    "otel_service_name": "tests/observe/test_otlp_export.py::test_spans_reach_an_otlp_http_receiver_and_are_flushed_at_stop",
    "http": "tests/test_cli.py::test_no_http2_is_http_1",
    "http2_max_concurrent_streams": "tests/http2/test_attacks.py::test_excess_streams_are_refused_and_the_others_go_on",
    "http2_initial_window_size": "tests/http2/test_settings.py::test_initial_window_size_bounds_an_unread_body",
    "http2_max_frame_size": "tests/http2/test_settings.py::test_max_frame_size_is_what_we_accept",
    "http3": "tests/http3/test_http3.py::test_get_is_an_asgi_exchange_with_http_version_3",
    "quic_engine": "tests/http3/test_setup.py::test_pounce_check_refuses_zoomies_and_accepts_qh3",
    "http3_max_streams": "tests/http3/test_http3.py::test_streams_beyond_max_streams_are_rejected",
    "http3_max_data": "tests/http3/test_http3.py::test_receive_windows_are_the_advertised_transport_parameters",
    "http3_max_stream_data": "tests/http3/test_http3.py::test_receive_windows_are_the_advertised_transport_parameters",
    "http3_idle_timeout": "tests/http3/test_http3.py::test_idle_timeout_closes_the_connection",
    "http3_retry": "tests/http3/test_http3.py::test_retry_validates_the_address_first",
    "trusted_hosts": "tests/server/test_proxy_headers.py::test_trusted_proxy_sets_client_scheme_server_root_path_and_host",
    "forwarded_for_trusted_hops": "tests/server/test_proxy_headers.py::test_hops_setting",
    "proxy_headers": "tests/server/test_proxy_headers.py::test_proxy_headers_off_keeps_trust_for_nothing_else",
    "proxy_protocol": "tests/server/test_proxy_protocol.py::test_v1_sets_client_and_server",
    "rate_limit_enabled": "tests/server/test_rate_limit.py::test_burst_then_429_with_retry_after",
    "rate_limit_requests_per_second": "tests/server/test_rate_limit.py::test_burst_then_429_with_retry_after",
    "rate_limit_burst": "tests/server/test_rate_limit.py::test_exact_counts_under_concurrent_clients",
    "rate_limit_max_tracked_ips": "tests/server/test_rate_limit.py::test_table_is_bounded_and_forgets_the_least_recently_seen",
    "request_queue_enabled": "tests/server/test_load_shedding.py::test_full_worker_answers_503_at_once",
    "request_queue_max_depth": "tests/server/test_load_shedding.py::test_exact_counts_under_concurrent_load",
    "protection_exempt_paths": "tests/server/test_rate_limit.py::test_exempt_paths_are_never_limited",
    "server_timing": "tests/server/test_server_timing.py::test_every_phase_on_both_paths",
    "profile": "tests/server/test_profile.py::test_samples_every_nth",
    "middleware": "tests/server/test_middleware.py::test_middleware_from_config",
    "ws": "tests/websocket/test_websocket.py::test_ws_none_answers_upgrades_as_http",
    "websocket_compression": "tests/websocket/test_websocket.py::test_compression_negotiated_and_off_switch",
    "websocket_max_message_size": "tests/websocket/test_websocket.py::test_message_over_the_size_limit_closes_1009",
    "websocket_ping_interval": "tests/websocket/test_websocket.py::test_server_pings_and_closes_when_no_pong",
    "websocket_ping_timeout": "tests/websocket/test_websocket.py::test_server_pings_and_closes_when_no_pong",
}  # fmt: skip


def _settings() -> set[str]:
    return {f.name for f in dataclasses.fields(ServerConfig) if f.init}


@functools.cache
def _tests_in(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text())
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    )


def test_every_setting_is_proven_or_refused() -> None:
    settings = _settings()
    proven, refused = set(PROOFS), set(UNBUILT) | set(UNBUILT_TUNING)
    assert not proven & refused, f"both proven and refused: {sorted(proven & refused)}"
    assert not (proven | refused) - settings, (
        f"not settings: {sorted((proven | refused) - settings)}"
    )
    missing = settings - proven - refused
    assert not missing, f"settings with neither a proof nor a refusal: {sorted(missing)}"


def test_tuning_of_an_unbuilt_feature_names_a_refused_switch() -> None:
    assert set(UNBUILT_TUNING.values()) <= set(UNBUILT)


def test_every_proof_names_a_test_that_exists() -> None:
    gone = []
    for setting, proof in PROOFS.items():
        path, _, name = proof.partition("::")
        if not (ROOT / path).is_file() or name not in _tests_in(path):
            gone.append(f"{setting}: {proof}")
    assert not gone, "proofs naming tests that do not exist:\n" + "\n".join(gone)


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    undocumented = sorted(name for name in _settings() if f"`{name}`" not in text)
    assert not undocumented, f"settings missing from docs/configuration.md: {undocumented}"


def test_every_flag_sets_a_setting() -> None:
    settings = _settings()
    strays = sorted(option.flag for option in OPTIONS if option.field not in settings)
    assert not strays, f"flags that set no ServerConfig field: {strays}"

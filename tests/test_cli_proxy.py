"""The proxy, PROXY protocol and request id settings from flags, uvicorn's spellings,
environment variables and files; ``pounce check`` refuses what serving would refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import clean_env, project, run_pounce, write  # noqa: F401  (fixture)

from pounce.cli import build_parser, to_settings
from pounce.config import load_config_with_sources
from pounce.errors import ConfigError


def load(argv: list[str], environ: dict[str, str] | None = None, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    namespace = build_parser().parse_args([*argv, "app:app"])
    flags = getattr(namespace, "_spelt", None)
    return load_config_with_sources(
        to_settings(namespace), environ=environ or {}, cwd=cwd or Path("/nonexistent"),
        cli_flags=flags,
    )  # fmt: skip


def test_forwarded_allow_ips_is_trusted_host() -> None:
    config, sources = load(["--forwarded-allow-ips", "10.0.0.1,10.0.0.0/8"])
    assert config.trusted_hosts == {"10.0.0.1", "10.0.0.0/8"}
    assert sources["trusted_hosts"] == "--forwarded-allow-ips"


def test_forwarded_allow_ips_environment_variable() -> None:
    config, sources = load([], {"FORWARDED_ALLOW_IPS": "*"})
    assert config.trusted_hosts == {"*"} and config.trusted_hosts_wildcard
    assert sources["trusted_hosts"] == "FORWARDED_ALLOW_IPS"
    # POUNCE_TRUSTED_HOSTS wins over uvicorn's variable; a flag wins over both.
    config, _ = load([], {"FORWARDED_ALLOW_IPS": "*", "POUNCE_TRUSTED_HOSTS": "10.0.0.1"})
    assert config.trusted_hosts == {"10.0.0.1"}
    config, _ = load(["--trusted-host", "10.0.0.2"], {"FORWARDED_ALLOW_IPS": "*"})
    assert config.trusted_hosts == {"10.0.0.2"}


def test_proxy_headers_alone_trusts_the_local_proxy_as_uvicorn_does() -> None:
    config, sources = load(["--proxy-headers"])
    assert config.trusted_hosts == {"127.0.0.1", "::1"}
    assert "--proxy-headers" in sources["trusted_hosts"]
    config, _ = load(["--proxy-headers", "--forwarded-allow-ips", "10.0.0.1"])
    assert config.trusted_hosts == {"10.0.0.1"}
    config, _ = load(["--no-proxy-headers", "--trusted-host", "10.0.0.1"])
    assert not config.proxy_headers


def test_proxy_protocol_and_request_id_flags() -> None:
    config, _ = load(["--proxy-protocol", "--trusted-host", "10.0.0.0/8"])
    assert config.proxy_protocol
    config, _ = load(["--request-id", "X-Correlation-ID"])
    assert config.request_id_header == "x-correlation-id"
    config, _ = load(["--request-id", "off"])
    assert config.request_id_header is None


def test_errors_name_where_the_value_came_from() -> None:
    with pytest.raises(ConfigError, match=r"needs trusted_hosts.*from --proxy-protocol"):
        load(["--proxy-protocol"])
    with pytest.raises(ConfigError, match=r"'proxy\.example'.*from --trusted-host"):
        load(["--trusted-host", "proxy.example"])
    with pytest.raises(ConfigError, match=r"request_id.*from POUNCE_REQUEST_ID"):
        load([], {"POUNCE_REQUEST_ID": "not a header"})


def test_file_settings(tmp_path: Path) -> None:
    write(
        tmp_path / "pounce.toml",
        """
        trusted_hosts = ["10.0.0.0/8", "unix:"]
        forwarded_for_trusted_hops = 2
        proxy_protocol = true
        request_id = "x-trace-id"
        """,
    )
    config, _ = load([], cwd=tmp_path)
    assert config.proxy_protocol and config.forwarded_for_trusted_hops == 2
    assert config.request_id_header == "x-trace-id"


def test_check_runs_the_same_validation(project: Path) -> None:  # noqa: F811
    result = run_pounce("check", "myapp:app", "--proxy-protocol", cwd=project)
    assert result.returncode == 2
    assert "needs trusted_hosts" in result.stderr
    result = run_pounce(
        "check", "myapp:app", "--proxy-headers", "--forwarded-allow-ips", "*",
        "--proxy-protocol", "--request-id", "x-trace-id", cwd=project,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = run_pounce(
        "check", "myapp:app", cwd=project, env=clean_env(FORWARDED_ALLOW_IPS="not-an-ip")
    )
    assert result.returncode == 2
    assert "FORWARDED_ALLOW_IPS" in result.stderr

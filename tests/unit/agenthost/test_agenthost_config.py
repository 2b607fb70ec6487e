"""AgentHostConfig and the daemon's command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from maos.agenthost import AgentHostConfig
from maos.agenthost._config import build_arg_parser, config_from_args
from maos.controlplane.messaging import MessagingConfig
from maos.errors import InvalidArgument


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAOS_ENDPOINT", raising=False)
    config = AgentHostConfig()
    assert config.controlplane == "127.0.0.1:7700"
    assert config.workers >= 1
    assert config.kill_grace_seconds == 2.0
    assert config.host_id.count("-") >= 2  # hostname-pid-random


def test_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAOS_ENDPOINT", "cp.example:7800")
    assert AgentHostConfig().controlplane == "cp.example:7800"
    assert config_from_args([]).controlplane == "cp.example:7800"
    assert config_from_args(["--controlplane", "other:1"]).controlplane == "other:1"


def test_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAOS_TOKEN", "s3cret")
    monkeypatch.delenv("MAOS_LOG_LEVEL", raising=False)
    config = config_from_args(
        [
            "--controlplane",
            "10.0.0.1:7700",
            "--workers",
            "3",
            "--agents",
            "deploy/agents.yaml",
            "--host-id",
            "gpu-7",
            "--kill-grace",
            "0.5",
            "--log-level",
            "debug",
            "--python-path",
            "/opt/agents:/srv/more",
        ]
    )
    assert config == AgentHostConfig(
        controlplane="10.0.0.1:7700",
        workers=3,
        agents_file=Path("deploy/agents.yaml"),
        host_id="gpu-7",
        kill_grace_seconds=0.5,
        log_level="DEBUG",
        token="s3cret",
        python_path=("/opt/agents", "/srv/more"),
        messaging=MessagingConfig(),  # the flags' defaults (None, in code, means the same)
    )


def test_log_level_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAOS_LOG_LEVEL", "warning")
    assert config_from_args([]).log_level == "WARNING"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"controlplane": "nohostport"}, "endpoint must be HOST:PORT"),
        ({"controlplane": "127.0.0.1:7700,bad"}, "endpoint must be HOST:PORT"),
        ({"controlplane": "host:99999"}, "endpoint must be HOST:PORT"),
        ({"workers": 0}, "workers must be from 1 to 1024"),
        ({"host_id": "has space"}, "host_id must be"),
        ({"kill_grace_seconds": 0}, "kill_grace_seconds must be in"),
        ({"log_level": "LOUD"}, "log_level must be one of"),
    ],
)
def test_invalid_config(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        AgentHostConfig(**kwargs)  # type: ignore[arg-type]


def test_parser_documents_every_option() -> None:
    text = build_arg_parser().format_help()
    for option in ("--controlplane", "--workers", "--agents", "--host-id", "--kill-grace", "--log-level"):
        assert option in text


def test_the_relays_messaging_bounds_come_from_the_same_flags_as_the_control_planes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAOS_MESSAGE_TTL", "120")
    config = config_from_args(["--mailbox-size", "50", "--message-max-bytes", "64KiB"])
    assert config.messaging == MessagingConfig(max_queued=50, default_ttl_seconds=120.0, max_payload_bytes=65536)
    with pytest.raises(InvalidArgument, match="--mailbox-size must be at least 1"):
        config_from_args(["--mailbox-size", "0"])

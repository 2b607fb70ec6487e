"""The control plane's command line: the state cache's TTL and the messaging bounds."""

from __future__ import annotations

import re

import pytest
from maos.controlplane.__main__ import parse_args
from maos.controlplane.messaging import MessagingConfig
from maos.errors import InvalidArgument


def test_the_state_cache_ttl_defaults_to_an_hour_and_takes_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MAOS_STATE_CACHE_TTL", raising=False)
    assert parse_args([]).state_cache_ttl_seconds == 3600.0
    assert parse_args(["--state-cache-ttl", "90"]).state_cache_ttl_seconds == 90.0
    monkeypatch.setenv("MAOS_STATE_CACHE_TTL", "2.5")
    assert parse_args([]).state_cache_ttl_seconds == 2.5


@pytest.mark.parametrize(("value", "says"), [("0", "at least 0.001"), ("soon", "not a number"), ("nan", "at least")])
def test_a_bad_state_cache_ttl_is_refused_with_one_line(
    value: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--state-cache-ttl", value])
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


def test_the_messaging_bounds_come_from_flags_and_name_the_flag_when_out_of_range(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = parse_args(
        ["--mailbox-size", "5", "--message-ttl", "60", "--message-max-bytes", "4KiB", "--messages-memory", "1MiB"]
    )
    assert config.messaging == MessagingConfig(
        max_queued=5, default_ttl_seconds=60.0, max_payload_bytes=4096, max_total_bytes=1 << 20
    )
    assert parse_args([]).messaging == MessagingConfig()
    for argv, says in (
        (["--mailbox-size", "0"], "--mailbox-size must be at least 1"),
        (["--message-ttl", "99999999"], "--message-ttl must not exceed 2592000 s (30 days)"),
        (["--message-max-bytes", "2MiB", "--messages-memory", "1MiB"], "--message-max-bytes must not exceed"),
        (["--messages-memory", "lots"], "--messages-memory 'lots' is not a size"),
    ):
        with pytest.raises(InvalidArgument, match=re.escape(says)):
            parse_args(argv)

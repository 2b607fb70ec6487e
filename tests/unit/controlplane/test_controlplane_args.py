"""The control plane's command line: the state cache's TTL knob."""

from __future__ import annotations

import pytest
from maos.controlplane.__main__ import parse_args


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

"""`maosctl state`: input is checked before any RPC and fails with one clear line; output views."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner
from maos.client._state_client import RawJson, StateEvent, StateValue
from maos.client.cli import _state as state_cli
from maos.client.cli import cli
from maos.client.cli._app import MaosGroup
from maos.client.cli._state_views import (
    caller_metadata,
    event_line,
    list_table,
    parse_value,
    value_dict,
)
from maos.errors import InvalidArgument

WHEN = dt.datetime(2025, 1, 31, 12, 0, tzinfo=dt.UTC)


def maosctl() -> click.Group:
    """The real root group with `state` under it, as the CLI registers it."""
    root = MaosGroup(name="maosctl", params=cli.params, callback=cli.callback, commands=dict(cli.commands))
    root.add_command(state_cli.state_group)
    return root


class FakeState:
    """Stands in for StateClient; records calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def put(self, key: str, value: Any, *, namespace: str | None = None) -> StateValue:
        self.calls.append(("put", (key, value), {"namespace": namespace}))
        return StateValue(key, value, 3, 17, namespace or "tree:R1", WHEN)

    def get(self, key: str, *, namespace: str | None = None) -> StateValue | None:
        self.calls.append(("get", (key,), {"namespace": namespace}))
        return None if key == "missing" else StateValue(key, {"a": [1, 2]}, 2, 9, namespace or "tree:R1", WHEN)

    def watch(self, key: str | None = None, **kw: Any) -> Iterator[StateEvent]:
        self.calls.append(("watch", (key,), kw))
        for rev in range(1, 100):
            yield StateEvent(key or "k", rev, rev, rev + 10, "tree:R1", updated_at=WHEN)


@pytest.fixture
def no_rpc(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_endpoint: str) -> None:
        raise AssertionError("an RPC was attempted")

    monkeypatch.setattr(state_cli, "open_state_client", refuse)
    monkeypatch.delenv("MAOS_TASK_ID", raising=False)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeState:
    client = FakeState()
    monkeypatch.setattr(state_cli, "open_state_client", lambda _endpoint: client)
    monkeypatch.setenv("MAOS_TASK_ID", "T1")
    monkeypatch.setenv("MAOS_ATTEMPT", "2")
    return client


@pytest.mark.usefixtures("no_rpc")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["put", "k", "hello", "-n", "global"],
            re.escape("error: JSON is not valid JSON: Expecting value at line 1 column 1; a JSON string needs quotes")
            + re.escape(""", like '"hello"'"""),
        ),
        (["put", "k", '{"a": 1,}', "-n", "global"], "error: JSON is not valid JSON: .* at line 1 column 9$"),
        (["cas", "k", "NaN", "--expect", "1", "-n", "global"], "error: JSON is not valid JSON: NaN is not JSON"),
        (["put", "k", "1"], re.escape("error: name a namespace: --namespace tree:<root id> or global")),
        (["get", "k"], re.escape("error: name a namespace: --namespace tree:<root id> or global")),
        (["list", "--namespace", "R1"], "error: --namespace 'R1' is not valid: use tree:<root task id> or global"),
        (["get", "", "-n", "tree:R1"], "error: KEY is empty: name the key"),
        (["delete", "", "-n", "tree:R1"], "error: KEY is empty: name the key"),
    ],
)
def test_bad_input_is_one_line_before_any_rpc(args: list[str], message: str) -> None:
    """`message` is a regular expression for the whole-line start."""
    result = CliRunner().invoke(maosctl(), ["state", *args])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert re.match(message, lines[0]), lines[0]


@pytest.mark.usefixtures("no_rpc")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cas", "k", "1", "-n", "global"], "Missing option '--expect'"),
        (["cas", "k", "1", "--expect", "-1", "-n", "global"], "-1 is not in the range x>=0"),
        (["delete", "k", "--expect", "0", "-n", "global"], "0 is not in the range x>=1"),
        (["watch", "k", "--prefix", "p/", "-n", "global"], "give KEY or --prefix, not both"),
        (["watch", "k", "--count", "0", "-n", "global"], "0 is not in the range x>=1"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(maosctl(), ["state", *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_put_sends_the_json_text_as_typed(fake: FakeState) -> None:
    result = CliRunner().invoke(maosctl(), ["state", "put", "cfg", ' {"depth": 3} '])
    assert result.exit_code == 0, result.output
    assert result.stdout == "put cfg in tree:R1: version 3 (revision 17)\n"
    [(name, (key, value), kw)] = fake.calls
    assert (name, key, kw) == ("put", "cfg", {"namespace": None})  # the server resolves the task's tree
    assert isinstance(value, RawJson) and value == b'{"depth": 3}'


def test_put_reads_stdin(fake: FakeState) -> None:
    result = CliRunner().invoke(maosctl(), ["--format", "json", "state", "put", "k", "-", "-n", "global"], input="[1]")
    assert result.exit_code == 0, result.output
    assert fake.calls[0][1] == ("k", RawJson(b"[1]"))
    assert '"version": 3' in result.stdout and '"namespace": "global"' in result.stdout


def test_get_prints_value_and_missing_key_is_an_error(fake: FakeState) -> None:
    result = CliRunner().invoke(maosctl(), ["state", "get", "k"])
    assert result.exit_code == 0, result.output
    assert "version:    2" in result.stdout and "revision:   9" in result.stdout
    assert result.stdout.rstrip().endswith('{\n  "a": [\n    1,\n    2\n  ]\n}')
    missing = CliRunner().invoke(maosctl(), ["state", "get", "missing"])
    assert missing.exit_code == 1
    assert missing.stderr == "error: key 'missing' not found\n"


def test_watch_streams_json_lines_and_stops_after_count(fake: FakeState) -> None:
    result = CliRunner().invoke(maosctl(), ["--format", "json", "state", "watch", "k", "--count", "3", "--after", "5"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith('{"namespace":"tree:R1","key":"k","revision":11,"version":1,"deleted":false')
    assert fake.calls == [("watch", ("k",), {"prefix": None, "after_revision": 5, "namespace": None})]


def test_parse_value_keeps_valid_json() -> None:
    assert parse_value(' "text" \n') == b'"text"'
    assert parse_value("12345678901234567890123") == b"12345678901234567890123"
    with pytest.raises(InvalidArgument, match="Infinity is not JSON"):
        parse_value("Infinity")


def test_caller_metadata_names_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAOS_TASK_ID", raising=False)
    assert caller_metadata() == ()
    monkeypatch.setenv("MAOS_TASK_ID", "T9")
    monkeypatch.delenv("MAOS_ATTEMPT", raising=False)
    assert caller_metadata() == (("maos-task-id", "T9"),)
    monkeypatch.setenv("MAOS_ATTEMPT", "3")
    assert caller_metadata() == (("maos-task-id", "T9"), ("maos-attempt", "3"))


def test_views() -> None:
    entries = [
        StateValue("a", {"x": "y" * 100}, 1, 4, "global", WHEN),
        StateValue("bb", None, 12, 40, "global", None),
    ]
    table = list_table(entries, keys_only=False).splitlines()
    assert table[0].split() == ["KEY", "VERSION", "REVISION", "UPDATED", "VALUE"]
    assert table[1].startswith("a          1         4  2025-01-31T12:00:00Z")
    assert table[1].endswith("…") and len(table[1]) < 120
    assert table[2].split() == ["bb", "12", "40", "-", "null"]
    assert list_table([], keys_only=True) == "(no keys)"
    assert value_dict(entries[0], with_value=False) == {
        "namespace": "global",
        "key": "a",
        "version": 1,
        "revision": 4,
        "updated_at": "2025-01-31T12:00:00Z",
    }
    gone = StateEvent("a", None, 0, 5, "global", deleted=True)
    assert event_line(gone, as_json=False) == "rev 5      a  deleted"
    assert event_line(StateEvent("a", [1], 2, 6, "global"), as_json=False) == "rev 6      a  v2 = [1]"

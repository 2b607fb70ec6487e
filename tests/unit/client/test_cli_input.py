"""--input / --label validation happens before any RPC and fails with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from maos.client import Client
from maos.client.cli import cli
from maos.client.cli._common import parse_json_input, parse_labels
from maos.errors import InvalidArgument


def test_valid_input_is_decoded() -> None:
    assert parse_json_input('{"a": [1, 2]}', None) == {"a": [1, 2]}
    assert parse_json_input(None, None) is None
    assert parse_json_input('"text"', None) == "text"


def test_invalid_input_names_the_position() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_json_input('{"a": 1,}', None)
    assert str(info.value).startswith("--input is not valid JSON:")
    assert "line 1 column 9" in str(info.value)


def test_input_file(tmp_path: Path) -> None:
    good = tmp_path / "in.json"
    good.write_text('{"path": "/data"}')
    assert parse_json_input(None, good) == {"path": "/data"}
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope\n}")
    with pytest.raises(InvalidArgument, match=r"--input-file .*bad.json is not valid JSON: .* line 2 column 3"):
        parse_json_input(None, bad)
    with pytest.raises(InvalidArgument, match="No such file"):
        parse_json_input(None, tmp_path / "missing.json")


def test_input_and_input_file_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not both"):
        parse_json_input("{}", tmp_path / "x.json")


def test_labels() -> None:
    assert parse_labels(("a=1", "b=x=y", "c=")) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(InvalidArgument, match="key=value"):
        parse_labels(("novalue",))


@pytest.fixture
def no_rpc(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an RPC was attempted")

    monkeypatch.setattr(Client, "_stubs", refuse)


@pytest.mark.usefixtures("no_rpc")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "{bad"], "error: --input is not valid JSON: Expecting property name"),
        (["--priority", "urgent"], "error: unknown priority 'urgent'; expected one of: critical, high, medium, low"),
        (["--type", "poetry"], "error: unknown task type 'poetry'; expected one of: research, coding"),
        (["--label", "oops"], "error: --label 'oops' must look like key=value"),
    ],
)
def test_cli_rejects_bad_options_before_any_rpc(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["task", "submit", "hello", *args])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message)
    assert "Traceback" not in result.output

"""Table and value formatting: what a person reads."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from maos.client.cli._output import (
    duration,
    iso,
    pretty_value,
    render_fields,
    render_table,
    size,
    to_json,
    truncate,
)


def test_table_columns_are_aligned() -> None:
    text = render_table(("id", "status", "n"), [("a", "running", 5), ("bbbb", "ok", 12345)], right=(2,))
    assert text.splitlines() == [
        "ID    STATUS       N",
        "a     running      5",
        "bbbb  ok       12345",
    ]


def test_every_line_starts_each_column_at_the_same_offset() -> None:
    rows = [("x" * n, str(n), "tail") for n in (1, 7, 3)]
    lines = render_table(("name", "len", "z"), rows).splitlines()
    offsets = {line.index("tail") if "tail" in line else line.index("Z") for line in lines}
    assert len(offsets) == 1


def test_none_cells_render_as_dash_and_long_cells_are_cut() -> None:
    text = render_table(("a", "b"), [(None, "x" * 50)], max_widths={1: 10})
    row = text.splitlines()[1]
    assert row.startswith("-  ")
    assert row.endswith("xxxxxxxxx…")
    assert len(row.split("  ", 1)[1]) == 10


def test_empty_table_says_so() -> None:
    assert render_table(("a",), [], empty="no tasks") == "no tasks"


def test_ragged_row_is_a_bug_not_a_garbled_table() -> None:
    with pytest.raises(ValueError, match="2 cells"):
        render_table(("a", "b", "c"), [("1", "2")])


def test_truncate_flattens_newlines() -> None:
    assert truncate("line one\nline two", 100) == "line one line two"
    assert truncate("abcdef", 4) == "abc…"


def test_fields_align_values_and_skip_empty() -> None:
    text = render_fields([("id", "t1"), ("description", "hello"), ("host", None), ("agent", "")])
    assert text.splitlines() == ["id:           t1", "description:  hello"]


def test_fields_indent_continuation_lines() -> None:
    text = render_fields([("k", "one\ntwo")])
    assert text.splitlines() == ["k:  one", "    two"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.4213, "0.42s"), (12.34, "12.3s"), (245, "4m05s"), (7380, "2h03m"), (-1, "0.00s")],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_size() -> None:
    assert size(512) == "512B"
    assert size(1536) == "1.5KiB"
    assert size(3 * 1024**3) == "3.0GiB"


def test_iso_is_utc_with_z_and_none_when_unset() -> None:
    ts = Timestamp(seconds=1_735_689_600, nanos=250_000_000)
    assert iso(ts) == "2025-01-01T00:00:00.250000Z"
    assert iso(Timestamp()) is None
    assert iso(ts, present=False) is None


def test_to_json_keeps_key_order_and_encodes_bytes() -> None:
    text = to_json({"b": 1, "a": b"\x00\x01"})
    assert text.index('"b"') < text.index('"a"')
    assert '"base64": "AAE="' in text


def test_pretty_value() -> None:
    assert pretty_value("plain text") == "plain text"
    assert pretty_value(None) == "(no result)"
    assert pretty_value({"x": 1}) == '{\n  "x": 1\n}'

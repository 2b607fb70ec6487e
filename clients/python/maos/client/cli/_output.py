"""Output primitives: aligned text tables, key/value blocks, JSON documents, units.

Pure functions of their arguments (no terminal access) so they are unit-tested
as plain strings.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from google.protobuf.timestamp_pb2 import Timestamp

ELLIPSIS = "…"
BAR_FULL = "█"
BAR_EMPTY = "░"


def truncate(text: str, width: int) -> str:
    """`text` on one line, cut to `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    if width <= 0 or len(flat) <= width:
        return flat
    return flat[: max(width - 1, 0)] + ELLIPSIS


def progress_bar(fraction: float, width: int) -> str:
    """ "[████░░░░]": `fraction` (clamped to 0..1) of `width` cells filled."""
    filled = round(min(max(fraction, 0.0), 1.0) * width)
    return f"[{BAR_FULL * filled}{BAR_EMPTY * (width - filled)}]"


def render_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    right: Iterable[int] = (),
    max_widths: dict[int, int] | None = None,
    empty: str = "(none)",
) -> str:
    """An aligned table: upper-case headers, two spaces between columns.

    `right` lists the column indexes to right-align (numbers); `max_widths`
    caps columns (index -> characters), cutting long cells with an ellipsis.
    None renders as "-". Returns `empty` when there are no rows.
    """
    caps = max_widths or {}
    body = [
        [truncate("-" if cell is None else str(cell), caps.get(i, 0)) for i, cell in enumerate(row)] for row in rows
    ]
    if not body:
        return empty
    head = [h.upper() for h in headers]
    widths = [len(h) for h in head]
    for row in body:
        if len(row) != len(head):
            raise ValueError(f"row has {len(row)} cells, table has {len(head)} columns: {row!r}")
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    right_cols = set(right)

    def line(cells: Sequence[str]) -> str:
        parts = [cell.rjust(widths[i]) if i in right_cols else cell.ljust(widths[i]) for i, cell in enumerate(cells)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(head), *(line(row) for row in body)])


def render_fields(pairs: Iterable[tuple[str, object]]) -> str:
    """A key/value block with the values aligned; None values are left out."""
    items = [(key, str(value)) for key, value in pairs if value is not None and value != ""]
    if not items:
        return ""
    width = max(len(key) for key, _ in items) + 1
    lines = []
    for key, value in items:
        first, *rest = value.splitlines() or [""]
        lines.append(f"{(key + ':').ljust(width)}  {first}")
        lines.extend(" " * (width + 2) + more for more in rest)
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        # Non-JSON payloads (another content type) travel as base64 in a JSON document.
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def to_json(document: Any) -> str:
    """One indented JSON document (orjson), keys in the order the views build them."""
    return orjson.dumps(document, default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def pretty_value(value: Any) -> str:
    """A decoded result for a person: strings as they are, anything else as indented JSON."""
    if value is None:
        return "(no result)"
    if isinstance(value, str):
        return value
    return to_json(value)


def timestamp(ts: Timestamp, present: bool = True) -> dt.datetime | None:
    """A Timestamp as an aware UTC datetime; None when unset."""
    if not present or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime(tzinfo=dt.UTC)


def iso(ts: Timestamp, present: bool = True) -> str | None:
    """ISO-8601 UTC ("2025-01-31T12:00:00.250000Z"), or None when unset."""
    when = timestamp(ts, present)
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def seconds_between(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    """end - start in seconds, or None if either is unknown."""
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def duration(seconds: float | None) -> str:
    """Human duration: "0.42s", "12.3s", "4m05s", "2h03m"; "-" when unknown."""
    if seconds is None:
        return "-"
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def size(n: int) -> str:
    """Bytes in binary units: "512B", "1.5KiB", "3.2GiB"."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def ago(when: dt.datetime | None, now: dt.datetime) -> str:
    """How long before `now` (“3.1s”, “5m02s”), "-" when unknown."""
    return duration(None if when is None else (now - when).total_seconds())

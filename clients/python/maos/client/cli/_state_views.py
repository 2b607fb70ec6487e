"""`maosctl state` input checks and output: pure functions, tested without a control plane."""

from __future__ import annotations

import json
import os
from typing import Any

import orjson
from maos.errors import InvalidArgument

from .._config import ATTEMPT_ENV, TASK_ID_ENV
from .._state_client import RawJson, StateEvent, StateValue
from ._output import render_fields, render_table, to_json, truncate

VALUE_WIDTH = 60
_NO_NAMESPACE = (
    "name a namespace: --namespace tree:<root id> or global (a default namespace exists only inside a task, "
    f"where {TASK_ID_ENV} names it)"
)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_value(text: str, what: str = "VALUE") -> RawJson:
    """The JSON text to store, checked before any RPC; InvalidArgument naming the position."""
    try:
        json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.pos == 0 and text.strip() and text.strip()[0] not in '{["-0123456789tfn':
            hint = f"; a JSON string needs quotes, like '\"{truncate(text, 20)}\"'"
        raise InvalidArgument(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{hint}"
        ) from None
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not valid JSON: {exc}") from None
    return RawJson(text.strip().encode("utf-8"))


def check_key(key: str, what: str = "KEY") -> str:
    if not key:
        raise InvalidArgument(f"{what} is empty: name the key")
    return key


def check_namespace(namespace: str | None) -> str | None:
    """--namespace as given (None: the caller's task tree), checked before any RPC."""
    if namespace is None:
        if not os.environ.get(TASK_ID_ENV):
            raise InvalidArgument(_NO_NAMESPACE)
        return None
    if namespace == "global" or (namespace.startswith("tree:") and len(namespace) > len("tree:")):
        return namespace
    raise InvalidArgument(f"--namespace {namespace!r} is not valid: use tree:<root task id> or global")


def caller_metadata() -> tuple[tuple[str, str], ...]:
    """The calling task (MAOS_TASK_ID, and MAOS_ATTEMPT when set), so a command agent's
    default namespace is its own tree."""
    task_id = os.environ.get(TASK_ID_ENV, "")
    if not task_id:
        return ()
    attempt = os.environ.get(ATTEMPT_ENV, "")
    return (("maos-task-id", task_id),) + ((("maos-attempt", attempt),) if attempt.isdigit() else ())


def compact(value: Any) -> str:
    """A JSON value on one line."""
    return orjson.dumps(value).decode()


def _when(entry: StateValue | StateEvent) -> str | None:
    return None if entry.updated_at is None else entry.updated_at.isoformat().replace("+00:00", "Z")


def value_dict(entry: StateValue, *, with_value: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"namespace": entry.namespace, "key": entry.key}
    if with_value:
        doc["value"] = entry.value
    doc |= {"version": entry.version, "revision": entry.revision, "updated_at": _when(entry)}
    return doc


def value_fields(entry: StateValue) -> str:
    pairs: list[tuple[str, object]] = [
        ("key", entry.key),
        ("namespace", entry.namespace),
        ("version", entry.version),
        ("revision", entry.revision),
        ("updated", _when(entry)),
    ]
    return render_fields(pairs) + "\n" + to_json(entry.value)


def written_text(verb: str, entry: StateValue) -> str:
    return f"{verb} {entry.key} in {entry.namespace}: version {entry.version} (revision {entry.revision})"


def list_table(entries: list[StateValue], *, keys_only: bool) -> str:
    if keys_only:
        rows: list[list[object]] = [[e.key, e.version, e.revision, _when(e)] for e in entries]
        return render_table(["key", "version", "revision", "updated"], rows, right=(1, 2), empty="(no keys)")
    rows = [[e.key, e.version, e.revision, _when(e), compact(e.value)] for e in entries]
    return render_table(
        ["key", "version", "revision", "updated", "value"],
        rows,
        right=(1, 2),
        max_widths={4: VALUE_WIDTH},
        empty="(no keys)",
    )


def event_dict(event: StateEvent) -> dict[str, Any]:
    return {
        "namespace": event.namespace,
        "key": event.key,
        "revision": event.revision,
        "version": event.version,
        "deleted": event.deleted,
        "value": event.value,
        "updated_at": _when(event),
    }


def event_line(event: StateEvent, *, as_json: bool) -> str:
    """One line per change: JSON Lines with --format json (so it streams), else aligned text."""
    if as_json:
        return compact(event_dict(event))
    what = "deleted" if event.deleted else f"v{event.version} = {truncate(compact(event.value), 2 * VALUE_WIDTH)}"
    return f"rev {event.revision:<6} {event.key}  {what}"

"""`maosctl state ...`: shared state for command agents and operators.

Inside a task (MAOS_TASK_ID set, as agent hosts do for command agents) the
default namespace is the task's tree; elsewhere name one with `--namespace
tree:<root id>` or `--namespace global`. Values are JSON text: quote strings
(`'"text"'`); `-` reads the value from stdin.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import grpc
from maos.errors import NotFound

from .._config import CHANNEL_OPTIONS
from .._state_client import StateClient
from ._common import CliState, format_option, pass_state
from ._state_views import (
    caller_metadata,
    check_key,
    check_namespace,
    event_line,
    list_table,
    parse_value,
    value_dict,
    value_fields,
    written_text,
)

_F = TypeVar("_F", bound=Callable[..., Any])


def open_state_client(endpoint: str) -> StateClient:
    """A StateClient on its own channel, closed when the command ends."""
    channel = grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
    click.get_current_context().call_on_close(channel.close)
    return StateClient(channel, endpoint, metadata=caller_metadata)


def namespace_option(command: _F) -> _F:
    return click.option(
        "--namespace",
        "-n",
        metavar="NS",
        default=None,
        help="tree:<root task id> or global (default: the task tree of MAOS_TASK_ID).",
    )(command)


def _read_value(text: str) -> str:
    return sys.stdin.read() if text == "-" else text


@click.group("state")
def state_group() -> None:
    """Shared JSON state by namespace: get, put, cas, delete, list, watch."""


@state_group.command("get")
@click.argument("key")
@namespace_option
@format_option
@pass_state
def get(state: CliState, key: str, namespace: str | None) -> None:
    """Print KEY's value, version and revision (exit 1 when it does not exist)."""
    ns = check_namespace(namespace)
    check_key(key)
    entry = open_state_client(state.endpoint).get(key, namespace=ns)
    if entry is None:
        where = f" in {ns}" if ns else ""
        raise NotFound(f"key {key!r} not found{where}")
    state.emit(value_dict(entry), lambda: value_fields(entry))


@state_group.command("put")
@click.argument("key")
@click.argument("value", metavar="JSON")
@namespace_option
@format_option
@pass_state
def put(state: CliState, key: str, value: str, namespace: str | None) -> None:
    """Set KEY to the JSON value (whatever its version); `-` reads it from stdin."""
    ns = check_namespace(namespace)
    check_key(key)
    raw = parse_value(_read_value(value), "JSON")
    entry = open_state_client(state.endpoint).put(key, raw, namespace=ns)
    state.emit(value_dict(entry, with_value=False), lambda: written_text("put", entry))


@state_group.command("cas")
@click.argument("key")
@click.argument("value", metavar="JSON")
@click.option(
    "--expect",
    "expected",
    type=click.IntRange(min=0),
    required=True,
    metavar="VERSION",
    help="Write only if KEY is at this version (0: only if it does not exist).",
)
@namespace_option
@format_option
@pass_state
def cas(state: CliState, key: str, value: str, expected: int, namespace: str | None) -> None:
    """Compare-and-set: set KEY to JSON only if it is at --expect VERSION."""
    ns = check_namespace(namespace)
    check_key(key)
    raw = parse_value(_read_value(value), "JSON")
    entry = open_state_client(state.endpoint).cas(key, raw, expected, namespace=ns)
    state.emit(value_dict(entry, with_value=False), lambda: written_text("set", entry))


@state_group.command("delete")
@click.argument("key")
@click.option(
    "--expect",
    "expected",
    type=click.IntRange(min=1),
    default=None,
    metavar="VERSION",
    help="Delete only if KEY is at this version.",
)
@namespace_option
@format_option
@pass_state
def delete(state: CliState, key: str, expected: int | None, namespace: str | None) -> None:
    """Delete KEY (a key that does not exist is not an error)."""
    ns = check_namespace(namespace)
    check_key(key)
    deleted = open_state_client(state.endpoint).delete(key, expected_version=expected or 0, namespace=ns)
    text = f"deleted {key}" if deleted else f"{key} did not exist; nothing deleted"
    state.emit({"key": key, "deleted": deleted}, lambda: text)


@state_group.command("list")
@click.argument("prefix", default="")
@click.option("--keys-only", is_flag=True, help="Leave the values out.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after this many keys.")
@namespace_option
@format_option
@pass_state
def list_(state: CliState, prefix: str, keys_only: bool, limit: int | None, namespace: str | None) -> None:
    """List the keys starting with PREFIX (all keys without one), in order."""
    ns = check_namespace(namespace)
    client = open_state_client(state.endpoint)
    entries = list(client.list(prefix, namespace=ns, keys_only=keys_only, limit=limit))
    state.emit(
        [value_dict(e, with_value=not keys_only) for e in entries], lambda: list_table(entries, keys_only=keys_only)
    )


@state_group.command("watch")
@click.argument("key", required=False)
@click.option("--prefix", default=None, metavar="P", help="Watch every key starting with P instead of one key.")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=0,
    metavar="REV",
    help="Only changes after this revision (default 0: every change still in the log).",
)
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N", help="Stop after N changes.")
@namespace_option
@format_option
@pass_state
def watch(
    state: CliState, key: str | None, prefix: str | None, after: int, count: int | None, namespace: str | None
) -> None:
    """Print every change of KEY (or of the keys under --prefix; neither: the whole namespace)
    as it is committed, in order; one JSON document per line with --format json."""
    ns = check_namespace(namespace)
    if key is not None and prefix is not None:
        raise click.UsageError("give KEY or --prefix, not both")
    if key is not None:
        check_key(key)
    events = open_state_client(state.endpoint).watch(key, prefix=prefix, after_revision=after, namespace=ns)
    try:
        for event in itertools.islice(events, count):
            click.echo(event_line(event, as_json=state.json))
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None
    finally:
        events.close()

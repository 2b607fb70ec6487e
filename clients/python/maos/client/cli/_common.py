"""State shared by every command: endpoint, output format, the client."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from maos.errors import InvalidArgument

from .._config import DEFAULT_ENDPOINT, ENDPOINT_ENV
from .._sync_client import Client
from ._output import to_json

FORMATS = ("table", "json")
_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass
class CliState:
    """What the root group resolved; commands receive it with `@pass_state`."""

    endpoint: str = DEFAULT_ENDPOINT
    format: str = "table"
    _client: Client | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        """True when the user asked for --format json."""
        return self.format == "json"

    def client(self) -> Client:
        """The blocking client for this invocation (one channel, opened on first use)."""
        if self._client is None:
            self._client = Client(self.endpoint)
        return self._client

    def close(self) -> None:
        """Close the client's channel, if one was opened."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def emit(self, document: Any, text: Callable[[], str]) -> None:
        """Print `document` as JSON or `text()` as a table, per --format."""
        click.echo(to_json(document) if self.json else text())


pass_state = click.make_pass_decorator(CliState, ensure=True)


def _set_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(CliState).format = value


def format_option(command: _F) -> _F:
    """Add `--format table|json` to a command; it overrides the global --format."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS, case_sensitive=False),
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_set_format,
        help="Output as an aligned table (default) or one JSON document.",
    )(command)


def endpoint_option(command: _F) -> _F:
    """The --endpoint option (root group)."""
    return click.option(
        "--endpoint",
        envvar=ENDPOINT_ENV,
        default=DEFAULT_ENDPOINT,
        show_default=True,
        metavar="HOST:PORT",
        help=f"Control plane address; several comma-separated for active/standby (env {ENDPOINT_ENV}).",
    )(command)


def parse_json_input(text: str | None, path: Path | None) -> Any:
    """The task input from --input JSON or --input-file PATH; InvalidArgument when it is not JSON.

    Checked here, before any RPC, so a typo costs nothing and names the problem.
    """
    if text is not None and path is not None:
        raise InvalidArgument("give --input or --input-file, not both")
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument(f"--input-file {path}: {exc.strerror or exc}") from None
        where = f"--input-file {path}"
    elif text is not None:
        where = "--input"
    else:
        return None
    try:
        # The stdlib parser gives line/column positions a person can act on.
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def parse_labels(pairs: tuple[str, ...]) -> dict[str, str]:
    """{k: v} from repeated --label k=v; InvalidArgument for a pair without "=" or key."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"--label {pair!r} must look like key=value")
        labels[key.strip()] = value
    return labels


def parse_params(text: str | None) -> dict[str, Any]:
    """Template parameters from --params JSON: a JSON object of name -> value ({} when not given).

    Checked before any RPC: not JSON, or JSON that is not an object, is one clear error.
    """
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"--params is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(value, dict):
        kind = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
        raise InvalidArgument(f'--params must be a JSON object of name -> value (like {{"n": 3}}), got {kind}')
    return value

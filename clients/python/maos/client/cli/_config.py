"""`maosctl config ...`: read and change the control plane's live settings."""

from __future__ import annotations

import click

from ._common import CliState, format_option, pass_state
from ._output import render_table


def _entry_dict(entry: object) -> dict[str, str]:
    return {
        "key": getattr(entry, "key", ""),
        "value": getattr(entry, "value", ""),
        "default": getattr(entry, "default_value", ""),
        "description": getattr(entry, "description", ""),
    }


@click.group("config")
def config_group() -> None:
    """Live settings of the control plane, such as scheduling.max_queue_time.

    Example: maosctl config set scheduling.max_queue_time 300
    """


@config_group.command("list")
@format_option
@pass_state
def list_(state: CliState) -> None:
    """Every setting with its value, default and meaning."""
    entries = state.client().get_config()
    rows = [(e.key, e.value, e.default_value, e.description) for e in entries]
    state.emit(
        [_entry_dict(e) for e in entries],
        lambda: render_table(["key", "value", "default", "description"], rows, max_widths={3: 70}),
    )


@config_group.command("get")
@click.argument("key")
@format_option
@pass_state
def get(state: CliState, key: str) -> None:
    """Print one setting's value."""
    [entry] = state.client().get_config(key)
    state.emit(_entry_dict(entry), lambda: entry.value)


@config_group.command("set")
@click.argument("key")
@click.argument("value")
@format_option
@pass_state
def set_(state: CliState, key: str, value: str) -> None:
    """Change a setting; it applies at once and is kept across restarts."""
    entry = state.client().set_config(key, value)
    state.emit(_entry_dict(entry), lambda: f"{entry.key} = {entry.value}  (default {entry.default_value})")

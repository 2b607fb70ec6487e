"""The task-spec options shared by `task submit`, `batch add-task` and `task plan`.

`spec_options()` adds the options to a command and hands the command one
`spec` argument instead: a ready `SpecOptions` dict for `task_spec`, checked
(JSON input, labels, enum names, number ranges) before the command runs, so a
bad option costs no RPC and gets one `error: ...` line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from .._enums import PRIORITY, TASK_TYPE
from .._specs import SpecOptions, task_spec
from ._common import parse_json_input, parse_labels

_R = TypeVar("_R")
_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

_POSITIVE = click.FloatRange(min=0, min_open=True)

# (option decorator, parameter name) in the order `--help` lists them.
_BASIC: tuple[tuple[_Decorator, str], ...] = (
    (
        click.option("--type", "task_type", metavar="TYPE", help=f"Task type: {', '.join(TASK_TYPE.names)}."),
        "task_type",
    ),
    (
        click.option("--agent-type", metavar="NAME", help="Agent type to run it (see `maosctl agent types`)."),
        "agent_type",
    ),
    (click.option("--priority", metavar="P", help=f"{', '.join(PRIORITY.names)} (default medium)."), "priority"),
    (click.option("--input", "input_json", metavar="JSON", help="Task input as a JSON document."), "input_json"),
    (
        click.option(
            "--input-file",
            type=click.Path(path_type=Path, dir_okay=False),
            metavar="PATH",
            help="Read the task input (JSON) from a file.",
        ),
        "input_file",
    ),
    (click.option("--label", multiple=True, metavar="KEY=VALUE", help="Attach a label (repeatable)."), "label"),
)
_LIMITS: tuple[tuple[_Decorator, str], ...] = (
    (click.option("--timeout", type=_POSITIVE, metavar="SECONDS", help="Run-time limit of one attempt."), "timeout"),
    (
        click.option(
            "--queue-timeout", type=_POSITIVE, metavar="SECONDS", help="Fail if not started within this long."
        ),
        "queue_timeout",
    ),
    (
        click.option("--max-retries", type=click.IntRange(min=0), metavar="N", help="Retries after a failure."),
        "max_retries",
    ),
    (
        click.option(
            "--retry-initial", type=click.FloatRange(min=0), metavar="SECONDS", help="Wait before the first retry."
        ),
        "retry_initial",
    ),
    (
        click.option(
            "--retry-backoff", type=click.FloatRange(min=1), metavar="X", help="Multiply the wait by X per retry."
        ),
        "retry_backoff",
    ),
    (
        click.option(
            "--retry-max", type=click.FloatRange(min=0), metavar="SECONDS", help="Longest wait between retries."
        ),
        "retry_max",
    ),
    (
        click.option(
            "--non-retryable", multiple=True, metavar="KIND", help="Never retry errors of this kind (repeatable)."
        ),
        "non_retryable",
    ),
    (
        click.option(
            "--capability",
            "capabilities",
            multiple=True,
            metavar="NAME",
            help="Required agent capability (repeatable).",
        ),
        "capabilities",
    ),
)
_GRAPH: tuple[tuple[_Decorator, str], ...] = (
    (click.option("--depends-on", multiple=True, metavar="ID", help="Run after this task (repeatable)."), "depends_on"),
    (
        click.option(
            "--on-dependency-failure",
            metavar="POLICY",
            help="When a dependency does not complete: fail (default), skip, or continue anyway.",
        ),
        "on_dependency_failure",
    ),
    (click.option("--parent", metavar="ID", help="Make it a subtask of this task."), "parent"),
    (
        click.option("--idempotency-key", metavar="KEY", help="Resubmitting with the same key returns the first task."),
        "idempotency_key",
    ),
)


def spec_from_options(values: dict[str, Any]) -> SpecOptions:
    """The task_spec keyword arguments for the parsed option values (unset options left out).

    Raises InvalidArgument for bad JSON, labels, enum names or retry settings,
    exactly as the RPC would, but before it.
    """
    spec: dict[str, Any] = {}
    task_input = parse_json_input(values.get("input_json"), values.get("input_file"))
    if task_input is not None:
        spec["input"] = task_input
    simple = {
        "task_type": "type",
        "agent_type": "agent_type",
        "priority": "priority",
        "timeout": "timeout",
        "queue_timeout": "queue_timeout",
        "max_retries": "max_retries",
        "retry_initial": "retry_initial_seconds",
        "retry_backoff": "retry_backoff",
        "retry_max": "retry_max_seconds",
        "on_dependency_failure": "on_dependency_failure",
        "parent": "parent_id",
        "idempotency_key": "idempotency_key",
    }
    for option, key in simple.items():
        if values.get(option) is not None:
            spec[key] = values[option]
    for option, key in (
        ("depends_on", "depends_on"),
        ("non_retryable", "non_retryable"),
        ("capabilities", "required_capabilities"),
    ):
        if values.get(option):
            spec[key] = list(values[option])
    labels = parse_labels(tuple(values.get("label") or ()))
    if labels:
        spec["labels"] = labels
    options = cast(SpecOptions, spec)
    task_spec("check", **options)  # every remaining check (enum names, retry ranges) before any RPC
    return options


def spec_options(*, limits: bool = True, graph: bool = True) -> Callable[[Callable[..., _R]], Callable[..., _R]]:
    """Add the task-spec options to a click command, which then receives `spec: SpecOptions`.

    `limits` adds timeouts, retries and capabilities; `graph` adds
    --depends-on, --on-dependency-failure, --parent and --idempotency-key.
    """
    chosen = _BASIC + (_LIMITS if limits else ()) + (_GRAPH if graph else ())
    names = [name for _, name in chosen]

    def decorate(command: Callable[..., _R]) -> Callable[..., _R]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> _R:
            values = {name: kwargs.pop(name, None) for name in names}
            return command(*args, spec=spec_from_options(values), **kwargs)

        decorated: Callable[..., Any] = wrapper
        for option, _ in reversed(chosen):
            decorated = option(decorated)
        return decorated

    return decorate

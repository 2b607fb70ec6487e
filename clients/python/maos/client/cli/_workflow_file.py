"""Reading a workflow file (YAML or JSON) for `maosctl workflow submit`.

    description: analyse the quarter          # the group root (required)
    priority: high                            # optional, root and default for nodes
    labels: {team: data}                      # optional, on the root
    nodes:                                    # a list of mappings with `id` ...
      - id: fetch
        description: fetch the data
        agent_type: echo
        input: {path: /data/q3.csv}
      - id: report
        description: write the report
        depends_on: [fetch]
        retry: {initial: 1, backoff: 2, max: 30, non_retryable: [bad_input]}
        on_dependency_failure: skip
    # ... or a mapping id -> node (nodes: {fetch: {...}, report: {...}})

Everything a client can check is checked here, before any RPC, and every
error names the file, the node and the field: unknown fields, missing or
empty values, wrong types, bad enum names, duplicate ids (also duplicate keys
in a YAML/JSON mapping, which the parsers would otherwise silently merge),
and references to ids the file does not define. Cycles are left to the
control plane, which reports the nodes on the cycle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from maos.errors import InvalidArgument, MaosError
from maos.v1 import common_pb2

from .._enums import parse_priority
from .._specs import task_spec

ROOT_FIELDS = ("description", "priority", "labels", "nodes", "idempotency_key")
NODE_FIELDS = (
    "id",
    "description",
    "agent_type",
    "type",
    "input",
    "depends_on",
    "priority",
    "timeout",
    "queue_timeout",
    "max_retries",
    "retry",
    "on_dependency_failure",
    "required_capabilities",
    "labels",
)
RETRY_FIELDS = ("initial", "backoff", "max", "non_retryable")


@dataclass(frozen=True)
class WorkflowFile:
    """A parsed workflow: the root's fields and the nodes as TaskSpecs, in file order."""

    description: str
    nodes: dict[str, common_pb2.TaskSpec]
    priority: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping with the same key twice (PyYAML keeps the last one)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise InvalidArgument(f"line {mark.line + 1}: key {key!r} appears twice in the same mapping")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise InvalidArgument(f"key {key!r} appears twice in the same object")
        document[key] = value
    return document


def load_document(text: str, name: str) -> Any:
    """Parse `text` as JSON when `name` ends in .json, else as YAML (which also reads JSON)."""
    if name.lower().endswith(".json"):
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(
                f"{name}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except InvalidArgument as exc:
            raise InvalidArgument(f"{name}: {exc}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        where = f" at line {exc.problem_mark.line + 1} column {exc.problem_mark.column + 1}" if exc.problem_mark else ""
        raise InvalidArgument(f"{name}: not valid YAML: {exc.problem or exc}{where}") from None
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"{name}: not valid YAML: {exc}") from None
    except InvalidArgument as exc:
        raise InvalidArgument(f"{name}: {exc}") from None


class _Fields:
    """Typed access to one mapping of the file, each error prefixed with where it is."""

    def __init__(self, data: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        self.data = data
        self.where = where
        unknown = [str(k) for k in data if k not in allowed]
        if len(unknown) == 1:
            raise self.error(unknown[0], f"unknown field; expected one of: {', '.join(allowed)}")
        if unknown:
            raise InvalidArgument(
                f"{where}: unknown fields {', '.join(unknown)}; expected one of: {', '.join(allowed)}"
            )

    def error(self, key: str, message: str) -> InvalidArgument:
        return InvalidArgument(f"{self.where}: {key}: {message}")

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "missing; say what the task should do" if key == "description" else "missing")
            return None
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {_kind(value)}")
        if not value.strip():
            raise self.error(key, "is empty")
        return value

    def number(self, key: str, *, positive: bool = True) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"must be a number of seconds, got {_kind(value)}")
        if positive and not value > 0:
            raise self.error(key, f"must be above 0, got {value}")
        if value < 0:
            raise self.error(key, f"must not be negative, got {value}")
        return float(value)

    def whole(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(key, f"must be a whole number >= 0, got {value!r}")
        return value

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
            raise self.error(key, f"must be a string or a list of non-empty strings, got {_kind(value)}")
        return list(items)

    def labels(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(key, f"must be a mapping of name: value, got {_kind(value)}")
        labels: dict[str, str] = {}
        for name, text in value.items():
            if not isinstance(name, str) or not name or isinstance(text, list | dict) or text is None:
                raise self.error(key, f"{name!r}: label names are strings and values are plain values")
            labels[name] = str(text).lower() if isinstance(text, bool) else str(text)
        return labels

    def checked(self, key: str, parse: Callable[[str], object]) -> str | None:
        value = self.text(key)
        if value is not None:
            try:
                parse(value)
            except MaosError as exc:
                raise self.error(key, str(exc)) from None
        return value


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}
    return names.get(type(value), f"a {type(value).__name__}")


def _retry(node: _Fields) -> dict[str, Any]:
    value = node.data.get("retry")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise node.error("retry", f"must be a mapping with {', '.join(RETRY_FIELDS)}, got {_kind(value)}")
    retry = _Fields(value, f"{node.where}: retry", RETRY_FIELDS)
    options: dict[str, Any] = {
        "retry_initial_seconds": retry.number("initial", positive=False),
        "retry_backoff": retry.number("backoff", positive=False),
        "retry_max_seconds": retry.number("max", positive=False),
        "non_retryable": retry.strings("non_retryable"),
    }
    if options["retry_backoff"] is not None and options["retry_backoff"] < 1:
        raise retry.error("backoff", f"must be at least 1, got {options['retry_backoff']:g}")
    return options


def _node_spec(node: _Fields, keys: set[str], default_priority: str | None) -> common_pb2.TaskSpec:
    description = node.text("description", required=True)
    assert description is not None
    depends_on = node.strings("depends_on")
    key = str(node.data.get("id", ""))
    for dep in depends_on:
        if dep == key:
            raise node.error("depends_on", "a node cannot depend on itself")
        if dep not in keys:
            raise node.error("depends_on", f"{dep!r} is not a node of this workflow; nodes: {', '.join(sorted(keys))}")
    if len(set(depends_on)) != len(depends_on):
        raise node.error("depends_on", "lists a node more than once")
    options: dict[str, Any] = {
        "agent_type": node.text("agent_type"),
        "type": node.checked("type", lambda v: task_spec("x", type=v)),
        "priority": node.checked("priority", parse_priority) or default_priority,
        "on_dependency_failure": node.checked(
            "on_dependency_failure", lambda v: task_spec("x", on_dependency_failure=v)
        ),
        "timeout": node.number("timeout"),
        "queue_timeout": node.number("queue_timeout"),
        "max_retries": node.whole("max_retries"),
        "required_capabilities": node.strings("required_capabilities"),
        "labels": node.labels("labels"),
        "depends_on": depends_on,
        **_retry(node),
    }
    if "input" in node.data and node.data["input"] is not None:
        options["input"] = node.data["input"]
    try:
        return task_spec(description, **options)
    except MaosError as exc:  # a check this module does not repeat (input encoding, retry ranges)
        raise InvalidArgument(f"{node.where}: {exc}") from None


def _node_list(value: Any, name: str) -> list[tuple[str, Mapping[str, Any], str]]:
    """(id, fields, where) per node, from either accepted shape, ids checked for presence and uniqueness."""
    nodes: list[tuple[str, Mapping[str, Any], str]] = []
    if isinstance(value, Mapping):
        for key, body in value.items():
            where = f"{name}: node {key!r}"
            if not isinstance(key, str) or not key.strip():
                raise InvalidArgument(f"{name}: nodes: node ids must be non-empty strings, got {key!r}")
            if not isinstance(body, Mapping):
                raise InvalidArgument(f"{where}: must be a mapping of fields, got {_kind(body)}")
            if "id" in body and body["id"] != key:
                raise InvalidArgument(f"{where}: id: {body['id']!r} differs from the node's key {key!r}")
            nodes.append((key, {**body, "id": key}, where))
    elif isinstance(value, list):
        seen: dict[str, int] = {}
        for index, body in enumerate(value, start=1):
            where = f"{name}: nodes[{index}]"
            if not isinstance(body, Mapping):
                raise InvalidArgument(f"{where}: must be a mapping of fields, got {_kind(body)}")
            key = body.get("id")
            if key is None:
                raise InvalidArgument(f"{where}: id: missing; every node needs an id")
            if not isinstance(key, str) or not key.strip():
                raise InvalidArgument(f"{where}: id: must be a non-empty string, got {key!r}")
            if key in seen:
                raise InvalidArgument(f"{where}: id: {key!r} is already the id of nodes[{seen[key]}]")
            seen[key] = index
            nodes.append((key, body, f"{name}: node {key!r}"))
    else:
        raise InvalidArgument(f"{name}: nodes: must be a list of nodes or a mapping id -> node, got {_kind(value)}")
    if not nodes:
        raise InvalidArgument(f"{name}: nodes: empty; a workflow needs at least one node")
    return nodes


def parse_workflow(document: Any, name: str) -> WorkflowFile:
    """Check a loaded document and turn it into a WorkflowFile; `name` prefixes every error."""
    if not isinstance(document, Mapping):
        raise InvalidArgument(f"{name}: the file must hold a mapping with description and nodes, got {_kind(document)}")
    root = _Fields(document, name, ROOT_FIELDS)
    description = root.text("description", required=True)
    assert description is not None
    priority = root.checked("priority", parse_priority)
    if "nodes" not in document:
        raise root.error("nodes", "missing; list the workflow's tasks under nodes")
    entries = _node_list(document["nodes"], name)
    keys = {key for key, _, _ in entries}
    nodes = {key: _node_spec(_Fields(body, where, NODE_FIELDS), keys, priority) for key, body, where in entries}
    return WorkflowFile(
        description=description,
        nodes=nodes,
        priority=priority,
        labels=root.labels("labels"),
        idempotency_key=root.text("idempotency_key"),
    )


def read_workflow_file(path: Path) -> WorkflowFile:
    """Read, parse and check a workflow file; InvalidArgument naming file, node and field on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"{path}: not a text file (UTF-8)") from None
    return parse_workflow(load_document(text, str(path)), str(path))

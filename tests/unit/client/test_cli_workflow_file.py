"""`workflow submit FILE`: the file is parsed and checked locally, every error naming file, node and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from maos.client import Client
from maos.client.cli import cli
from maos.client.cli._workflow_file import load_document, parse_workflow, read_workflow_file
from maos.errors import InvalidArgument
from maos.v1 import common_pb2

DIAMOND_YAML = """\
description: diamond
priority: high
labels: {team: data, run: 3}
nodes:
  - id: a
    description: fetch
    agent_type: echo
    type: analysis
    input: {path: /data/a.csv, n: [1, 2]}
    timeout: 30
    queue_timeout: 5
  - id: b
    description: left
    depends_on: a
    max_retries: 3
    retry: {initial: 0.5, backoff: 2, max: 10, non_retryable: [bad_input]}
  - id: c
    description: right
    depends_on: [a]
    on_dependency_failure: skip
    required_capabilities: [gpu]
  - id: d
    description: join
    depends_on: [b, c]
    priority: low
    labels: {stage: final}
"""


def parse(document: object) -> object:
    return parse_workflow(document, "wf.yaml")


def error_of(document: object) -> str:
    with pytest.raises(InvalidArgument) as info:
        parse_workflow(document, "wf.yaml")
    return str(info.value)


def node(**fields: object) -> dict[str, object]:
    return {"description": "x", "nodes": [{"id": "a", "description": "A", **fields}]}


def test_a_yaml_list_of_nodes_becomes_specs_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(DIAMOND_YAML)
    wf = read_workflow_file(path)
    assert wf.description == "diamond"
    assert wf.priority == "high"
    assert wf.labels == {"team": "data", "run": "3"}
    assert list(wf.nodes) == ["a", "b", "c", "d"]
    a, b, c, d = (wf.nodes[k] for k in "abcd")
    assert a.agent_type == "echo"
    assert a.type == common_pb2.TASK_TYPE_ANALYSIS
    assert json.loads(a.input.data) == {"path": "/data/a.csv", "n": [1, 2]}
    assert (a.timeout_seconds, a.queue_timeout_seconds) == (30, 5)
    assert list(b.depends_on) == ["a"]
    assert b.retry.max_retries == 3
    assert (b.retry.initial_interval_seconds, b.retry.backoff_coefficient, b.retry.max_interval_seconds) == (0.5, 2, 10)
    assert list(b.retry.non_retryable_errors) == ["bad_input"]
    assert c.on_dependency_failure == common_pb2.DEPENDENCY_FAILURE_POLICY_SKIP
    assert list(c.required_capabilities) == ["gpu"]
    # The file's priority is every node's default; a node's own priority wins.
    assert b.priority == common_pb2.PRIORITY_HIGH
    assert d.priority == common_pb2.PRIORITY_LOW
    assert list(d.depends_on) == ["b", "c"]
    assert dict(d.labels) == {"stage": "final"}


def test_a_json_mapping_of_nodes_is_the_same_workflow(tmp_path: Path) -> None:
    path = tmp_path / "wf.json"
    path.write_text(
        json.dumps(
            {
                "description": "pair",
                "nodes": {"a": {"description": "A"}, "b": {"description": "B", "depends_on": ["a"]}},
            }
        )
    )
    wf = read_workflow_file(path)
    assert list(wf.nodes) == ["a", "b"]
    assert list(wf.nodes["b"].depends_on) == ["a"]
    assert wf.priority is None
    assert wf.nodes["a"].priority == common_pb2.PRIORITY_UNSPECIFIED


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"nodes": [{"id": "a", "description": "A"}]}, "wf.yaml: description: missing; say what the task should do"),
        ({"description": "  ", "nodes": [{"id": "a"}]}, "wf.yaml: description: is empty"),
        ({"description": "x"}, "wf.yaml: nodes: missing; list the workflow's tasks under nodes"),
        ({"description": "x", "nodes": []}, "wf.yaml: nodes: empty; a workflow needs at least one node"),
        ({"description": "x", "nodes": "a"}, "wf.yaml: nodes: must be a list of nodes or a mapping id -> node"),
        ({"description": "x", "nodes": [{"id": "a"}]}, "wf.yaml: node 'a': description: missing"),
        (
            {"description": "x", "nodes": [{"description": "A"}]},
            "wf.yaml: nodes[1]: id: missing; every node needs an id",
        ),
        ({"description": "x", "nodes": [{"id": 7, "description": "A"}]}, "wf.yaml: nodes[1]: id: must be a non-empty"),
        ({"description": "x", "nodes": ["a"]}, "wf.yaml: nodes[1]: must be a mapping of fields, got a string"),
        (
            {"description": "x", "prio": "high", "nodes": []},
            "wf.yaml: prio: unknown field; expected one of: description",
        ),
        ({"description": "x", "priority": "urgent", "nodes": []}, "wf.yaml: priority: unknown priority 'urgent'"),
        (
            {"description": "x", "nodes": {"a": {"description": "A", "id": "b"}}},
            "wf.yaml: node 'a': id: 'b' differs from the node's key 'a'",
        ),
    ],
)
def test_root_and_shape_errors(document: object, message: str) -> None:
    assert error_of(document).startswith(message)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"colour": "red"}, "wf.yaml: node 'a': colour: unknown field; expected one of: id, description, agent_type"),
        ({"colour": 1, "size": 2}, "wf.yaml: node 'a': unknown fields colour, size; expected one of:"),
        (
            {"priority": "urgent"},
            "wf.yaml: node 'a': priority: unknown priority 'urgent'; expected one of: critical, high, medium, low",
        ),
        ({"priority": 1}, "wf.yaml: node 'a': priority: must be a string, got a int"),
        ({"type": "poetry"}, "wf.yaml: node 'a': type: unknown task type 'poetry'"),
        ({"on_dependency_failure": "ignore"}, "wf.yaml: node 'a': on_dependency_failure: unknown dependency failure"),
        ({"timeout": 0}, "wf.yaml: node 'a': timeout: must be above 0, got 0"),
        ({"timeout": "10s"}, "wf.yaml: node 'a': timeout: must be a number of seconds, got a string"),
        ({"queue_timeout": -1}, "wf.yaml: node 'a': queue_timeout: must be above 0"),
        ({"max_retries": -1}, "wf.yaml: node 'a': max_retries: must be a whole number >= 0, got -1"),
        ({"max_retries": 1.5}, "wf.yaml: node 'a': max_retries: must be a whole number >= 0, got 1.5"),
        ({"retry": 3}, "wf.yaml: node 'a': retry: must be a mapping with initial, backoff, max, non_retryable"),
        ({"retry": {"jitter": 1}}, "wf.yaml: node 'a': retry: jitter: unknown field"),
        ({"retry": {"backoff": 0.5}}, "wf.yaml: node 'a': retry: backoff: must be at least 1, got 0.5"),
        ({"retry": {"initial": 5, "max": 1}}, "wf.yaml: node 'a': retry maximum interval (1.0s) is below the initial"),
        ({"depends_on": "a"}, "wf.yaml: node 'a': depends_on: a node cannot depend on itself"),
        ({"depends_on": ["zz"]}, "wf.yaml: node 'a': depends_on: 'zz' is not a node of this workflow; nodes: a"),
        ({"depends_on": [1]}, "wf.yaml: node 'a': depends_on: must be a string or a list of non-empty strings"),
        ({"labels": ["x"]}, "wf.yaml: node 'a': labels: must be a mapping of name: value, got a list"),
        ({"description": 5}, "wf.yaml: node 'a': description: must be a string, got a int"),
    ],
)
def test_node_errors_name_the_node_and_the_field(fields: dict[str, object], message: str) -> None:
    assert error_of(node(**fields)).startswith(message)


def test_unknown_reference_lists_the_nodes() -> None:
    document = {
        "description": "x",
        "nodes": [{"id": "b", "description": "B"}, {"id": "a", "description": "A", "depends_on": ["b", "c"]}],
    }
    assert error_of(document) == "wf.yaml: node 'a': depends_on: 'c' is not a node of this workflow; nodes: a, b"


def test_duplicate_ids_in_a_list_name_both_positions() -> None:
    document = {"description": "x", "nodes": [{"id": "a", "description": "A"}, {"id": "a", "description": "B"}]}
    assert error_of(document) == "wf.yaml: nodes[2]: id: 'a' is already the id of nodes[1]"


def test_duplicate_keys_in_yaml_and_json_mappings_are_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"^wf.yaml: line 4: key 'a' appears twice in the same mapping$"):
        load_document("description: x\nnodes:\n  a: {description: A}\n  a: {description: B}\n", "wf.yaml")
    with pytest.raises(InvalidArgument, match=r"^wf.json: key 'a' appears twice in the same object$"):
        load_document('{"description": "x", "nodes": {"a": {}, "a": {}}}', "wf.json")


def test_syntax_errors_give_the_position() -> None:
    with pytest.raises(InvalidArgument, match=r"^wf.json: not valid JSON: .* at line 1 column 17$"):
        load_document('{"description": }', "wf.json")
    with pytest.raises(InvalidArgument, match=r"^wf.yaml: not valid YAML: mapping values .* at line 2 column 8$"):
        load_document("description: x\n  nodes: y\n", "wf.yaml")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"missing.yaml: No such file or directory$"):
        read_workflow_file(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidArgument, match="not a text file"):
        read_workflow_file(binary)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(InvalidArgument, match="the file must hold a mapping with description and nodes, got a list"):
        read_workflow_file(listing)


def test_input_that_is_not_json_serialisable_is_named(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("description: x\nnodes:\n  - id: a\n    description: A\n    input: {raw: !!binary aGVsbG8=}\n")
    with pytest.raises(InvalidArgument, match=r"^.*wf.yaml: node 'a': input: "):
        read_workflow_file(path)


@pytest.fixture
def no_rpc(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an RPC was attempted")

    monkeypatch.setattr(Client, "_stubs", refuse)


@pytest.mark.usefixtures("no_rpc")
def test_cli_prints_one_error_line_and_sends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("description: x\nnodes:\n  - id: a\n    description: A\n    priority: urgent\n")
    result = CliRunner().invoke(cli, ["workflow", "submit", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {path}: node 'a': priority: unknown priority 'urgent'; expected one of: critical, high, medium, low\n"
    )

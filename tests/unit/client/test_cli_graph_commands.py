"""The graph commands without a server: bad input stops before any RPC; replies render as tables and JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from google.protobuf.timestamp_pb2 import Timestamp
from maos.client import Client
from maos.client.cli import cli
from maos.client.cli._common import parse_params
from maos.errors import InvalidArgument
from maos.v1 import common_pb2 as S
from maos.v1 import tasks_pb2, templates_pb2


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_one_error_line(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), lines[0]
    assert "Traceback" not in result.output


def test_parse_params() -> None:
    assert parse_params(None) == {}
    assert parse_params('{"n": 3, "who": "ops", "deep": {"a": [1]}}') == {"n": 3, "who": "ops", "deep": {"a": [1]}}
    with pytest.raises(InvalidArgument, match=r"^--params is not valid JSON: Expecting .* at line 1 column 2$"):
        parse_params("{n: 3}")
    with pytest.raises(InvalidArgument, match=r"^--params must be a JSON object of name -> value .*, got a list$"):
        parse_params("[1, 2]")
    with pytest.raises(InvalidArgument, match=r"got a string$"):
        parse_params('"n=3"')
    with pytest.raises(InvalidArgument, match=r"got null$"):
        parse_params("null")


@pytest.fixture
def no_rpc(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an RPC was attempted")

    monkeypatch.setattr(Client, "_stubs", refuse)


@pytest.mark.usefixtures("no_rpc")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("task", "priority", "t1", "urgent"), "error: unknown priority 'urgent'; expected one of: critical, high"),
        (("task", "submit-from-template", "n", "--params", "{bad"), "error: --params is not valid JSON: Expecting"),
        (("task", "submit-from-template", "n", "--params", "[1]"), "error: --params must be a JSON object"),
        (("task", "submit-from-template", "n", "--priority", "asap"), "error: unknown priority 'asap'"),
        (("task", "plan", "x"), "error: give at least one --aspect TEXT or --shard PATH"),
        (("task", "plan", "x", "--aspect", "a", "--shard", "s"), "error: give --aspect or --shard, not both"),
        (("task", "plan", "x", "--aspect", "a", "--dry-run", "--wait"), "error: --wait needs a submitted plan"),
        (("task", "plan", "x", "--aspect", "a", "--priority", "asap"), "error: unknown priority 'asap'"),
        (
            ("task", "submit", "x", "--on-dependency-failure", "ignore"),
            "error: unknown dependency failure policy 'ignore'; expected one of: fail, skip, continue",
        ),
        (
            ("task", "submit", "x", "--retry-initial", "5", "--retry-max", "1"),
            "error: retry maximum interval (1.0s) is below the initial interval (5.0s)",
        ),
        (("batch", "add-task", "b", "x", "--input", "{no"), "error: --input is not valid JSON"),
        (("batch", "add-task", "b", "x", "--label", "novalue"), "error: --label 'novalue' must look like key=value"),
        (("workflow", "submit", "/no/such/file.yaml"), "error: /no/such/file.yaml: No such file or directory"),
    ],
)
def test_bad_input_is_one_line_before_any_rpc(args: tuple[str, ...], message: str) -> None:
    assert_one_error_line(invoke(*args), message)


# ---- replies rendered ------------------------------------------------------


def ts(seconds: float) -> Timestamp:
    whole = int(seconds)
    return Timestamp(seconds=1_735_689_600 + whole, nanos=round((seconds - whole) * 1e9))


class Recorder:
    """Stands in for Client methods; remembers what each was called with."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._monkeypatch = monkeypatch

    def reply(self, name: str, value: Any) -> None:
        def method(_client: Client, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return value(*args, **kwargs) if callable(value) else value

        self._monkeypatch.setattr(Client, name, method)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    return Recorder(monkeypatch)


def test_task_submit_sends_the_new_spec_fields(fake: Recorder) -> None:
    fake.reply("submit_task", S.Task(id="t9", status=S.TASK_STATUS_PENDING))
    result = invoke(
        *("task", "submit", "x", "--agent-type", "echo", "--depends-on", "a", "--depends-on", "b"),
        *("--max-retries", "2", "--retry-initial", "0.5", "--retry-backoff", "3", "--retry-max", "9"),
        *("--non-retryable", "bad_input", "--on-dependency-failure", "skip", "--queue-timeout", "30"),
        *("--capability", "gpu", "--parent", "p1", "--label", "k=v"),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "t9\n"
    ((_, args, kwargs),) = fake.calls
    assert args == ("x",)
    assert kwargs == {
        "agent_type": "echo",
        "depends_on": ["a", "b"],
        "max_retries": 2,
        "retry_initial_seconds": 0.5,
        "retry_backoff": 3.0,
        "retry_max_seconds": 9.0,
        "non_retryable": ["bad_input"],
        "on_dependency_failure": "skip",
        "queue_timeout": 30.0,
        "required_capabilities": ["gpu"],
        "parent_id": "p1",
        "labels": {"k": "v"},
    }


def test_task_priority(fake: Recorder) -> None:
    # The spec keeps the submitted priority; the scheduler's current one is effective_priority.
    task = S.Task(id="t1", status=S.TASK_STATUS_QUEUED, effective_priority=S.PRIORITY_CRITICAL)
    task.spec.priority = S.PRIORITY_LOW
    fake.reply("update_task", task)
    result = invoke("task", "priority", "t1", "CRITICAL")
    assert result.exit_code == 0, result.output
    assert result.stdout == "t1: priority critical\n"
    assert fake.calls == [("update_task", ("t1",), {"priority": "CRITICAL"})]
    document = json.loads(invoke("task", "priority", "t1", "critical", "--format", "json").stdout)
    assert (document["priority"], document["effective_priority"]) == ("low", "critical")


def test_workflow_submit_prints_the_root_and_the_ids_in_file_order(fake: Recorder, tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "description: diamond\npriority: high\nnodes:\n  b: {description: B, depends_on: [a]}\n  a: {description: A}\n"
    )
    fake.reply("submit_workflow", (S.Task(id="root1"), {"a": "task-a", "b": "task-b"}))
    result = invoke("workflow", "submit", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["root: root1", "NODE  TASK ID", "b     task-b", "a     task-a"]
    ((_, args, kwargs),) = fake.calls
    assert list(args[0]) == ["b", "a"]
    assert args[1] == "diamond"
    assert kwargs["priority"] == "high"
    document = json.loads(invoke("workflow", "submit", str(path), "--format", "json").stdout)
    assert document == {"root_id": "root1", "task_ids": {"b": "task-b", "a": "task-a"}}


def plan_reply(*, dry_run: bool) -> tasks_pb2.PlanTaskResponse:
    reply = tasks_pb2.PlanTaskResponse(
        plan=S.Plan(
            template="parallel-synthesis", parallel_streams=2, estimated_speedup=1.85, synthesis_key="synthesis"
        )
    )
    for key, deps in (("stream-1", []), ("stream-2", []), ("synthesis", ["stream-1", "stream-2"])):
        node = reply.nodes.add(key=key)
        node.spec.description = f"review: {key}"
        node.spec.agent_type = "echo"
        node.spec.depends_on.extend(deps)
        if not dry_run:
            reply.task_ids[key] = f"id-{key}"
    if not dry_run:
        reply.root.id = "root7"
    return reply


def test_task_plan_dry_run_and_submitted(fake: Recorder) -> None:
    fake.reply("plan_task", plan_reply(dry_run=True))
    result = invoke("task", "plan", "review", "--aspect", "security", "--aspect", "speed", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "dry run: nothing was submitted",
        "plan: parallel-synthesis · 2 parallel streams · estimated speedup 1.85x",
        "NODE       AGENT TYPE  DEPENDS ON          DESCRIPTION",
        "stream-1   echo        -                   review: stream-1",
        "stream-2   echo        -                   review: stream-2",
        "synthesis  echo        stream-1, stream-2  review: synthesis",
    ]
    kwargs = fake.calls[0][2]
    assert kwargs["aspects"] == ("security", "speed")
    assert kwargs["dry_run"] is True

    fake.reply("plan_task", plan_reply(dry_run=False))
    result = invoke("task", "plan", "review", "--aspect", "security", "--format", "json")
    document = json.loads(result.stdout)
    assert document["dry_run"] is False
    assert document["root_id"] == "root7"
    assert document["plan"]["estimated_speedup"] == 1.85
    assert [n["task_id"] for n in document["nodes"]] == ["id-stream-1", "id-stream-2", "id-synthesis"]
    table = invoke("task", "plan", "review", "--aspect", "security").stdout.splitlines()
    assert table[0] == "root: root7"
    assert table[2].split() == ["NODE", "TASK", "ID", "AGENT", "TYPE", "DEPENDS", "ON", "DESCRIPTION"]


def test_relative_shards_that_exist_are_sent_absolute(
    fake: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "s1.csv").write_text("a\n1\n")
    monkeypatch.chdir(tmp_path)
    fake.reply("plan_task", plan_reply(dry_run=True))
    invoke("task", "plan", "x", "--shard", "s1.csv", "--shard", "/remote/s2.csv", "--dry-run")
    assert fake.calls[0][2]["shards"] == [str(tmp_path / "s1.csv"), "/remote/s2.csv"]


def attempt(number: int, status: int, kind: str = "", message: str = "") -> S.Attempt:
    return S.Attempt(
        number=number,
        host_id="h1",
        agent_id=f"h1-w{number}",
        dispatched_at=ts(number * 10),
        started_at=ts(number * 10 + 0.25),
        finished_at=ts(number * 10 + 1.5),
        status=status,  # type: ignore[arg-type]
        error=S.TaskError(kind=kind, message=message),
    )


def test_task_show_lists_attempts_after_a_retry(fake: Recorder) -> None:
    task = S.Task(id="t1", status=S.TASK_STATUS_COMPLETED, attempt=2, effective_priority=S.PRIORITY_HIGH)
    task.spec.description = "flaky"
    task.spec.priority = S.PRIORITY_LOW
    task.spec.retry.CopyFrom(S.RetryPolicy(max_retries=3, initial_interval_seconds=1, backoff_coefficient=2))
    task.spec.on_dependency_failure = S.DEPENDENCY_FAILURE_POLICY_CONTINUE
    task.attempts.extend([attempt(1, S.TASK_STATUS_FAILED, "exception", "boom"), attempt(2, S.TASK_STATUS_COMPLETED)])
    fake.reply("get_task", task)
    out = invoke("task", "show", "t1").stdout
    assert re.search(r"^priority:\s+high \(submitted as low\)$", out, re.M), out
    assert re.search(r"^retries:\s+3 retries, 1s x2$", out, re.M), out
    assert re.search(r"^on dep. failure:\s+continue$", out, re.M), out
    lines = out.splitlines()
    head = lines.index("attempts:") + 1
    assert lines[head].split() == [
        "#",
        "STATUS",
        "HOST",
        "AGENT",
        "DISPATCHED",
        "STARTED",
        "FINISHED",
        "DURATION",
        "ERROR",
    ]
    assert lines[head + 1].split() == [
        "1",
        "failed",
        "h1",
        "h1-w1",
        "00:00:10.000",
        "00:00:10.250",
        "00:00:11.500",
        "1.25s",
        "exception:",
        "boom",
    ]
    assert lines[head + 2].split()[:2] == ["2", "completed"]
    document = json.loads(invoke("task", "show", "t1", "--format", "json").stdout)
    assert [a["status"] for a in document["attempts"]] == ["failed", "completed"]
    assert document["attempts"][0]["error"] == {"kind": "exception", "message": "boom"}
    assert document["effective_priority"] == "high"
    assert document["retry"]["backoff_coefficient"] == 2


def test_task_show_leaves_out_a_single_successful_attempt(fake: Recorder) -> None:
    task = S.Task(id="t1", status=S.TASK_STATUS_COMPLETED, attempt=1)
    task.spec.description = "fine"
    task.attempts.append(attempt(1, S.TASK_STATUS_COMPLETED))
    fake.reply("get_task", task)
    assert "attempts:" not in invoke("task", "show", "t1").stdout
    task.attempts[0].status = S.TASK_STATUS_TIMED_OUT
    assert "attempts:" in invoke("task", "show", "t1").stdout


def test_execution_plan_lists_a_roots_subtree(fake: Recorder) -> None:
    root = S.Task(id="r", root_id="r", status=S.TASK_STATUS_COMPLETED, group=True)
    root.spec.description = "demo"
    child = S.Task(id="c", root_id="r", parent_id="r", status=S.TASK_STATUS_COMPLETED, workflow_key="only")
    fake.reply("get_task", root)

    def listing(**kwargs: Any) -> Iterator[S.Task]:
        assert kwargs["root_id"] == "r"
        yield from (root, child)

    fake.reply("list_tasks", listing)
    result = invoke("task", "show", "r", "--execution-plan")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["demo  r  completed  -", "└─ only  completed  -  -"]


def test_execution_plan_of_an_inner_task_walks_down_by_parent(fake: Recorder) -> None:
    inner = S.Task(id="p", root_id="r", parent_id="r", status=S.TASK_STATUS_RUNNING)
    inner.spec.description = "inner"
    kids = {"p": [S.Task(id="k1", root_id="r", parent_id="p")], "k1": [S.Task(id="g", root_id="r", parent_id="k1")]}
    fake.reply("get_task", inner)
    fake.reply("list_tasks", lambda **kwargs: iter(kids.get(kwargs["parent_id"], [])))
    document = json.loads(invoke("task", "show", "p", "--execution-plan", "--format", "json").stdout)
    assert [(n["id"], n["depth"]) for n in document["nodes"]] == [("k1", 1), ("g", 2)]


def test_submit_from_template_sends_params_and_overrides(fake: Recorder) -> None:
    fake.reply("submit_from_template", S.Task(id="t5", status=S.TASK_STATUS_QUEUED))
    result = invoke(
        "task", "submit-from-template", "nightly", "--params", '{"n": 3}', "--priority", "high", "--label", "a=b"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "t5\n"
    assert fake.calls == [
        ("submit_from_template", ("nightly", {"n": 3}), {"priority": "high", "labels": {"a": "b"}}),
    ]


def test_template_create_and_list(fake: Recorder) -> None:
    template = templates_pb2.Template(name="nightly", parameters=["day", "n"], source_task_id="t1")
    template.spec.description = "count {n} rows of {day}"
    template.spec.agent_type = "echo"
    fake.reply("create_template", template)
    out = invoke("template", "create", "nightly", "--from-task", "t1").stdout
    assert out.splitlines() == [
        "template nightly: parameters day, n",
        """submit it: maosctl task submit-from-template nightly --params '{"day": "…", "n": "…"}'""",
    ]
    fake.reply("list_templates", [template])
    lines = invoke("template", "list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "PARAMETERS", "AGENT", "TYPE", "SOURCE", "TASK", "CREATED", "DESCRIPTION"]
    assert lines[1].split()[:3] == ["nightly", "day,", "n"]
    assert lines[0].index("AGENT TYPE") == lines[1].index("echo")


def test_batch_status_draws_counts_and_a_bar(fake: Recorder) -> None:
    batch = templates_pb2.Batch(name="b1", state=templates_pb2.BATCH_STATE_SUBMITTED, task_ids=["t1", "t2", "t3", "t4"])
    batch.tasks_by_status.update({"COMPLETED": 2, "RUNNING": 1, "FAILED": 1, "QUEUED": 0})
    fake.reply("get_batch", batch)
    lines = invoke("batch", "status", "b1").stdout.splitlines()
    assert lines[0] == "batch b1  submitted  4 tasks"
    assert lines[1] == "[" + "█" * 30 + "░" * 10 + "]  75%  3/4 done"
    assert lines[2:] == ["STATUS     TASKS", "running        1", "completed      2", "failed         1"]
    document = json.loads(invoke("batch", "status", "b1", "--format", "json").stdout)
    assert document["tasks_by_status"] == {"queued": 0, "running": 1, "completed": 2, "failed": 1}
    assert document["finished"] == 3
    batch.state = templates_pb2.BATCH_STATE_OPEN
    batch.ClearField("task_ids")
    batch.specs.add(description="one")
    assert invoke("batch", "status", "b1").stdout.splitlines() == [
        "batch b1  open  1 task",
        "not submitted yet: maosctl batch submit b1",
    ]


def test_batch_add_task_builds_the_spec_locally(fake: Recorder) -> None:
    batch = templates_pb2.Batch(name="b1", state=templates_pb2.BATCH_STATE_OPEN)
    batch.specs.add(description="x")
    fake.reply("add_to_batch", batch)
    result = invoke("batch", "add-task", "b1", "x", "--agent-type", "echo", "--input", '{"n": 1}', "--priority", "low")
    assert result.stdout == "batch b1: 1 task\n"
    ((_, (name, specs), _),) = fake.calls
    assert name == "b1"
    assert specs[0].agent_type == "echo"
    assert specs[0].priority == S.PRIORITY_LOW
    assert json.loads(specs[0].input.data) == {"n": 1}

"""Task graphs from the command line: workflow files, priorities, plans, templates, batches and their bad input."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from maos.client import AsyncClient, Client, task_result
from maos.errors import NotFound
from maos.v1 import common_pb2

# Fixtures come from conftest.py (cluster, maosctl).
Maosctl = Callable[..., Any]
ID = re.compile(r"^[0-9A-Za-z-]{10,}$")

DIAMOND = """\
description: e2e diamond
priority: high
labels: {suite: e2e}
nodes:
  - id: a
    description: fetch
    agent_type: echo
    input: {n: 1}
  - id: b
    description: left
    agent_type: echo
    depends_on: [a]
    input: {side: left}
  - id: c
    description: right
    agent_type: echo
    depends_on: [a]
    max_retries: 2
    retry: {initial: 0.1, backoff: 2, max: 1}
  - id: d
    description: join
    agent_type: echo
    depends_on: [b, c]
    input: {joined: true}
"""


def unique(prefix: str) -> str:
    """A name no earlier run used (the suite may run against a long-lived cluster)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def one_error_line(run: Any) -> str:
    """The single `error: ...` line of a failed command."""
    assert run.code == 1, (run.stdout, run.stderr)
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), run.stderr
    line: str = lines[0]
    return line


def test_workflow_submit_wait_runs_a_diamond_and_draws_its_plan(maosctl: Maosctl, tmp_path: Path) -> None:
    path = tmp_path / "diamond.yaml"
    path.write_text(DIAMOND)
    run = maosctl("workflow", "submit", str(path), "--wait", timeout=60)
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    root_id = lines[0].removeprefix("root: ")
    assert ID.match(root_id), run.stdout
    assert lines[1].split() == ["NODE", "TASK", "ID"]
    ids = dict(line.split() for line in lines[2:6])
    assert list(ids) == ["a", "b", "c", "d"]
    assert "pending 0 · queued 0 · running 0 · completed 4" in lines
    assert '"joined": true' in run.stdout  # d, the only sink: its result is the report

    tree = maosctl("task", "show", root_id, "--execution-plan")
    assert tree.code == 0, tree.stderr
    head, *rows = tree.stdout.splitlines()
    assert head.startswith(f"e2e diamond  {root_id}  completed")
    assert [row.split()[:3] for row in rows] == [
        ["├─", "a", "completed"],
        ["├─", "b", "completed"],
        ["├─", "c", "completed"],
        ["└─", "d", "completed"],
    ]
    assert rows[0].split()[3] == "agent"
    assert rows[1].endswith("← a") and rows[2].endswith("← a")
    assert rows[3].endswith("← b, c")
    # Columns line up: every state starts in the same column.
    assert len({row.index("completed") for row in rows}) == 1

    document = maosctl("task", "show", root_id, "--execution-plan", "--format", "json").json()
    assert [n["name"] for n in document["nodes"]] == ["a", "b", "c", "d"]
    assert document["nodes"][3]["depends_on"] == [ids["b"], ids["c"]]
    shown = maosctl("task", "show", ids["c"], "--format", "json").json()
    assert shown["workflow_key"] == "c"
    assert shown["priority"] == "high"  # the file's priority is each node's default
    assert shown["retry"]["max_retries"] == 2


def test_workflow_submit_json_wait_is_one_document(maosctl: Maosctl, tmp_path: Path) -> None:
    path = tmp_path / "pair.json"
    path.write_text(
        json.dumps(
            {
                "description": "e2e pair",
                "nodes": {
                    "first": {"description": "first", "agent_type": "echo", "input": 1},
                    "second": {"description": "second", "agent_type": "echo", "input": 2, "depends_on": ["first"]},
                },
            }
        )
    )
    run = maosctl("workflow", "submit", str(path), "--wait", "--format", "json", timeout=60)
    assert run.code == 0, run.stderr
    document = run.json()
    assert document["root"]["status"] == "completed"
    assert list(document["task_ids"]) == ["first", "second"]
    assert document["tasks"]["second"]["result"] == 2
    assert document["tasks"]["second"]["depends_on"] == [document["task_ids"]["first"]]


def test_a_cycle_is_the_servers_invalid_argument_and_nothing_is_stored(
    maosctl: Maosctl, cluster: Any, tmp_path: Path
) -> None:
    path = tmp_path / "cycle.yaml"
    description = unique("e2e cycle")
    path.write_text(
        f"description: {description}\nnodes:\n"
        "  - {id: start, description: S, agent_type: echo}\n"
        "  - {id: ping, description: P, agent_type: echo, depends_on: [start, pong]}\n"
        "  - {id: pong, description: Q, agent_type: echo, depends_on: [ping]}\n"
    )
    line = one_error_line(maosctl("workflow", "submit", str(path)))
    assert "cycle" in line
    assert "'ping'" in line and "'pong'" in line
    assert "'start'" not in line
    with Client(cluster.endpoint) as client:
        assert not [t for t in client.list_tasks(limit=200) if t.spec.description == description]


def test_workflow_file_errors_are_caught_before_sending(maosctl: Maosctl, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("description: x\nnodes:\n  - {id: a, description: A}\n  - {id: a, description: B}\n")
    assert one_error_line(maosctl("workflow", "submit", str(path))) == (
        f"error: {path}: nodes[2]: id: 'a' is already the id of nodes[1]"
    )


def test_task_priority_changes_a_pending_task(maosctl: Maosctl) -> None:
    blocker = maosctl("task", "submit", "blocks", "--agent-type", "sleeper").stdout.strip()
    try:
        waiting = maosctl(
            *("task", "submit", "waits", "--agent-type", "echo", "--depends-on", blocker),
            *("--on-dependency-failure", "skip", "--priority", "low"),
        ).stdout.strip()
        run = maosctl("task", "priority", waiting, "critical")
        assert run.code == 0, run.stderr
        assert run.stdout == f"{waiting}: priority critical\n"
        shown = maosctl("task", "show", waiting, "--format", "json").json()
        assert (shown["priority"], shown["effective_priority"]) == ("low", "critical")
        assert re.search(r"^priority:\s+critical \(submitted as low\)$", maosctl("task", "show", waiting).stdout, re.M)
        assert shown["on_dependency_failure"] == "skip"
        assert shown["status"] == "pending"

        assert one_error_line(maosctl("task", "priority", waiting, "urgent")).startswith(
            "error: unknown priority 'urgent'; expected one of: critical, high, medium, low"
        )
        missing = one_error_line(maosctl("task", "priority", "01NOSUCHTASK0000000000000", "high"))
        assert "not found" in missing
    finally:
        maosctl("task", "cancel", blocker)
    # The blocker was cancelled: under "skip" the waiting task is cancelled too, not left pending.
    final = maosctl("task", "wait", waiting, "--timeout", "30", "--format", "json")
    assert final.json()["status"] == "cancelled"


def test_task_plan_dry_run_stores_nothing(maosctl: Maosctl) -> None:
    args = ("task", "plan", "review the e2e design", "--aspect", "security", "--aspect", "speed", "--aspect", "cost")
    run = maosctl(*args, "--stream-agent-type", "echo", "--synthesis-agent-type", "echo", "--dry-run")
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "dry run: nothing was submitted"
    assert re.fullmatch(r"plan: parallel-synthesis · 3 parallel streams · estimated speedup \d+\.\d\dx", lines[1])
    assert lines[2].split()[:3] == ["NODE", "AGENT", "TYPE"]
    assert len(lines) == 3 + 4  # three streams and the synthesis
    document = maosctl(*args, "--dry-run", "--format", "json").json()
    assert document["dry_run"] is True
    assert document["root_id"] is None
    assert document["plan"]["parallel_streams"] == 3
    synthesis = document["plan"]["synthesis_key"]
    deps = {n["key"]: n["depends_on"] for n in document["nodes"]}
    assert sorted(deps[synthesis]) == sorted(k for k in deps if k != synthesis)
    assert all(n["task_id"] is None for n in document["nodes"])


def test_task_plan_with_aspects_runs_on_echo(maosctl: Maosctl) -> None:
    run = maosctl(
        *("task", "plan", "e2e plan", "--aspect", "alpha", "--aspect", "beta"),
        *("--stream-agent-type", "echo", "--synthesis-agent-type", "echo", "--wait"),
        timeout=60,
    )
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    root_id = lines[0].removeprefix("root: ")
    assert ID.match(root_id), run.stdout
    assert "pending 0 · queued 0 · running 0 · completed 3" in lines

    tree = maosctl("task", "show", root_id, "--execution-plan")
    assert tree.code == 0, tree.stderr
    tree_lines = tree.stdout.splitlines()
    assert re.fullmatch(r"plan: parallel-synthesis · 2 parallel streams · estimated speedup \d+\.\d\dx", tree_lines[1])
    assert len(tree_lines) == 2 + 3
    assert all(" completed " in line for line in tree_lines[2:])
    assert "←" in tree_lines[-1]  # the synthesis, after both streams


def test_template_create_submit_and_its_errors(maosctl: Maosctl, cluster: Any) -> None:
    name = unique("e2e-count")
    source = maosctl(
        *("task", "submit", "count {n} rows of {day_of_week}", "--agent-type", "echo"),
        *("--input", '{"n": "{n}", "day": "{day_of_week}", "note": "for {day_of_week}"}', "--wait", "--format", "json"),
    )
    assert source.code == 0, source.stderr
    source_id = source.json()["id"]

    created = maosctl("template", "create", name, "--from-task", source_id, "--description", "e2e template")
    assert created.code == 0, created.stderr
    assert created.stdout.splitlines()[0] == f"template {name}: parameters day_of_week, n"

    listed = maosctl("template", "list", "--format", "json").json()
    mine = [t for t in listed if t["name"] == name]
    assert len(mine) == 1
    assert mine[0]["parameters"] == ["day_of_week", "n"]
    assert mine[0]["source_task_id"] == source_id
    shown = maosctl("template", "show", name)
    assert re.search(r"^parameters:\s+day_of_week, n$", shown.stdout, re.M), shown.stdout

    run = maosctl(
        *("task", "submit-from-template", name, "--params", '{"n": 3, "day_of_week": "monday"}'),
        *("--priority", "high", "--wait", "--format", "json"),
    )
    assert run.code == 0, run.stderr
    task = run.json()
    assert task["description"] == "count 3 rows of monday"
    assert task["result"] == {"n": 3, "day": "monday", "note": "for monday"}  # "{n}" alone keeps the number
    assert task["priority"] == "high"

    missing = one_error_line(maosctl("task", "submit-from-template", name, "--params", '{"n": 3}'))
    assert "day_of_week" in missing and "parameter" in missing
    unknown = one_error_line(maosctl("task", "submit-from-template", unique("no-such-template"), "--params", "{}"))
    assert "not found" in unknown
    bad_json = one_error_line(maosctl("task", "submit-from-template", name, "--params", "{n: 3}"))
    assert bad_json.startswith("error: --params is not valid JSON:")

    deleted = maosctl("template", "delete", name)
    assert deleted.stdout == f"deleted template {name}\n"
    assert "not found" in one_error_line(maosctl("template", "show", name))
    with Client(cluster.endpoint) as client:
        assert name not in [t.name for t in client.list_templates()]


def test_batch_create_add_submit_status(maosctl: Maosctl) -> None:
    name = unique("e2e-batch")
    assert maosctl("batch", "create", name).code == 0
    for i in range(3):
        added = maosctl("batch", "add-task", name, f"item {i}", "--agent-type", "echo", "--input", str(i))
        assert added.code == 0, added.stderr
    assert added.stdout == f"batch {name}: 3 tasks\n"
    draft = maosctl("batch", "status", name)
    assert draft.stdout.splitlines() == [
        f"batch {name}  open  3 tasks",
        f"not submitted yet: maosctl batch submit {name}",
    ]

    submitted = maosctl("batch", "submit", name, "--wait", timeout=60)
    assert submitted.code == 0, submitted.stderr
    assert submitted.stdout.splitlines()[0] == f"batch {name}: submitted 3 tasks"

    status = maosctl("batch", "status", name)
    lines = status.stdout.splitlines()
    assert lines[0] == f"batch {name}  submitted  3 tasks"
    assert lines[1].endswith("100%  3/3 done")
    assert lines[2:] == ["STATUS     TASKS", "completed      3"]
    document = maosctl("batch", "status", name, "--format", "json").json()
    assert document["state"] == "submitted"
    assert document["tasks_by_status"]["completed"] == 3
    assert len(document["task_ids"]) == 3

    listed = maosctl("batch", "list")
    row = next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert row.split()[1:4] == ["submitted", "3", "3/3"]

    assert "already" in one_error_line(maosctl("batch", "add-task", name, "late", "--agent-type", "echo"))
    assert "already exists" in one_error_line(maosctl("batch", "create", name))
    assert "not found" in one_error_line(maosctl("batch", "status", unique("no-such-batch")))


def test_sdk_plan_and_templates(cluster: Any) -> None:
    with Client(cluster.endpoint) as client:
        reply = client.plan_task(
            "sdk plan", aspects=["x", "y"], stream_agent_type="echo", synthesis_agent_type="echo", input={"k": 1}
        )
        assert reply.plan.parallel_streams == 2
        assert set(reply.task_ids) == {n.key for n in reply.nodes}
        done = client.wait_task(reply.root.id, timeout=30)
        assert done.status == common_pb2.TASK_STATUS_COMPLETED
        assert done.plan.template == "parallel-synthesis"
        name = unique("sdk-template")
        template = client.create_template(
            name, spec={"description": "echo {word}", "agent_type": "echo", "input": "{word}"}
        )
        assert list(template.parameters) == ["word"]
        task = client.submit_from_template(name, {"word": "hi"}, wait=30)
        assert task_result(task) == "hi"
        client.delete_template(name)
        with pytest.raises(NotFound):
            client.get_template(name)


async def test_async_sdk_update_task_and_batches(cluster: Any) -> None:
    async with AsyncClient(cluster.endpoint) as client:
        blocker = await client.submit_task("blocks", agent_type="sleeper")
        try:
            waiting = await client.submit_task("waits", agent_type="echo", depends_on=[blocker.id], priority="low")
            updated = await client.update_task(waiting.id, priority="high")
            assert updated.effective_priority == common_pb2.PRIORITY_HIGH
        finally:
            await client.cancel_task(blocker.id)
        name = unique("sdk-batch")
        await client.create_batch(name)
        await client.add_to_batch(name, [{"description": f"b{i}", "agent_type": "echo", "input": i} for i in range(2)])
        batch = await client.submit_batch(name)
        tasks = await client.wait_tasks(batch.task_ids, timeout=30)
        assert [task_result(t) for t in tasks] == [0, 1]
        assert name in [b.name for b in await client.list_batches()]


def test_retried_task_lists_its_attempts(maosctl: Maosctl) -> None:
    run = maosctl(
        *("task", "submit", "times out twice", "--agent-type", "sleeper", "--timeout", "0.3"),
        *("--max-retries", "1", "--retry-initial", "0.05", "--wait", "--format", "json"),
        timeout=60,
    )
    assert run.code == 1
    task = run.json()
    assert task["status"] == "timed_out"
    shown = maosctl("task", "show", task["id"])
    lines = shown.stdout.splitlines()
    head = lines.index("attempts:") + 1
    assert lines[head].split()[:4] == ["#", "STATUS", "HOST", "AGENT"]
    rows = [line.split() for line in lines[head + 1 : head + 3]]
    assert [(r[0], r[1]) for r in rows] == [("1", "timed_out"), ("2", "timed_out")]
    document = maosctl("task", "show", task["id"], "--format", "json").json()
    assert [a["status"] for a in document["attempts"]] == ["timed_out", "timed_out"]
    assert all(a["host_id"] and a["agent_id"] for a in document["attempts"])


def test_batch_submit_wait_reports_tasks_that_did_not_complete(maosctl: Maosctl) -> None:
    name = unique("e2e-failing-batch")
    maosctl("batch", "create", name)
    maosctl("batch", "add-task", name, "fine", "--agent-type", "echo")
    maosctl("batch", "add-task", name, "too slow", "--agent-type", "sleeper", "--timeout", "0.2", "--max-retries", "0")
    run = maosctl("batch", "submit", name, "--wait", timeout=60)
    assert run.code == 1
    line = one_error_line(run)
    assert line.startswith(f"error: batch {name}: 1 of 2 tasks did not complete (1 timed_out); first: ")


@pytest.mark.parametrize("policy", ["skip", "continue"])
def test_dependency_failure_policy_from_the_cli(maosctl: Maosctl, policy: str) -> None:
    failing = maosctl("task", "submit", "fails", "--agent-type", "sleeper", "--timeout", "0.5").stdout.strip()
    dependent = maosctl(
        *("task", "submit", f"after ({policy})", "--agent-type", "echo", "--input", '"ran"'),
        *("--depends-on", failing, "--on-dependency-failure", policy),
    ).stdout.strip()
    final = maosctl("task", "wait", dependent, "--timeout", "30", "--format", "json").json()
    if policy == "skip":
        assert final["status"] == "cancelled"
    else:
        assert final["status"] == "completed"
        assert final["result"] == "ran"


def test_config_set_applies_and_rejects_unknown_keys(maosctl: Maosctl) -> None:
    listed = maosctl("--format", "json", "config", "list")
    assert listed.code == 0, listed.stderr
    keys = {entry["key"] for entry in json.loads(listed.stdout)}
    assert "scheduling.max_queue_time" in keys
    changed = maosctl("config", "set", "scheduling.max_queue_time", "240")
    assert changed.code == 0, changed.stderr
    assert "scheduling.max_queue_time = 240" in changed.stdout
    assert maosctl("config", "get", "scheduling.max_queue_time").stdout.strip() == "240"
    maosctl("config", "set", "scheduling.max_queue_time", "300")
    bad = maosctl("config", "set", "scheduling.speed", "11")
    assert bad.code == 1 and "unknown setting 'scheduling.speed'" in one_error_line(bad)

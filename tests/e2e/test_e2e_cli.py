"""`maosctl` as a user types it, against a real control plane and agent host."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from maos.client import Client
from maos.client.cli._demo_data import generate_dataset

# Fixtures come from conftest.py (cluster, maosctl); nothing is imported from it so
# the suite works whether or not tests/ becomes a package.
Maosctl = Callable[..., Any]
MAOSCTL = Path(sys.executable).with_name("maosctl")
ID = re.compile(r"^[0-9A-Za-z-]{10,}$")


def free_port() -> int:
    """A TCP port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def submit(maosctl: Maosctl, *args: str) -> str:
    run = maosctl("task", "submit", *args)
    assert run.code == 0, run.stderr
    task_id: str = run.stdout.strip()
    assert ID.match(task_id), run.stdout
    return task_id


def test_submit_wait_prints_the_echo_result(maosctl: Maosctl) -> None:
    run = maosctl("task", "submit", "say hi", "--agent-type", "echo", "--input", '{"x": 1, "y": [2, 3]}', "--wait")
    assert run.code == 0, run.stderr
    assert json.loads(run.stdout) == {"x": 1, "y": [2, 3]}


def test_submit_wait_json_is_one_document_with_status_and_result(maosctl: Maosctl) -> None:
    run = maosctl(
        "task", "submit", "say hi", "--agent-type", "echo", "--input", '"hello"', "--wait", "--format", "json"
    )
    assert run.code == 0, run.stderr
    document = run.json()
    assert isinstance(document, dict)
    assert document["status"] == "completed"
    assert document["result"] == "hello"
    assert document["input"] == "hello"
    assert document["agent_type"] == "echo"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", document["finished_at"])
    assert document["host_id"]


def test_invalid_input_json_is_one_line_and_exit_1(maosctl: Maosctl) -> None:
    run = maosctl("task", "submit", "x", "--agent-type", "echo", "--input", "{not json")
    assert run.code == 1
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith("error: --input is not valid JSON: ")
    assert "line 1 column 2" in run.stderr


def test_unknown_task_id_is_not_found(maosctl: Maosctl) -> None:
    run = maosctl("task", "show", "01NOSUCHTASK0000000000000")
    assert run.code == 1
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith("error: ")
    assert "not found" in run.stderr
    assert "01NOSUCHTASK0000000000000" in run.stderr


def test_no_control_plane_gives_the_clear_unavailable_line(maosctl: Maosctl) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    run = maosctl("status", endpoint=endpoint)
    assert time.monotonic() - started < 10
    assert run.code == 1
    assert run.stderr == (
        f"error: cannot reach the MAOS control plane at {endpoint} — start one with `maosctl up` "
        "or set --endpoint / MAOS_ENDPOINT\n"
    )
    # --endpoint beats the environment.
    run = maosctl("--endpoint", endpoint, "task", "list")
    assert run.code == 1
    assert endpoint in run.stderr


def test_list_show_cancel(maosctl: Maosctl) -> None:
    running = submit(maosctl, "runs until cancelled", "--agent-type", "sleeper")
    blocked = submit(maosctl, "waits for the sleeper", "--agent-type=echo", "--depends-on", running, "--label", "e2e=1")

    shown = maosctl("task", "show", blocked)
    assert shown.code == 0, shown.stderr
    assert re.search(r"^status:\s+pending$", shown.stdout, re.M), shown.stdout
    assert re.search(rf"^depends on:\s+{running}$", shown.stdout, re.M)
    assert re.search(r"^labels:\s+e2e=1$", shown.stdout, re.M)

    listed = maosctl("task", "list", "--status", "pending", "--format", "json")
    assert listed.code == 0, listed.stderr
    assert blocked in [t["id"] for t in listed.json()]
    assert running not in [t["id"] for t in listed.json()]
    table = maosctl("task", "list", "--limit", "5")
    assert table.stdout.splitlines()[0].split()[:3] == ["ID", "STATUS", "TYPE"]
    assert any(line.startswith(blocked) for line in table.stdout.splitlines())

    cancelled = maosctl("task", "cancel", blocked, "--reason", "e2e says stop")
    assert cancelled.code == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"{blocked}: cancelled"
    again = maosctl("task", "show", blocked, "--format", "json").json()
    assert again["status"] == "cancelled"
    assert again["error"]["message"] == "e2e says stop"

    waited = maosctl("task", "wait", blocked)
    assert waited.code == 1
    assert waited.stderr.startswith(f"error: task {blocked} cancelled")

    # The sleeper is running on the host by now (or about to): cancelling stops it there.
    assert maosctl("task", "cancel", running).code == 0
    final = maosctl("task", "wait", running, "--timeout", "30", "--format", "json")
    assert final.code == 1
    assert final.json()["status"] == "cancelled"


def test_wait_timeout_is_one_line(maosctl: Maosctl) -> None:
    running = submit(maosctl, "runs until cancelled", "--agent-type", "sleeper")
    try:
        waited = maosctl("task", "wait", running, "--timeout", "0.5")
        assert waited.code == 1
        assert re.fullmatch(rf"error: task {running} is still (queued|running) after \S+s of waiting\n", waited.stderr)
    finally:
        maosctl("task", "cancel", running)


def test_status_and_host_list_tables(maosctl: Maosctl, cluster: Any) -> None:
    status = maosctl("status")
    assert status.code == 0, status.stderr
    assert re.search(rf"^control plane:\s+{re.escape(cluster.endpoint)}$", status.stdout, re.M)
    assert re.search(r"^hosts:\s+1$", status.stdout, re.M), status.stdout
    assert re.search(r"^STATUS\s+TASKS$", status.stdout, re.M)
    assert re.search(r"^completed\s+\d+$", status.stdout, re.M)

    hosts = maosctl("host", "list")
    assert hosts.code == 0, hosts.stderr
    header, *rows = hosts.stdout.splitlines()
    assert header.split()[:4] == ["ID", "HOSTNAME", "STATUS", "BUSY/SLOTS"]
    assert len(rows) == 1
    cells = rows[0].split()
    assert cells[2] == "connected"
    assert cells[3].endswith("/2")
    # Aligned: every header starts where its column's values start.
    assert header.index("STATUS") == rows[0].index("connected")


def test_json_output_parses(maosctl: Maosctl) -> None:
    for args, kind in [
        (("status",), dict),
        (("host", "list"), list),
        (("agent", "list"), list),
        (("agent", "types"), list),
        (("task", "list", "--limit", "3"), list),
    ]:
        run = maosctl("--format", "json", *args)
        assert run.code == 0, (args, run.stderr)
        assert isinstance(run.json(), kind), args
        # The per-command option works as well as the global one.
        assert isinstance(maosctl(*args, "--format", "json").json(), kind)
    types = {t["name"] for t in maosctl("agent", "types", "--format", "json").json()}
    assert {"echo", "analyst", "coordinator"} <= types


def test_workflow_progress_and_results(maosctl: Maosctl, cluster: Any, tmp_path: Path) -> None:
    paths = generate_dataset(tmp_path, shards=3, rows=2_000)
    # The one-second gate keeps the workflow running until `task progress` has attached.
    nodes: dict[str, Any] = {"gate": {"description": "gate", "agent_type": "nap"}}
    for i, path in enumerate(paths, start=1):
        nodes[f"shard-{i}"] = {
            "description": f"shard-{i}",
            "agent_type": "analyst",
            "input": {"path": str(path)},
            "depends_on": ["gate"],
        }
    shards = [key for key in nodes if key.startswith("shard-")]
    nodes["synthesis"] = {"description": "synthesis", "agent_type": "coordinator", "depends_on": shards}
    with Client(cluster.endpoint) as client:
        root, ids = client.submit_workflow(nodes, "e2e workflow")
    assert set(ids) == set(nodes)

    progress = maosctl("task", "progress", root.id, "--follow", timeout=60)
    assert progress.code == 0, progress.stderr
    lines = progress.stdout.splitlines()
    # Not a terminal: one plain line per change, no ANSI escapes, then the summary and the result.
    assert "\x1b[" not in progress.stdout
    assert any(re.search(r"\] shard-\d: completed", line) for line in lines), progress.stdout
    assert any(re.search(r"\] shard-\d: running on \S+", line) for line in lines), progress.stdout
    assert any("5/5 done" in line for line in lines), progress.stdout
    assert "pending 0 · queued 0 · running 0 · completed 5" in lines
    assert '"total_rows": 6000' in progress.stdout  # the root's result: the synthesis report

    results = maosctl("task", "results", root.id, "--format", "json")
    assert results.code == 0, results.stderr
    document = results.json()
    assert isinstance(document, dict)
    assert document["status"] == "completed"
    children = {c["description"]: c for c in document["children"]}
    assert set(children) == set(nodes)
    assert children["shard-2"]["result"]["rows"] == 2_000
    assert children["synthesis"]["status"] == "completed"


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} in maosctl up output:\n{''.join(seen)}")


def test_up_serves_until_sigterm_then_stops_both(tmp_path: Path, maosctl: Maosctl) -> None:
    data = tmp_path / "data"
    with (
        (tmp_path / "up.stderr").open("w") as stderr,
        subprocess.Popen(
            [str(MAOSCTL), "up", "--listen", "127.0.0.1:0", "--data-dir", str(data), "--workers", "1"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        ) as process,
    ):
        try:
            banner = _read_until(process, "agent host", timeout=30)
            endpoint = re.search(r"control plane\s+(\S+)", banner)
            assert endpoint is not None, banner
            status = maosctl("status", "--format", "json", endpoint=endpoint.group(1))
            assert status.code == 0, status.stderr
            assert status.json()["hosts_connected"] == 1
            pid = json.loads((data / "controlplane.ready.json").read_text())["pid"]
            assert (data / "logs" / "controlplane.log").exists()
            assert (data / "logs" / "agenthost.log").exists()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # the control plane is gone, not orphaned
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_up_demo_runs_the_workflow_and_reports(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(str(MAOSCTL), "up", "--demo", "--demo-rows", "3000", "--listen", "127.0.0.1:0"),
            *("--data-dir", str(tmp_path), "--workers", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Traceback" not in done.stderr
    assert len(list((tmp_path / "demo").glob("shard-*.csv"))) == 8
    for i in range(1, 9):
        assert re.search(rf"^shard-{i}\s+completed\s+\S+\s+\S+\s+3,000\s", out, re.M), out
    assert "synthesis (pooled over 8 shards, 24,000 rows):" in out
    assert re.search(r"^\s+revenue\s+24,000\s", out, re.M), out
    assert re.search(r"^parallel speedup:\s+\d+\.\d\dx on 2 worker slots$", out, re.M), out


def test_help_lists_every_command() -> None:
    done = subprocess.run([str(MAOSCTL), "--help"], capture_output=True, text=True, check=True)
    for command in (
        "task",
        "workflow",
        "batch",
        "template",
        "host",
        "agent",
        "status",
        "up",
        "controlplane",
        "agenthost",
    ):
        assert re.search(rf"^\s+{command}\b", done.stdout, re.M), command
    assert sys.executable  # the suite runs maosctl from the same environment

"""`maosctl metrics`, `report`, `monitor`, `alerts`, `agent metrics` and `status --resources` as a user types them.

The suite's control plane samples itself every 2 s (the default), so figures
of tasks that just ran show up within a sample or two: the tests poll.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from maos.client import Client

from tests.e2e.conftest import Cluster

# Fixtures come from conftest.py (cluster, maosctl).
Maosctl = Callable[..., Any]
TASKS = 5


def completed_echo(client: Client) -> int:
    reply = client.get_metrics(3600)
    return next((m.completed for m in reply.agent_types if m.agent_type == "echo"), 0)


@pytest.fixture(scope="module")
def ran(cluster: Cluster) -> None:
    """Some finished echo tasks, counted by the monitor (set up with the SDK: the tests are the CLI's)."""
    with Client(cluster.endpoint) as client:
        before = completed_echo(client)
        ids = [client.submit_task(f"monitor e2e {i}", agent_type="echo", input={}).id for i in range(TASKS)]
        client.wait_tasks(ids, timeout=60)
        deadline = time.monotonic() + 20
        while completed_echo(client) < before + TASKS:
            assert time.monotonic() < deadline, "the monitor never counted the tasks"
            time.sleep(0.5)


def test_metrics_table_over_a_timeframe(ran: None, maosctl: Maosctl) -> None:
    run = maosctl("metrics", "--timeframe", "24h")
    assert run.code == 0, run.stderr
    throughput = re.search(r"throughput:\s+([\d.]+)/s \(peak [\d.]+/s\) · (\d+) completed", run.stdout)
    assert throughput and int(throughput.group(2)) >= TASKS, run.stdout
    assert re.search(r"api latency:\s+p50 [\d.]+ms · p95 [\d.]+ms · p99 [\d.]+ms \(\d+ calls\)", run.stdout)
    assert "TaskService/SubmitTask" in run.stdout
    # The suite shares one cluster: other tests ran echo tasks too, some failing on purpose.
    assert re.search(r"^echo\s+\d+\s+[\d.]+%", run.stdout, re.MULTILINE), run.stdout


def test_metrics_json_has_the_chosen_sections(ran: None, maosctl: Maosctl) -> None:
    run = maosctl("--format", "json", "metrics", "--timeframe", "30m", "--metric", "throughput,queue")
    assert run.code == 0, run.stderr
    doc = run.json()
    assert doc["throughput"]["completed"] >= TASKS
    assert set(doc["queue"]["now"]) == {"critical", "high", "medium", "low"}
    assert "hosts" not in doc and "api_latency_seconds" not in doc


def test_report_prints_figures_a_score_and_recommendations(ran: None, maosctl: Maosctl) -> None:
    run = maosctl("report", "--timeframe", "1h")
    assert run.code == 0, run.stderr
    out = run.stdout
    assert "MAOS Performance Report" in out
    assert re.search(r"Average CPU Usage: controlplane \d+\.\d%", out), out
    assert re.search(r"Average Throughput: \d+\.\d tasks/minute \((\d+) completed", out), out
    assert re.search(r"Average P95 Latency: \d+\.\dms \(API\)", out), out
    score = re.search(r"Performance Score: (\d+\.\d)/100", out)
    assert score and 0 <= float(score.group(1)) <= 100, out
    assert re.search(r"Recommendations:\n  - ", out), out
    doc = maosctl("report", "--format", "json").json()
    assert 0 <= doc["score"] <= 100
    assert doc["completed"] >= TASKS
    assert set(doc["score_parts"]) == {"cpu", "memory", "latency", "success", "flow"}


def test_report_help_documents_the_score_formula(maosctl: Maosctl) -> None:
    run = maosctl("report", "--help")
    assert run.code == 0
    assert "score = 100 x sum(weight x part) / sum(weight)" in run.stdout
    for part in ("cpu      15", "memory   15", "latency  25", "success  20", "flow     25"):
        assert part in run.stdout


def test_monitor_prints_a_snapshot_per_interval_without_a_terminal(ran: None, maosctl: Maosctl) -> None:
    run = maosctl("monitor", "--duration", "3s", "--interval", "1s")
    assert run.code == 0, run.stderr
    frames = run.stdout.count("MAOS monitor · ")
    assert 2 <= frames <= 5, run.stdout
    assert re.search(r"throughput:\s+[\d.]+/s", run.stdout)
    assert "HOST" in run.stdout and "AGENT TYPE" in run.stdout
    assert "\x1b[" not in run.stdout  # no redraw escapes when piped


def test_monitor_json_is_one_document_per_line(ran: None, maosctl: Maosctl) -> None:
    run = maosctl("monitor", "--format", "json", "--duration", "2s", "--interval", "1s", "--metric", "cpu,memory")
    assert run.code == 0, run.stderr
    docs = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(docs) >= 2
    assert all(d["controlplane"]["pid"] > 0 and d["hosts"] for d in docs)
    assert all("throughput" not in d for d in docs)


def test_status_resources_and_agent_metrics(ran: None, maosctl: Maosctl) -> None:
    run = maosctl("status", "--resources")
    assert run.code == 0, run.stderr
    assert re.search(r"controlplane \(pid \d+\)\s+\d+\.\d%\s+\d+\.\d%", run.stdout), run.stdout
    assert re.search(r"host \S+\s+\d+\.\d%\s+\d+\.\d%\s+\S+ of \S+\s+2 workers", run.stdout), run.stdout
    doc = maosctl("status", "--resources", "--format", "json").json()
    assert doc["resources"]["hosts"][0]["slots"] == 2
    rates = maosctl("agent", "metrics", "--metric", "success_rate")
    assert rates.code == 0, rates.stderr
    assert rates.stdout.splitlines()[0].split() == ["AGENT", "TYPE", "SUCCESS_RATE"]
    assert re.search(r"^echo\s+\d+\.\d%$", rates.stdout, re.MULTILINE), rates.stdout  # the suite shares a cluster


def test_alerts_list_and_thresholds_are_settings(maosctl: Maosctl) -> None:
    assert maosctl("alerts").code == 0
    assert maosctl("--format", "json", "alerts", "--active").json() is not None
    set_ = maosctl("config", "set", "monitor.cpu_threshold", "75")
    try:
        assert set_.code == 0, set_.stderr
        assert maosctl("config", "get", "monitor.cpu_threshold").stdout.strip() == "75"
    finally:
        maosctl("config", "set", "monitor.cpu_threshold", "80")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("metrics", "--timeframe", "5x"), "is not a duration"),
        (("metrics", "--timeframe", "-1m"), "is negative"),
        (("report", "--timeframe", "9d"), "7 days"),
        (("monitor", "--duration", "soon"), "is not a duration"),
        (("monitor", "--metric", "cpu,bogus"), "accepted: throughput, completion, latency"),
        (("agent", "metrics", "--metric", "speed"), "accepted: tasks, completed, failed, success_rate"),
        (("config", "set", "monitor.cpu_threshold", "150"), "percentage between 0 and 100"),
    ],
)
def test_bad_input_is_one_clear_line(maosctl: Maosctl, args: tuple[str, ...], says: str) -> None:
    run = maosctl(*args)
    assert run.code == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], run.stderr

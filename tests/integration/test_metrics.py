"""Metrics, the Prometheus endpoint and the performance monitor's alerts, against a real cluster.

One control plane samples itself every 0.2 s and serves /metrics on a port of
its own; its agent profiles include `ghost`, which the agent host does not
offer, so a task of that type can only wait.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from maos.client import Client
from maos.client._analysis import analyze
from maos.client.cli._subtree import fetch_subtree
from maos.errors import InvalidArgument
from maos.testing import start_controlplane
from maos.v1 import admin_pb2

from tests.integration.conftest import TEST_AGENTS, Cluster

GHOST = """
  ghost:
    description: Offered by no agent host in this test.
    runner: {python: "tests.integration.agent_functions:sleep"}
    timeout: 30
"""
INTERVAL = 0.2
_T = TypeVar("_T")
# A sample line of the Prometheus text format: name, optional {labels}, value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})? (\S+)$')


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("metrics"))
    agents = c.root / "controlplane-agents.yaml"
    agents.write_text(TEST_AGENTS.read_text() + GHOST)
    extra = ["--metrics-interval", str(INTERVAL), "--metrics-listen", "127.0.0.1:0"]
    c.cp = start_controlplane(c.root / "cp", agents=agents, extra=extra)
    c.add_host(workers=2)
    yield c
    c.stop()


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Client]:
    with Client(cluster.endpoint) as c:
        yield c


def eventually(probe: Callable[[], _T | None], what: str, timeout: float = 20.0) -> _T:
    """Poll until `probe` answers something (the monitor samples every INTERVAL)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(INTERVAL / 2)


def agent_type(reply: admin_pb2.GetMetricsResponse, name: str) -> admin_pb2.AgentTypeMetrics:
    return next(m for m in reply.agent_types if m.agent_type == name)


def metrics_url(cluster: Cluster, path: str = "/metrics") -> str:
    ready = json.loads((cluster.root / "cp" / "ready.json").read_text())
    return f"http://{ready['metrics_endpoint']}{path}"


def test_metrics_count_the_tasks_that_ran(cluster: Cluster, client: Client) -> None:
    echo = [client.submit_task(f"echo {i}", agent_type="echo", input={"i": i}).id for i in range(12)]
    failer = [client.submit_task(f"fail {i}", agent_type="failer").id for i in range(3)]
    client.wait_tasks([*echo, *failer], timeout=60)

    def counted() -> admin_pb2.GetMetricsResponse | None:
        reply = client.get_metrics(600)
        types = {m.agent_type: m for m in reply.agent_types}
        done = types.get("echo") and types["echo"].completed == 12 and types.get("failer")
        return reply if done and types["failer"].failed == 3 else None

    reply = eventually(counted, "12 echo completions and 3 failures in the metrics")
    time.sleep(3 * INTERVAL)  # and no more come in later samples: the counts are exact
    reply = client.get_metrics(600)
    echo_m, failer_m = agent_type(reply, "echo"), agent_type(reply, "failer")
    assert (echo_m.completed, echo_m.failed, failer_m.completed, failer_m.failed) == (12, 0, 0, 3)
    assert echo_m.success_rate == 1.0 and failer_m.success_rate == 0.0
    assert not agent_type(reply, "sleeper").HasField("success_rate")  # nothing ran: unknown, not 0
    assert echo_m.mean_run_seconds > 0 and echo_m.busy_seconds > 0 and echo_m.available_seconds > 0
    assert reply.summary.completed >= 12 and reply.summary.failed >= 3
    assert reply.summary.completion.count >= 12
    assert 0 < reply.summary.completion.p50 <= reply.summary.completion.p95 <= reply.summary.completion.max
    submits = next(m for m in reply.api if m.method == "TaskService/SubmitTask")
    assert submits.latency.count >= 15 and submits.latency.p95 > 0
    waits = next(m for m in reply.api if m.method == "TaskService/WaitTasks")
    assert waits.long_poll
    [host] = reply.hosts
    assert (host.connected, host.slots) == (True, 2)
    assert host.memory_bytes > 0 and host.cpu.known
    assert reply.controlplane.pid == cluster.cp.process.pid  # type: ignore[union-attr]
    assert reply.controlplane.process_rss_bytes.mean > 0 and reply.controlplane.memory_percent.known
    assert reply.points and sum(p.completed for p in reply.points) == reply.summary.completed
    assert reply.thresholds["monitor.cpu_threshold"] == 80.0


def test_busy_time_covers_what_agents_ran(client: Client) -> None:
    ids = [client.submit_task(f"nap {i}", agent_type="sleeper", input={"seconds": 0.5}).id for i in range(2)]
    client.wait_tasks(ids, timeout=60)

    def busy() -> admin_pb2.AgentTypeMetrics | None:
        m = agent_type(client.get_metrics(600), "sleeper")
        return m if m.completed == 2 else None

    m = eventually(busy, "2 sleeper completions")
    assert m.busy_seconds >= 2 * 0.5  # each agent slept at least half a second
    assert m.mean_run_seconds >= 0.5
    assert 0 < m.utilisation <= 1


def test_parallel_efficiency_of_a_finished_tree_matches_task_analyze(client: Client) -> None:
    nodes = {
        "a": {"description": "a", "agent_type": "sleeper", "input": {"seconds": 0.3}},
        "b": {"description": "b", "agent_type": "sleeper", "input": {"seconds": 0.3}},
        "sum": {"description": "pool", "agent_type": "echo", "depends_on": ["a", "b"]},
    }
    root, _ = client.submit_workflow(nodes, "two naps and a sum")  # type: ignore[arg-type]
    root = client.wait_task(root.id, timeout=60)
    expected = analyze(root, fetch_subtree(client, root))["parallel_efficiency"]

    def measured() -> admin_pb2.MetricsSummary | None:
        summary = client.get_metrics(600).summary
        return summary if summary.trees >= 1 else None

    summary = eventually(measured, "the finished tree in the metrics")
    assert summary.trees == 1
    assert summary.parallel_efficiency == pytest.approx(expected, rel=1e-6)


def test_message_rates_count_messages_sent(client: Client) -> None:
    before = client.get_metrics(600).summary.messages_sent
    task = client.submit_task("a mailbox that waits", agent_type="ghost")  # never runs: its mailbox stays open
    try:
        for i in range(3):
            client.messages.send(task.id, {"n": i})

        def counted() -> admin_pb2.MetricsSummary | None:
            summary = client.get_metrics(600).summary
            return summary if summary.messages_sent >= before + 3 else None

        summary = eventually(counted, "3 messages in the metrics")
        assert summary.messages_sent == before + 3 and summary.messages_per_second > 0
    finally:
        client.cancel_task(task.id, "test over")


def test_prometheus_endpoint_serves_the_counters(cluster: Cluster, client: Client) -> None:
    with urllib.request.urlopen(metrics_url(cluster), timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = response.read().decode()
    values: dict[tuple[str, str], float] = {}
    families: dict[str, str] = {}
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            families[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        values[(match.group(1), match.group(2) or "")] = float(match.group(3))
    assert families["maos_tasks_completed_total"] == "counter"
    assert families["maos_api_request_duration_seconds"] == "summary"
    echo_total = values[("maos_tasks_completed_total", 'agent_type="echo"')]
    assert values[("maos_tasks_failed_total", 'agent_type="failer"')] == 3
    reply = client.get_metrics(600)
    assert echo_total == agent_type(reply, "echo").completed  # the same count both ways
    assert values[("maos_api_request_duration_seconds_count", 'method="TaskService/SubmitTask"')] >= 15
    assert ("maos_queue_depth", 'priority="medium"') in values
    assert any(name == "maos_host_cpu_percent" for name, _ in values)
    assert values[("maos_controlplane_rss_bytes", "")] > 0


def test_prometheus_endpoint_survives_bad_requests(cluster: Cluster) -> None:
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(metrics_url(cluster, "/nothing"), timeout=10)
    missing.value.close()
    assert missing.value.code == 404
    request = urllib.request.Request(metrics_url(cluster), data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as posted:
        urllib.request.urlopen(request, timeout=10)
    posted.value.close()
    assert posted.value.code == 405
    host, port = metrics_url(cluster, "").removeprefix("http://").rsplit(":", 1)
    for garbage in (b"\x00\xff garbage\r\n\r\n", b"GET\r\n\r\n", b"GET /metrics SPDY/9\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.sendall(garbage)
            assert raw.recv(100).startswith(b"HTTP/1.0 400 Bad Request")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"GET /metrics HTTP/1.0\r\nX-Long: " + b"x" * 70_000 + b"\r\n\r\n")
        try:
            answer = raw.recv(100)
        except ConnectionResetError:  # refused before it read all we sent: the kernel resets
            answer = b"HTTP/1.0 400"
        assert answer.startswith(b"HTTP/1.0 400"), answer
    silent = socket.create_connection((host, int(port)), timeout=10)  # says nothing: must not block others
    try:
        with urllib.request.urlopen(metrics_url(cluster), timeout=10) as response:
            assert response.status == 200
    finally:
        silent.close()
    assert cluster.cp is not None and cluster.cp.alive()


def active(client: Client, rule: str) -> admin_pb2.Alert | None:
    return next((a for a in client.list_alerts(active_only=True) if a.rule == rule), None)


def test_a_task_no_host_can_run_raises_queue_alerts_that_clear(client: Client) -> None:
    client.set_config("scheduling.max_queue_time", "1")
    client.set_config("monitor.idle_samples", "2")
    try:
        task = client.submit_task("wait for a ghost", agent_type="ghost")
        idle = eventually(lambda: active(client, "idle_while_queued"), "idle_while_queued")
        old = eventually(lambda: active(client, "queue_age"), "queue_age")
        assert idle.severity == "critical" and "ghost" in idle.message
        assert idle.figures["idle_agents"] >= 1 and idle.figures["waiting_tasks"] == 1
        assert old.figures["max_queue_time_seconds"] == 1 and old.figures["oldest_seconds"] > 1
        assert task.id in old.message
        in_metrics = {a.rule for a in client.get_metrics(60).alerts}
        assert {"idle_while_queued", "queue_age"} <= in_metrics
        client.cancel_task(task.id, "test over")
        eventually(
            lambda: None if active(client, "queue_age") or active(client, "idle_while_queued") else True, "clear"
        )
        listed = {a.id: a for a in client.list_alerts()}
        for alert in (idle, old):
            assert not listed[alert.id].active and listed[alert.id].HasField("cleared_at")
    finally:
        client.set_config("scheduling.max_queue_time", "300")
        client.set_config("monitor.idle_samples", "3")


def test_thresholds_are_live_settings(client: Client) -> None:
    client.set_config("monitor.sustained_samples", "1")
    client.set_config("monitor.memory_threshold", "0")  # any memory use is above it
    try:
        alert = eventually(lambda: active(client, "high_memory"), "a high_memory alert")
        assert alert.figures["threshold_percent"] == 0
    finally:
        client.set_config("monitor.memory_threshold", "85")
        client.set_config("monitor.sustained_samples", "10")
    eventually(lambda: None if active(client, "high_memory") else True, "the high_memory alert to clear")


def test_bad_requests_get_one_clear_error(client: Client) -> None:
    with pytest.raises(InvalidArgument, match="positive number of seconds"):
        client.get_metrics(-5)
    with pytest.raises(InvalidArgument, match="7 days"):
        client.get_metrics(8 * 86400)
    with pytest.raises(InvalidArgument, match="percentage between 0 and 100"):
        client.set_config("monitor.cpu_threshold", "101")

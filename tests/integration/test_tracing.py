"""OpenTelemetry tracing end to end, with real processes and real sockets.

One task's trace crosses the client (this process), the control plane, the agent
host and its worker process, with correct parent links; tracing off loads no
OpenTelemetry at all; a collector that never answers neither fails nor
noticeably slows tasks (compared with tracing off in the same run).

OpenTelemetry is imported inside the tests only: the `probe` agent below runs in
worker processes by importing this module, and reports what they loaded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from maos import tracing
from maos.client import Client
from maos.testing import start_agenthost, start_controlplane, wait_for_hosts
from maos.v1 import common_pb2

REPO = Path(__file__).resolve().parents[2]
AGENTS_YAML = """
agent_types:
  probe:
    runner: {python: "tests.integration.test_tracing:probe"}
    timeout: 60
"""
COMPLETED = common_pb2.TASK_STATUS_COMPLETED


def tracing_footprint() -> dict[str, Any]:
    """What of tracing this process holds: OpenTelemetry's tracing SDK and exporter modules, the
    global tracer provider, span-processor threads. (Only the API may be loaded by others: redis-py
    imports OpenTelemetry's metrics and trace API for its own optional instrumentation.)"""
    loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk.trace", "opentelemetry.exporter")))
    provider = ""
    if "opentelemetry.trace" in sys.modules:
        from opentelemetry import trace

        provider = type(trace.get_tracer_provider()).__name__
    threads = sorted(t.name for t in threading.enumerate() if "Otel" in t.name or "tracing" in t.name)
    return {"sdk_modules": loaded, "provider": provider, "threads": threads, "enabled": tracing.enabled()}


def probe(ctx: Any, data: Any) -> dict[str, Any]:
    """An agent: where it ran, the span current while it ran, what OpenTelemetry it loaded;
    with {"spawn": true} it also runs a child task (the SDK inside the worker is traced too);
    with {"messages": true} it reads one message, sends one to itself and reads that too."""
    span_id = ""
    if "opentelemetry.trace" in sys.modules:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        span_id = format(context.span_id, "016x") if context.is_valid else ""
    child = ""
    if isinstance(data, dict) and data.get("spawn"):
        child = ctx.spawn("child of the probe", agent_type="echo", input={"from": "probe"})
        ctx.wait([child], timeout=60)
    received = []
    if isinstance(data, dict) and data.get("messages"):
        received += [m.value for m in ctx.messages.receive(timeout=60)]
        ctx.messages.send(ctx.task_id, {"from": "the agent"})
        received += [m.value for m in ctx.messages.receive(timeout=60)]
    return {
        "received": received,
        "pid": os.getpid(),
        "span_id": span_id,
        "child": child,
        "footprint": tracing_footprint(),
        "tracing": os.environ.get(tracing.TRACING_ENV, ""),
    }


@pytest.fixture
def agents_file(tmp_path: Path) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(AGENTS_YAML)
    return path


@pytest.fixture
def sdk_tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """This process's tracing starts unconfigured and ends unconfigured (it is process-wide)."""
    tracing.shutdown()
    monkeypatch.delenv(tracing.TRACING_ENV, raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    yield monkeypatch
    tracing.shutdown()


class _Cluster:
    def __init__(self, root: Path, agents: Path, spec: str, workers: int = 2) -> None:
        flags = ["--tracing", spec]
        self.cp = start_controlplane(root / "cp", agents=agents, extra=flags)
        self.host = start_agenthost(self.cp.endpoint, root / "hosts", workers=workers, agents=agents, extra=flags)
        wait_for_hosts(self.cp.endpoint, 1)

    def stop(self) -> tuple[int | None, int | None]:
        """SIGTERM both (the host first); their exit statuses."""
        return self.host.stop(), self.cp.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {d.log}\n{d.log_text()[-3000:]}" for d in (self.cp, self.host))


def _read_spans(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------- one trace, three processes


@pytest.mark.slow
def test_one_task_is_one_trace_across_client_controlplane_host_and_worker(
    tmp_path: Path, agents_file: Path, sdk_tracing: pytest.MonkeyPatch
) -> None:
    spans_file = tmp_path / "spans.jsonl"
    spec = f"jsonl:{spans_file}"
    sdk_tracing.setenv(tracing.TRACING_ENV, spec)  # the SDK reads it when it opens its channel
    cluster = _Cluster(tmp_path, agents_file, spec)
    try:
        with Client(cluster.cp.endpoint) as client:
            submitted = client.submit_task("probe the trace", agent_type="probe", input={"spawn": True})
            done = client.wait_task(submitted.id, timeout=60)
        assert done.status == COMPLETED, cluster.logs()
        result = json.loads(done.result.data)
    finally:
        tracing.shutdown()  # flush the client's spans
        host_exit, cp_exit = cluster.stop()  # graceful: each daemon (and worker) flushes its spans
    assert -signal.SIGKILL not in (host_exit, cp_exit), cluster.logs()

    spans = _read_spans(spans_file)
    client_submit = next(
        s for s in spans if s["service"] == "maos-client" and s["name"] == "maos.v1.TaskService/SubmitTask"
    )
    trace = [s for s in spans if s["trace_id"] == client_submit["trace_id"]]
    by_id = {s["span_id"]: s for s in trace}

    # Every process took part: this one, the control plane, the host and a worker process.
    pids = {s["service"]: s["pid"] for s in trace}
    assert set(pids) == {"maos-client", "maos-controlplane", "maos-agenthost", "maos-worker"}
    assert pids["maos-client"] == os.getpid()
    assert pids["maos-controlplane"] == cluster.cp.pid and pids["maos-agenthost"] == cluster.host.pid
    assert len(set(pids.values())) == 4

    # One root (the client's submit); every other span's parent is in the same trace.
    roots = [s for s in trace if s["parent_span_id"] is None]
    assert roots == [client_submit]
    assert all(s["parent_span_id"] in by_id for s in trace if s is not client_submit)

    def ancestors(span: dict[str, Any]) -> list[str]:
        names = []
        while span["parent_span_id"] is not None:
            span = by_id[span["parent_span_id"]]
            names.append(f"{span['service']}:{span['name']}")
        return names

    probe_task = submitted.id
    run = next(s for s in trace if s["name"] == "maos.agent.run probe")
    assert run["service"] == "maos-worker" and run["pid"] == result["pid"] != cluster.host.pid
    assert run["span_id"] == result["span_id"]  # the agent ran inside its span, in its process
    assert run["attributes"]["maos.task.id"] == probe_task
    assert ancestors(run) == [
        "maos-agenthost:maos.host.assignment probe",
        "maos-controlplane:maos.task.attempt",
        "maos-controlplane:maos.task probe",
        "maos-controlplane:maos.v1.TaskService/SubmitTask",
        "maos-client:maos.v1.TaskService/SubmitTask",
    ]
    task = next(s for s in trace if s["name"] == "maos.task probe")
    assert [e["name"] for e in task["events"]] == ["queued", "running", "completed"]
    assert task["attributes"]["maos.task.status"] == "completed"
    record = next(
        s for s in trace if s["name"] == "maos.task.record_result" and s["attributes"]["maos.task.id"] == probe_task
    )
    attempt = by_id[by_id[run["parent_span_id"]]["parent_span_id"]]
    assert record["parent_span_id"] == task["span_id"]
    assert [link["span_id"] for link in record["links"]] == [attempt["span_id"]]  # the result links back

    # The child the agent spawned joins the same trace through the worker's own SDK calls.
    child_run = next(s for s in trace if s["name"] == "maos.agent.run echo")
    assert child_run["attributes"]["maos.task.id"] == result["child"]
    assert "maos-worker:maos.agent.run probe" in ancestors(child_run)
    assert "maos-worker:maos.v1.TaskService/SubmitTask" in ancestors(child_run)


@pytest.mark.slow
def test_messages_carry_their_senders_trace_to_their_readers(
    tmp_path: Path, agents_file: Path, sdk_tracing: pytest.MonkeyPatch
) -> None:
    """A message from the client and one from an agent: each gets a send span in its sender's
    trace on the control plane, and each read of it a receive span under that send span."""
    spans_file = tmp_path / "spans.jsonl"
    spec = f"jsonl:{spans_file}"
    sdk_tracing.setenv(tracing.TRACING_ENV, spec)
    cp = start_controlplane(tmp_path / "cp", agents=agents_file, extra=["--tracing", spec])
    # Every message through the control plane (none delivered host-locally), so each is seen there.
    host = start_agenthost(
        cp.endpoint, tmp_path / "hosts", workers=1, agents=agents_file, extra=["--tracing", spec, "--no-local-messages"]
    )
    try:
        wait_for_hosts(cp.endpoint, 1)
        with Client(cp.endpoint) as client:
            task = client.submit_task("read messages", agent_type="probe", input={"messages": True})
            client.messages.send(task.id, {"from": "the client"})
            done = client.wait_task(task.id, timeout=60)
        assert done.status == COMPLETED, cp.log_text()[-3000:] + host.log_text()[-3000:]
        assert json.loads(done.result.data)["received"] == [{"from": "the client"}, {"from": "the agent"}]
    finally:
        tracing.shutdown()
        host.stop()
        cp.stop()

    spans = _read_spans(spans_file)
    by_id = {s["span_id"]: s for s in spans}

    def chain(span: dict[str, Any]) -> list[str]:
        names = []
        while span["parent_span_id"] in by_id:
            span = by_id[span["parent_span_id"]]
            names.append(f"{span['service']}:{span['name']}")
        return names

    sends = [s for s in spans if s["name"] == "maos.message.send" and s["attributes"]["messaging.destination.name"]]
    sends = [s for s in sends if s["attributes"]["messaging.destination.name"] == f"task:{task.id}"]
    assert len(sends) == 2
    from_client = next(s for s in sends if "maos-client:maos.v1.MessageService/Send" in chain(s))
    from_agent = next(s for s in sends if s is not from_client)
    assert from_client["kind"] == "PRODUCER" and from_client["service"] == "maos-controlplane"
    assert chain(from_client)[:2] == [
        "maos-controlplane:maos.v1.MessageService/Send",
        "maos-client:maos.v1.MessageService/Send",
    ]
    # The agent's send went through its host's relay and up the host stream: the context rode on the request.
    assert chain(from_agent)[:2] == ["maos-worker:maos.v1.MessageService/Send", "maos-worker:maos.agent.run probe"]
    for send in (from_client, from_agent):
        reads = [s for s in spans if s["name"] == "maos.message.receive" and s["parent_span_id"] == send["span_id"]]
        assert reads, send
        assert all(r["trace_id"] == send["trace_id"] and r["kind"] == "CONSUMER" for r in reads)


# ----------------------------------------------------------------------------- tracing off


def test_tracing_off_loads_no_opentelemetry_in_any_process(tmp_path: Path, agents_file: Path) -> None:
    """Control plane, agent host and SDK in one process (and a worker process below it), tracing
    off by default: none of them imports OpenTelemetry, so no provider or exporter can exist."""
    script = """
import asyncio, json, sys
from pathlib import Path
from maos.agenthost import AgentHost, AgentHostConfig
from maos.client import AsyncClient
from maos.controlplane._config import ControlPlaneConfig
from maos.controlplane._server import ControlPlane
from tests.integration.test_tracing import tracing_footprint


async def main(root: Path, agents: Path, repo: str) -> dict:
    config = ControlPlaneConfig(listen="127.0.0.1:0", data_dir=root / "cp", agents_file=agents)
    async with ControlPlane(config) as cp:
        host_config = AgentHostConfig(controlplane=cp.endpoint, workers=1, agents_file=agents, python_path=(repo,))
        async with AgentHost(host_config), AsyncClient(cp.endpoint) as client:
            task = await client.submit_task("probe", agent_type="probe", wait=60)
            here = tracing_footprint()  # while the control plane, the host and the client run
    return {"status": task.status, "worker": json.loads(task.result.data) if task.result.data else None, "here": here}


print(json.dumps(asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))))
"""
    env = {k: v for k, v in os.environ.items() if k != tracing.TRACING_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(agents_file), str(REPO)],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == COMPLETED
    nothing = {"sdk_modules": [], "provider": "ProxyTracerProvider", "threads": [], "enabled": False}
    here = report["here"]  # control plane + agent host + client: no tracing SDK, exporter, provider or thread
    assert here == nothing | {"provider": here["provider"] or "ProxyTracerProvider"}
    worker = report["worker"]["footprint"]  # the worker process does not even load the API
    assert worker == nothing | {"provider": ""}
    assert report["worker"]["tracing"] == "off"  # the host told its workers so, explicitly
    assert report["worker"]["span_id"] == ""


def test_a_bad_tracing_setting_is_one_clear_error(tmp_path: Path) -> None:
    for module in ("maos.controlplane", "maos.agenthost"):
        proc = subprocess.run(
            [sys.executable, "-m", module, "--tracing", "zipkin"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "--tracing 'zipkin': expected off, otlp-grpc[=ENDPOINT], otlp-http[=ENDPOINT] or jsonl:PATH" in lines[0]


# ----------------------------------------------------------------------------- an unreachable collector


def _blackhole() -> socket.socket:
    """A port that accepts connections (the kernel completes the handshake) and never answers:
    an exporter's every call waits for its timeout, the worst case for a collector."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    return sock


def _round_trip_ms(client: Client) -> float:
    start = time.perf_counter()
    task = client.submit_task("round trip", agent_type="echo", input={"n": 1}, wait=30)
    elapsed = (time.perf_counter() - start) * 1e3
    assert task.status == COMPLETED, task
    return elapsed


@pytest.mark.slow
def test_an_unreachable_collector_neither_fails_nor_slows_tasks(
    tmp_path: Path, agents_file: Path, sdk_tracing: pytest.MonkeyPatch
) -> None:
    grpc_hole, http_hole = _blackhole(), _blackhole()
    grpc_port, http_port = grpc_hole.getsockname()[1], http_hole.getsockname()[1]
    # Started from this thread: daemons get SIGTERM when the thread that spawned them ends (PDEATHSIG).
    off = _Cluster(tmp_path / "off", agents_file, "off", workers=1)
    traced = _Cluster(tmp_path / "traced", agents_file, f"otlp-grpc=127.0.0.1:{grpc_port}", workers=1)
    try:
        off_client = Client(off.cp.endpoint)  # opened while tracing is off: never traced
        _round_trip_ms(off_client)
        tracing.configure(f"otlp-http=127.0.0.1:{http_port}", tracing.CLIENT_SERVICE_NAME)
        traced_client = Client(traced.cp.endpoint)
        _round_trip_ms(traced_client)  # warm both (first spans, channels, workers)
        off_ms: list[float] = []
        traced_ms: list[float] = []
        for _ in range(15):  # interleaved, so both see the same machine noise
            off_ms.append(_round_trip_ms(off_client))
            traced_ms.append(_round_trip_ms(traced_client))
        off_client.close()
        traced_client.close()
    finally:
        tracing.shutdown()
        with ThreadPoolExecutor(2) as pool:
            stopping = pool.submit(traced.stop)
            off.stop()
            traced_exits = stopping.result()
        grpc_hole.close()
        http_hole.close()
    ratio = statistics.median(traced_ms) / statistics.median(off_ms)
    # Exports wait for a collector that never answers, on the exporter's thread only: a blocked
    # export on the task path would cost its 2 s timeout per task, hundreds of times an echo's round trip.
    assert ratio < 4, (ratio, off_ms, traced_ms)
    # And shutting down with spans still unexported is bounded: no SIGKILL after the stop grace.
    assert -signal.SIGKILL not in traced_exits, traced.logs()


# ----------------------------------------------------------------------------- RPC spans, in process


async def test_rpc_spans_join_client_and_server_with_statuses() -> None:
    """The server interceptor (outermost, before the error mapping) and both client interceptors."""
    import asyncio

    from maos.controlplane.api import ErrorMappingInterceptor
    from maos.controlplane.api._tracing import TracingInterceptor
    from maos.errors import NotFound
    from maos.tracing._grpc_client import TracingClientInterceptor, aio_interceptors
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    current: list[int] = []

    async def ok(request: bytes, context: Any) -> bytes:
        current.append(trace.get_current_span().get_span_context().span_id)
        return request

    async def fail(request: bytes, context: Any) -> bytes:
        raise NotFound("no such probe")

    async def stream(request: bytes, context: Any) -> Any:
        yield b"1"
        yield b"2"

    server = grpc.aio.server(interceptors=[TracingInterceptor(tracer), ErrorMappingInterceptor()])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Probe",
                {
                    "Ok": grpc.unary_unary_rpc_method_handler(ok),
                    "Fail": grpc.unary_unary_rpc_method_handler(fail),
                    "Stream": grpc.unary_stream_rpc_method_handler(stream),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    target = f"127.0.0.1:{port}"
    try:

        def blocking_calls() -> None:
            with grpc.insecure_channel(target) as raw:
                channel = grpc.intercept_channel(raw, TracingClientInterceptor(tracer))
                assert channel.unary_unary("/test.Probe/Ok")(b"x", timeout=10) == b"x"
                with pytest.raises(grpc.RpcError) as info:
                    channel.unary_unary("/test.Probe/Fail")(b"x", timeout=10)
                assert info.value.code() is grpc.StatusCode.NOT_FOUND
                assert list(channel.unary_stream("/test.Probe/Stream")(b"x", timeout=10)) == [b"1", b"2"]

        await asyncio.to_thread(blocking_calls)
        async with grpc.aio.insecure_channel(target, interceptors=aio_interceptors(tracer)) as channel:
            assert await channel.unary_unary("/test.Probe/Ok")(b"y", timeout=10) == b"y"
            with pytest.raises(grpc.aio.AioRpcError) as aio_info:
                await channel.unary_unary("/test.Probe/Fail")(b"y", timeout=10)
            assert aio_info.value.code() is grpc.StatusCode.NOT_FOUND
            assert [r async for r in channel.unary_stream("/test.Probe/Stream")(b"y", timeout=10)] == [b"1", b"2"]
    finally:
        await server.stop(None)
    for _ in range(100):  # a stream's client span ends from gRPC's callback thread
        if len(exporter.get_finished_spans()) >= 12:
            break
        await asyncio.sleep(0.02)
    provider.shutdown()

    spans = exporter.get_finished_spans()
    clients = [s for s in spans if s.kind is SpanKind.CLIENT]
    servers = {s.parent.span_id: s for s in spans if s.kind is SpanKind.SERVER and s.parent is not None}
    assert len(clients) == 6 and len(servers) == 6  # every server span's parent is a client span
    for client_span in clients:
        server_span = servers[client_span.context.span_id]
        assert server_span.context.trace_id == client_span.context.trace_id
        assert server_span.name == client_span.name
        method = client_span.name.rpartition("/")[2]
        if method == "Fail":
            assert server_span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
            assert server_span.status.status_code is StatusCode.ERROR
            assert "no such probe" in (server_span.status.description or "")
            assert client_span.status.status_code is StatusCode.ERROR
        else:
            assert server_span.attributes["rpc.grpc.status_code"] == 0
            assert server_span.status.status_code is StatusCode.UNSET
    ok_servers = [s.context.span_id for s in servers.values() if s.name.endswith("/Ok")]
    assert sorted(current) == sorted(ok_servers)  # the handler ran inside its server span

"""Fan-out between control planes over real Redis (`--redis`): a standby serves state reads,
state watches and topic watches with the leader's live events, keeps them open through a
SIGKILL of the leader, and catches up from the store's change log after Redis comes back."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest
from maos.client import Client
from maos.client._state_client import StateEvent
from maos.testing import ControlPlaneProcess, Daemon, start_controlplane
from maos.v1 import messages_pb2

from tests.integration.conftest import TEST_AGENTS
from tests.integration.store.pg import fresh_schema_sync, schema_url
from tests.support.api import RawApi
from tests.support.tcp_proxy import BackgroundProxy

REDIS_URL = os.environ.get("MAOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_REDIS = urlsplit(REDIS_URL)


class Collector(threading.Thread):
    """Reads `count` items from a stream opened on this thread, then ends."""

    def __init__(self, open_stream: Callable[[], Iterator[Any]], count: int) -> None:
        super().__init__(daemon=True)
        self._open = open_stream
        self.count = count
        self.items: list[Any] = []
        self.error: BaseException | None = None
        self.started_streaming = threading.Event()

    def run(self) -> None:
        try:
            stream = self._open()
            self.started_streaming.set()
            for item in stream:
                self.items.append(item)
                if len(self.items) >= self.count:
                    break
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.started_streaming.set()

    def wait_for(self, n: int, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.items) < n:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"{len(self.items)} of {n} items arrived"
            time.sleep(0.02)


def _watch_state(endpoint: str, prefix: str, count: int) -> Collector:
    def open_stream() -> Iterator[StateEvent]:
        client = Client(endpoint)
        return client.state.watch(prefix=prefix, namespace="global")

    collector = Collector(open_stream, count)
    collector.start()
    collector.started_streaming.wait(10)
    return collector


def _watch_topic(endpoint: str, topic: str, count: int) -> Collector:
    def open_stream() -> Iterator[messages_pb2.Message]:
        client = Client(endpoint)
        return client.messages.watch_topic(topic)

    collector = Collector(open_stream, count)
    collector.start()
    collector.started_streaming.wait(10)
    return collector


def _code(api: RawApi) -> grpc.StatusCode:
    try:
        api.get("01J0000000000000000000000X")
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _leading(endpoint: str, deadline: float) -> None:
    """Wait until `endpoint` answers task calls (NOT_FOUND for a made-up id) instead of UNAVAILABLE."""
    api = RawApi(endpoint)
    try:
        while (code := _code(api)) is not grpc.StatusCode.NOT_FOUND:
            assert code is grpc.StatusCode.UNAVAILABLE, code
            assert time.monotonic() < deadline, "the standby never took over"
            time.sleep(0.05)
    finally:
        api.close()


def _stop(daemons: list[Daemon]) -> None:
    for daemon in daemons:
        if daemon.process.poll() is None:
            daemon.stop()


def _pair(
    tmp_path: Path, schema: str, standby_redis: str = REDIS_URL
) -> tuple[ControlPlaneProcess, ControlPlaneProcess]:
    args = ["--store", schema_url(schema), "--store-pool-size", "2"]
    leader = start_controlplane(tmp_path / "cp1", agents=TEST_AGENTS, extra=[*args, "--redis", REDIS_URL])
    standby = start_controlplane(
        tmp_path / "cp2",
        agents=TEST_AGENTS,
        extra=[*args, "--redis", standby_redis, "--metrics-listen", "127.0.0.1:0"],
    )
    return leader, standby


@pytest.mark.slow
def test_a_standby_serves_watches_with_the_leaders_events_through_a_failover(tmp_path: Path) -> None:
    daemons: list[Daemon] = []
    with fresh_schema_sync() as schema:
        try:
            leader, standby = _pair(tmp_path, schema)
            daemons += [leader, standby]
            with Client(leader.endpoint) as on_leader:
                on_leader.state.put("hello", {"from": "leader"}, namespace="global")
            with Client(standby.endpoint) as on_standby:
                # Reads on the standby come from the shared store.
                got = on_standby.state.get("hello", namespace="global")
                assert got is not None and got.value == {"from": "leader"}
            # Writes are still the leader's: the standby refuses them, naming it.
            raw = RawApi(standby.endpoint)
            with pytest.raises(grpc.RpcError) as refused:
                raw.submit("not here")
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
            assert leader.endpoint in (refused.value.details() or "")
            raw.close()

            counter = _watch_state(standby.endpoint, "c/", 300)
            news = _watch_topic(standby.endpoint, "news", 70)
            time.sleep(0.3)  # both streams registered on the standby
            with Client(leader.endpoint) as on_leader:
                for n in range(1, 201):
                    on_leader.state.put("c/n", n, namespace="global")
                for i in range(50):
                    on_leader.messages.publish("news", {"i": i})
            counter.wait_for(200)
            news.wait_for(50)

            # The leader dies; the standby leads, and the watches it serves go on.
            leader.kill()
            _leading(standby.endpoint, time.monotonic() + 30)
            with Client(standby.endpoint) as on_new_leader:
                for n in range(201, 301):
                    on_new_leader.state.put("c/n", n, namespace="global")
                for i in range(50, 70):
                    on_new_leader.messages.publish("news", {"i": i})
            counter.wait_for(300)
            news.wait_for(70)
            counter.join(5)
            news.join(5)

            values = [e.value for e in counter.items]
            assert values == list(range(1, 301))  # every committed version, once, in order
            revisions = [e.revision for e in counter.items]
            assert revisions == sorted(set(revisions))
            published = [orjson_value(m) for m in news.items]
            assert published == [{"i": i} for i in range(70)]
        finally:
            _stop(daemons)


def _metrics(data_dir: Path) -> dict[str, float]:
    """The unlabelled samples of a control plane's Prometheus endpoint."""
    ready = json.loads((data_dir / "ready.json").read_text())
    with urllib.request.urlopen(f"http://{ready['metrics_endpoint']}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    samples = (line.split() for line in text.splitlines() if line and not line.startswith("#"))
    return {parts[0]: float(parts[1]) for parts in samples if len(parts) == 2 and "{" not in parts[0]}


def orjson_value(message: messages_pb2.Message) -> Any:
    import orjson

    return orjson.loads(message.payload.data)


@pytest.mark.slow
def test_a_standby_watch_catches_up_from_the_log_when_redis_comes_back(tmp_path: Path) -> None:
    daemons: list[Daemon] = []
    with fresh_schema_sync() as schema, BackgroundProxy(_REDIS.hostname or "127.0.0.1", _REDIS.port or 6379) as proxy:
        try:
            # Only the standby reaches Redis through the proxy: cutting it cuts the standby off.
            via_proxy = urlunsplit(_REDIS._replace(netloc=proxy.address))
            leader, standby = _pair(tmp_path, schema, standby_redis=via_proxy)
            daemons += [leader, standby]
            watch = _watch_state(standby.endpoint, "k/", 60)
            time.sleep(0.3)
            with Client(leader.endpoint) as on_leader:
                for n in range(1, 11):
                    on_leader.state.put("k/x", n, namespace="global")
                watch.wait_for(10)
                proxy.cut()
                for n in range(11, 61):  # committed while the standby hears nothing
                    on_leader.state.put("k/x", n, namespace="global")
            time.sleep(1.0)
            assert len(watch.items) == 10
            proxy.restore()
            # No further write: the reconnected subscription resyncs and the watch reads the log.
            watch.wait_for(60, seconds=30)
            assert [e.value for e in watch.items] == list(range(1, 61))
            assert "fan-out from other control planes paused" in standby.log.read_text()
            metrics = _metrics(tmp_path / "cp2")
            assert metrics["maos_fanout_connected"] == 1
            assert metrics["maos_fanout_received_total"] >= 10
            assert metrics["maos_fanout_resyncs_total"] >= 2  # the first subscription, and the one after the cut
        finally:
            _stop(daemons)


def test_inside_an_agent_a_topic_watch_goes_to_the_control_plane_not_the_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp = start_controlplane(tmp_path / "cp", agents=TEST_AGENTS)
    try:
        # As a host sets it for its agents; no relay listens there, so any call routed to it fails.
        monkeypatch.setenv("MAOS_ENDPOINT", cp.endpoint)
        monkeypatch.setenv("MAOS_MESSAGES_ENDPOINT", f"unix://{tmp_path}/no-relay.sock")
        watch = _watch_topic(cp.endpoint, "inside", 1)
        time.sleep(0.2)
        monkeypatch.delenv("MAOS_MESSAGES_ENDPOINT")
        with Client(cp.endpoint) as client:
            client.messages.publish("inside", "seen")
        watch.wait_for(1)
        assert orjson_value(watch.items[0]) == "seen"
    finally:
        cp.stop()


def test_a_topic_watch_sees_publications_and_consumes_nothing(tmp_path: Path) -> None:
    cp = start_controlplane(tmp_path / "cp", agents=TEST_AGENTS)
    try:
        with Client(cp.endpoint) as client:
            assert client.messages.receive("topic:alerts/ops") == []  # a subscription, made durable
            watch = _watch_topic(cp.endpoint, "alerts", 5)
            time.sleep(0.2)
            for i in range(5):
                client.messages.publish("alerts", {"i": i}, priority="high")
            watch.wait_for(5)
            assert [orjson_value(m) for m in watch.items] == [{"i": i} for i in range(5)]
            assert all(m.topic == "alerts" and m.recipient == "topic:alerts" and m.id for m in watch.items)
            # The watch consumed nothing: the subscription still holds every message.
            held = client.messages.receive("topic:alerts/ops", max=10)
            assert [m.id for m in held] == [m.id for m in watch.items]
            with pytest.raises(Exception, match="topic"):
                next(iter(client.messages.watch_topic("bad topic!")))
    finally:
        cp.stop()


def test_a_redis_that_cannot_be_reached_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot reach Redis"):
        start_controlplane(tmp_path / "cp", extra=["--redis", "redis://127.0.0.1:1/0"], timeout=20)

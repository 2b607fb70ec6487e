"""SIGKILL the process holding the message service with sends in flight: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc.aio
import pytest
from maos.client._messages_client import AsyncMessagesClient, message_value
from maos.errors import MaosError

REPO = Path(__file__).resolve().parents[3]


class ServiceProcess:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def start(self) -> str:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.messaging", str(self.db), "A", "B"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.endpoint = self.proc.stdout.readline().strip()
        assert self.endpoint, "the message service did not start"
        return self.endpoint

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(10)
            self._close_pipes()

    def stop(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the service stops when its stdin closes
            self.proc.wait(10)
            self._close_pipes()

    def _close_pipes(self) -> None:
        assert self.proc is not None
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    s = ServiceProcess(tmp_path / "maos.db")
    yield s
    s.kill()


async def test_sigkill_with_sends_in_flight_loses_nothing_acknowledged(service: ServiceProcess) -> None:
    endpoint = await asyncio.to_thread(service.start)
    acknowledged: set[int] = set()
    enough = asyncio.Event()
    async with grpc.aio.insecure_channel(endpoint) as channel:
        sender = AsyncMessagesClient(channel, endpoint, caller=("A", 1))

        async def send(i: int) -> None:
            try:
                await sender.send("B", {"i": i})
                acknowledged.add(i)
                if len(acknowledged) >= 500:
                    enough.set()
            except MaosError:
                pass  # cut off by the kill: not acknowledged, so not promised

        sends = [asyncio.ensure_future(send(i)) for i in range(3000)]
        await asyncio.wait_for(enough.wait(), 30)
        await asyncio.to_thread(service.kill)
        await asyncio.gather(*sends)
    assert 500 <= len(acknowledged) < 3000, "the kill should land while sends are in flight"

    endpoint = await asyncio.to_thread(service.start)
    received: set[int] = set()
    async with grpc.aio.insecure_channel(endpoint) as channel:
        receiver = AsyncMessagesClient(channel, endpoint, caller=("B", 1))
        while batch := await receiver.receive(max=1000):
            received.update(message_value(m)["i"] for m in batch)
            await receiver.ack(None, [m.id for m in batch])
    await asyncio.to_thread(service.stop)
    assert acknowledged <= received  # committed-but-unanswered sends may show up too: at-least-once

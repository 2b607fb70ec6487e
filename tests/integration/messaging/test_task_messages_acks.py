"""TaskMessages acknowledges in the background, several reads' ids in one Ack while one is under way:
none may be lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from maos.client._context_messages import TaskMessages
from maos.controlplane.messaging import MessagingConfig

from tests.support.messaging import MessageServer


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[MessageServer]:
    s = MessageServer(tmp_path / "maos.db", MessagingConfig())
    s.tasks.add("R")
    for task_id in ("V1", "V2"):
        s.tasks.add(task_id, "R")
    await s.start()
    yield s
    await s.stop()


def agent(server: MessageServer, task_id: str) -> TaskMessages:
    return TaskMessages(task_id=task_id, attempt=1, root_id="R", endpoint=server.endpoint)


async def test_every_message_receive_handed_out_is_acknowledged_by_flush(server: MessageServer) -> None:
    v1, v2 = agent(server, "V1"), agent(server, "V2")

    def run() -> int:
        v1.send_many([{"to_task_id": "V2", "payload": i} for i in range(50)])
        got = []
        while len(got) < 50:
            got += v2.receive(1, max=3)  # many small reads: their acks go up together while reads go on
        v2.flush()
        return len({m.value for m in got})

    assert await asyncio.to_thread(run) == 50
    assert server.messaging is not None
    (row,) = [r for r in server.messaging.stats() if r.name == "task:V2"]
    assert (row.queued, row.in_flight, row.stats.delivered) == (0, 0, 50)

"""A batch for a full mailbox is refused before its payloads are read, but never a resend that
needs no room; a host relay asking for more in flight than allowed is served the most allowed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from maos.controlplane.api._host_messages import HostMessageBridge
from maos.controlplane.messaging import MessagingConfig
from maos.errors import ResourceExhausted
from maos.v1 import hosts_pb2

from tests.support.messaging import MessageServer


async def test_a_full_mailbox_refuses_before_payloads_are_checked_but_a_resend_of_held_ids_passes(
    tmp_path: Path,
) -> None:
    s = MessageServer(tmp_path / "maos.db", MessagingConfig(max_queued=5))
    for task in ("A", "B"):
        s.tasks.add(task, "A")
    await s.start()
    try:
        a = s.client("A")
        held = [{"to_task_id": "B", "payload": i, "message_id": f"m{i}"} for i in range(5)]
        assert await a.send_many(held) == [f"m{i}" for i in range(5)]
        # Room is checked first: the bad payload would be reported once there is room.
        bad = [{"to_task_id": "B", "payload": b"{not json", "content_type": "application/json"}]
        with pytest.raises(ResourceExhausted, match="task:B is full: 5 messages waiting"):
            await a.send_many(bad)
        # Client ids may name messages already held (a retry): no room needed, and none is asked.
        assert await a.send_many(held) == [f"m{i}" for i in range(5)]
        with pytest.raises(ResourceExhausted, match="task:B is full"):
            await a.send_many([*held, {"to_task_id": "B", "payload": 9, "message_id": "m9"}])
        stats = {row.mailbox: row for row in await a.stats()}
        assert stats["task:B"].rejected_full == 2 and stats["task:B"].queued == 5
    finally:
        await s.stop()


async def test_a_relay_asking_more_in_flight_than_allowed_still_gets_its_mailbox(tmp_path: Path) -> None:
    s = MessageServer(tmp_path / "maos.db", MessagingConfig(max_in_flight=20, default_max_in_flight=10))
    for task in ("A", "B"):
        s.tasks.add(task, "A")
    await s.start()
    assert s.messaging is not None
    items: list[hosts_pb2.ControlItem] = []

    def send(item: hosts_pb2.ControlItem | bytes) -> bool:
        # Deliveries come framed already (an element of a ControlItems batch).
        items.append(
            item if isinstance(item, hosts_pb2.ControlItem) else hosts_pb2.ControlItems.FromString(item).items[0]
        )
        return True

    bridge = HostMessageBridge("h1", s.messaging, send)
    try:
        sub = hosts_pb2.MailboxSubscribe(mailbox="task:B", caller_task_id="B", lease_seconds=60, max_in_flight=5000)
        bridge.handle(hosts_pb2.HostItem(mailbox_subscribe=sub), "mailbox_subscribe")
        await s.client("A").send_many([{"to_task_id": "B", "payload": i} for i in range(30)])
        for _ in range(200):
            if sum(len(i.message_delivery.messages) for i in items) >= 20:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        kinds = {i.WhichOneof("item") for i in items}
        assert kinds == {"message_delivery"}  # no MailboxClosed
        assert sum(len(i.message_delivery.messages) for i in items) == 20  # the control plane's bound
    finally:
        bridge.close()
        await s.stop()

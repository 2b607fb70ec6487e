"""MessageRelay without sockets: what it delivers locally, what it sends up, and what it gives back."""

from __future__ import annotations

import asyncio

import pytest
from maos.agenthost._relay import MessageRelay, RelayConfig
from maos.controlplane.messaging import MessagingConfig
from maos.errors import NotFound, PermissionDenied, ResourceExhausted, Unavailable
from maos.v1 import common_pb2, hosts_pb2, messages_pb2


class Upstream:
    """The host stream as the relay sees it: items it sent, and whether it is up."""

    def __init__(self) -> None:
        self.items: list[hosts_pb2.HostItem] = []
        self.up = True

    def send(self, item: hosts_pb2.HostItem, size: int) -> bool:
        if not self.up:
            return False
        self.items.append(item)
        return True

    def kinds(self) -> list[str]:
        return [str(item.WhichOneof("item")) for item in self.items]

    def calls(self) -> list[hosts_pb2.MessageCall]:
        return [i.message_call for i in self.items if i.WhichOneof("item") == "message_call"]


def _relay(**config: object) -> tuple[MessageRelay, Upstream]:
    up = Upstream()
    relay = MessageRelay(RelayConfig(**config), up.send, lambda: up.up)  # type: ignore[arg-type]
    relay.task_assigned("A", "R")
    relay.task_assigned("B", "R")
    relay.task_assigned("X", "OTHER")
    return relay, up


def _send(to: str, value: str, priority: int = 0, message_id: str = "") -> messages_pb2.SendRequest:
    return messages_pb2.SendRequest(
        to_task_id=to,
        priority=priority,  # type: ignore[arg-type]
        payload=common_pb2.Payload(data=value.encode(), content_type="application/json"),
        message_id=message_id,
    )


async def test_tasks_of_one_tree_on_this_host_talk_locally_in_priority_order() -> None:
    relay, up = _relay()
    await relay.send("A", _send("B", '"low"', priority=4))
    await relay.send("A", _send("B", '"critical"', priority=1))
    await relay.send("A", _send("B", '"low again"', priority=4))
    got = await relay.receive("B", "", 10, 0, 30)
    assert [m.payload.data for m in got] == [b'"critical"', b'"low"', b'"low again"']
    assert all(m.sender_task_id == "A" and m.delivery_count == 1 for m in got)
    assert relay.ack("B", "", [m.id for m in got]) == 3
    assert up.calls() == []  # nothing went to the control plane: no sends, no acks
    assert up.kinds() == ["mailbox_subscribe"]  # B's mailbox is also fed from upstream
    stats = relay.message_stats()
    assert stats.sent_local == 3 and stats.acknowledged == 3 and stats.sent_upstream == 0


async def test_a_resent_message_id_is_a_no_op_and_a_full_mailbox_refuses() -> None:
    relay, _ = _relay(limits=MessagingConfig(max_queued=2))
    first = await relay.send("A", _send("B", "1", message_id="m1"))
    again = await relay.send("A", _send("B", "1", message_id="m1"))
    assert first.message_ids == again.message_ids == ["m1"]
    await relay.send("A", _send("B", "2"))
    with pytest.raises(ResourceExhausted, match="task:B is full"):
        await relay.send("A", _send("B", "3"))
    batch = messages_pb2.SendBatchRequest(messages=[_send("B", "4")])
    with pytest.raises(ResourceExhausted):
        await relay.send_batch("A", batch)
    assert relay.message_stats().delivery_errors == 2


async def test_other_trees_and_remote_tasks_go_up_the_stream_and_get_the_reply() -> None:
    relay, up = _relay()
    pending = asyncio.ensure_future(relay.send("A", _send("X", "1")))  # X is of another tree
    await asyncio.sleep(0)
    (call,) = up.calls()
    assert call.caller_task_id == "A" and call.send.to_task_id == "X"
    relay.on_reply(
        hosts_pb2.MessageReply(call_id=call.call_id, send=messages_pb2.SendResponse(message_ids=["id1"], recipients=1))
    )
    assert (await pending).message_ids == ["id1"]
    failing = asyncio.ensure_future(relay.send("A", _send("elsewhere", "1")))
    await asyncio.sleep(0)
    relay.on_reply(hosts_pb2.MessageReply(call_id=up.calls()[-1].call_id, code=7, error="task elsewhere is not yours"))
    with pytest.raises(PermissionDenied, match="not yours"):
        await failing


async def test_a_call_in_flight_when_the_stream_drops_fails_unavailable() -> None:
    relay, up = _relay()
    pending = asyncio.ensure_future(relay.publish("A", messages_pb2.PublishRequest(topic="t")))
    await asyncio.sleep(0)
    relay.on_disconnected()
    with pytest.raises(Unavailable, match="same message_id"):
        await pending
    up.up = False
    with pytest.raises(Unavailable, match="not connected"):
        await relay.publish("A", messages_pb2.PublishRequest(topic="t"))


async def test_deliveries_from_upstream_are_deduplicated_and_acked_back_in_one_item() -> None:
    relay, up = _relay()
    assert await relay.receive("B", "", 10, 0, 30) == []  # subscribes task:B
    msg = messages_pb2.Message(id="u1", recipient="task:B", priority=common_pb2.PRIORITY_HIGH, delivery_count=1)
    msg.payload.data = b"1"
    delivery = hosts_pb2.MessageDelivery(mailbox="task:B", messages=[msg, msg])
    relay.on_delivery(delivery)
    got = await relay.receive("B", "", 10, 0, 30)
    assert [m.id for m in got] == ["u1"] and got[0].delivery_count == 1
    relay.ack("B", "", ["u1"])
    relay.on_delivery(delivery)  # redelivered after the ack was lost: acknowledged again, not delivered
    await asyncio.sleep(0)  # acks are coalesced and flushed on the next loop turn
    acks = [c.ack for c in up.calls() if c.WhichOneof("call") == "ack"]
    assert [list(a.message_ids) for a in acks] == [["u1"]] and acks[0].mailbox == "task:B"
    assert await relay.receive("B", "", 10, 0, 30) == []


async def test_an_ended_task_gives_back_what_it_did_not_read() -> None:
    relay, up = _relay()
    await relay.receive("B", "", 10, 0, 30)
    upstream_msg = messages_pb2.Message(id="u1", recipient="task:B", delivery_count=1)
    relay.on_delivery(hosts_pb2.MessageDelivery(mailbox="task:B", messages=[upstream_msg]))
    await relay.send("A", _send("B", '"unread"', message_id="local-1"))
    relay.task_ended("B")
    await asyncio.sleep(0)
    unsub = [i.mailbox_unsubscribe for i in up.items if i.WhichOneof("item") == "mailbox_unsubscribe"]
    assert [(u.mailbox, list(u.release_ids)) for u in unsub] == [("task:B", ["u1"])]
    (handover,) = [c for c in up.calls() if c.WhichOneof("call") == "send_batch"]
    assert handover.caller_task_id == "A"  # sent on behalf of its sender, with its id: a resend is a no-op
    assert [(m.to_task_id, m.message_id) for m in handover.send_batch.messages] == [("B", "local-1")]


async def test_an_agent_reads_only_its_own_task_mailbox() -> None:
    relay, _ = _relay()
    with pytest.raises(PermissionDenied):
        await relay.receive("A", "task:B", 1, 0, 30)


async def test_a_lapsed_local_lease_is_redelivered() -> None:
    relay, _ = _relay()
    await relay.send("A", _send("B", "1"))
    (first,) = await relay.receive("B", "", 1, 0, 0.01)
    await asyncio.sleep(0.02)
    relay.sweep(__import__("time").time())
    (again,) = await relay.receive("B", "", 1, 0, 30)
    assert again.id == first.id and again.delivery_count == 2
    assert relay.message_stats().redelivered == 1


async def test_a_subscription_the_control_plane_refuses_fails_the_reader_with_its_reason() -> None:
    relay, _ = _relay()
    assert await relay.receive("A", "topic:news/A", 10, 0, 30) == []
    relay.on_closed(hosts_pb2.MailboxClosed(mailbox="topic:news/A", code=5, error="no such topic"))
    with pytest.raises(NotFound, match="no such topic"):
        await relay.receive("A", "topic:news/A", 10, 0, 30)


async def test_a_hand_over_without_a_stream_waits_for_the_next_one() -> None:
    relay, up = _relay()
    await relay.send("A", _send("B", '"unread"', message_id="local-1"))
    up.up = False
    relay.task_ended("B")
    assert up.calls() == []
    up.up = True
    relay.on_connected()
    await asyncio.sleep(0)
    (handover,) = [c for c in up.calls() if c.WhichOneof("call") == "send_batch"]
    assert [m.message_id for m in handover.send_batch.messages] == ["local-1"]


def _upstream(message_id: str, size: int = 10) -> messages_pb2.Message:
    msg = messages_pb2.Message(id=message_id, sender_task_id="S", recipient="task:B", delivery_count=1)
    msg.payload.data = b"x" * size
    msg.payload.content_type = "application/json"
    msg.expires_at.seconds = 2_000_000_000
    return msg


async def test_a_delivery_counts_its_bytes_as_it_came_down_the_stream() -> None:
    relay, _ = _relay()
    await relay.receive("B", "", 10, 0, 30)
    first = hosts_pb2.MessageDelivery(mailbox="task:B", messages=[_upstream("u1"), _upstream("u2", 300)])
    again = hosts_pb2.MessageDelivery(mailbox="task:B", messages=[_upstream("u2", 300), _upstream("u3")])
    expected = relay.message_stats().bytes_raw + first.ByteSize() + again.ByteSize()  # before the relay reads them
    relay.on_delivery(first)
    relay.on_delivery(again)  # u2 again: a redelivery of what the relay holds
    stats = relay.message_stats()
    assert stats.bytes_raw == expected and stats.received == 3 and stats.batches_down == 2


async def test_an_ack_sends_up_each_upstream_id_once_and_no_local_one() -> None:
    relay, up = _relay()
    await relay.receive("B", "", 10, 0, 30)
    relay.on_delivery(hosts_pb2.MessageDelivery(mailbox="task:B", messages=[_upstream("u1"), _upstream("u2")]))
    await relay.send("A", _send("B", '"local"', message_id="l1"))
    got = await relay.receive("B", "", 10, 0, 30)
    assert sorted(m.id for m in got) == ["l1", "u1", "u2"]
    assert relay.ack("B", "", ["u1", "u1"]) == 1  # a repeated id: acknowledged once
    assert relay.ack("B", "", ["l1", "u2", "gone"]) == 2
    await asyncio.sleep(0)
    acks = [list(c.ack.message_ids) for c in up.calls() if c.WhichOneof("call") == "ack"]
    assert acks == [["u1", "u2"]]  # coalesced, the local message's ack stays on this host
    relay.on_delivery(hosts_pb2.MessageDelivery(mailbox="task:B", messages=[_upstream("u3")]))
    (u3,) = await relay.receive("B", "", 10, 0, 30)
    assert relay.ack("B", "", [u3.id]) == 1 and relay.message_stats().acknowledged == 4


async def test_an_id_acked_again_in_the_same_turn_goes_up_once() -> None:
    relay, up = _relay()
    await relay.receive("B", "", 10, 0, 30)
    relay.on_delivery(hosts_pb2.MessageDelivery(mailbox="task:B", messages=[_upstream("u1"), _upstream("u2")]))
    await relay.receive("B", "", 10, 0, 30)
    assert relay.ack("B", "", ["u1", "u2"]) == 2
    # The control plane pushed u1 again before that ack reached it: acked here, so acked again.
    relay.on_delivery(hosts_pb2.MessageDelivery(mailbox="task:B", messages=[_upstream("u1")]))
    await asyncio.sleep(0)
    acks = [list(c.ack.message_ids) for c in up.calls() if c.WhichOneof("call") == "ack"]
    assert acks == [["u1", "u2"]]

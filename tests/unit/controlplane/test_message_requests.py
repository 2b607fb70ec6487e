"""MessageRequests' checks of a SendBatch's addressing, before anything reaches Messaging."""

from __future__ import annotations

from typing import Any, cast

import pytest
from maos.controlplane.api._messages import MessageRequests
from maos.controlplane.messaging import Messaging, MessagingConfig
from maos.errors import InvalidArgument
from maos.v1 import messages_pb2


class _NoMessaging:
    config = MessagingConfig()

    async def check_batch(self, *args: Any) -> None:
        raise AssertionError("a badly addressed batch must not get this far")


def batch(*addresses: tuple[str, str]) -> messages_pb2.SendBatchRequest:
    return messages_pb2.SendBatchRequest(
        messages=[messages_pb2.SendRequest(to_task_id=to, broadcast_root_id=root) for to, root in addresses]
    )


@pytest.mark.parametrize(
    ("addresses", "error"),
    [
        ([("B", ""), ("", ""), ("B", "")], "message 1: set to_task_id"),
        ([("B", ""), ("B", "R"), ("", "")], "message 1: a batch sends to task mailboxes only"),
        ([("B", ""), ("", ""), ("", "R")], "message 1: set to_task_id"),
        ([("", "R"), ("", "")], "message 0: a batch sends to task mailboxes only"),
    ],
)
async def test_the_first_badly_addressed_message_is_named(addresses: list[tuple[str, str]], error: str) -> None:
    requests = MessageRequests(cast(Messaging, _NoMessaging()))
    with pytest.raises(InvalidArgument, match=f"^{error}"):
        await requests.send_batch("A", batch(*addresses))


def test_check_batch_items_without_client_ids_checks_the_same() -> None:
    from maos.controlplane.messaging._checks import check_batch_items

    config = MessagingConfig()
    items = [
        messages_pb2.SendRequest(
            to_task_id="B",
            priority=p,  # type: ignore[arg-type]
            ttl_seconds=ttl,
            payload={"data": b'{"n": %d}' % i, "content_type": ct},
            trace_context={"traceparent": "t"} if i == 5 else {},
        )
        for i, (p, ttl, ct) in enumerate([(0, 0, ""), (0, 0, ""), (1, 5, ""), (1, 5, ""), (2, 0, "text/plain")] * 3)
    ]
    to = ["B"] * len(items)
    assert check_batch_items(config, items, to, client_ids=False) == check_batch_items(config, items, to)

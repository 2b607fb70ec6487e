"""TaskMessages (ctx.messages / ctx.vote) against the in-process MessageService.

The blocking API runs in threads, one per agent, while the service runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from maos.client._context_messages import TaskMessages
from maos.controlplane.messaging import MessagingConfig
from maos.errors import DeadlineExceeded, NotFound

from tests.support.messaging import MessageServer

VOTERS = ["V1", "V2", "V3", "V4", "V5"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[MessageServer]:
    s = MessageServer(tmp_path / "maos.db", MessagingConfig())
    s.tasks.add("R")
    for voter in VOTERS:
        s.tasks.add(voter, "R")
    await s.start()
    yield s
    await s.stop()


def agent(server: MessageServer, task_id: str) -> TaskMessages:
    return TaskMessages(task_id=task_id, attempt=1, root_id="R", endpoint=server.endpoint)


async def test_send_receive_dedupe_and_subscribe(server: MessageServer) -> None:
    v1, v2 = agent(server, "V1"), agent(server, "V2")
    message_id = await asyncio.to_thread(v1.send, "V2", {"n": 1}, priority="low", message_id="k1")
    await asyncio.to_thread(v1.send, "V2", {"n": 0}, priority="critical")
    got = await asyncio.to_thread(v2.receive, 2)
    assert [(m.value, m.priority, m.sender) for m in got] == [({"n": 0}, "critical", "V1"), ({"n": 1}, "low", "V1")]
    assert got[1].id == message_id == "k1" and got[1].delivery_count == 1
    assert await asyncio.to_thread(v2.receive, 0) == []  # acknowledged on return
    assert await asyncio.to_thread(v1.broadcast, "all") == 5  # R, V2..V5
    assert [m.value for m in await asyncio.to_thread(v2.receive, 1)] == ["all"]
    with pytest.raises(NotFound):
        await asyncio.to_thread(v1.send, "NOPE", 1)

    def listen() -> list[object]:
        out = []
        for msg in v2.subscribe("prices"):
            out.append(msg.value)
            if len(out) == 3:
                break
        return out

    await server.client("V2").receive("topic:prices/V2")  # the subscription exists before the publishes
    for price in (0, 1, 2):
        assert await v1.publish_async("prices", price) == 1
    listening = asyncio.ensure_future(asyncio.to_thread(listen))
    assert await asyncio.wait_for(listening, 10) == [0, 1, 2]
    stats = {row.mailbox: row for row in await server.client().stats()}
    assert stats["topic:prices/V2"].queued == 0 and stats["topic:prices/V2"].in_flight == 0  # all acknowledged


async def test_every_voter_gets_the_same_outcome(server: MessageServer) -> None:
    values = {"V1": "A", "V2": "B", "V3": "B", "V4": "A", "V5": "A"}
    agents = {voter: agent(server, voter) for voter in VOTERS}
    # A message that is not a vote, waiting in V1's mailbox during the vote, is kept for receive().
    await asyncio.to_thread(agents["V2"].send, "V1", "not a vote")
    outcomes = await asyncio.gather(*(asyncio.to_thread(agents[v].vote, "plan", values[v], 3, 20) for v in VOTERS))
    assert len({(o.value, tuple(sorted(o.tally.items())), o.voters) for o in outcomes}) == 1
    outcome = outcomes[0]
    assert len(outcome.voters) == 3 and sum(outcome.tally.values()) == 3
    assert outcome.value == json.loads(min(outcome.tally, key=lambda j: (-outcome.tally[j], j)))
    # Later votes of the round, and the votes themselves, never show up as messages.
    assert [m.value for m in await asyncio.to_thread(agents["V1"].receive, 0)] == ["not a vote"]
    for voter in VOTERS[1:]:
        assert await asyncio.to_thread(agents[voter].receive, 0) == []


async def test_ties_break_on_the_smallest_json_and_async_voters_agree(server: MessageServer) -> None:
    a, b = agent(server, "V1"), agent(server, "V2")
    first, second = await asyncio.gather(
        a.vote_async("pick", {"z": 1, "a": 2}, 2, 10), b.vote_async("pick", {"a": 2, "b": 0}, 2, 10)
    )
    assert first == second
    assert first.value == {"a": 2, "b": 0}  # '{"a":2,"b":0}' < '{"a":2,"z":1}'
    assert first.tally == {'{"a":2,"b":0}': 1, '{"a":2,"z":1}': 1}


async def test_a_vote_without_quorum_times_out_with_a_clear_error(server: MessageServer) -> None:
    with pytest.raises(DeadlineExceeded, match=r"vote 'lonely': 1 of 3 voters after 0\.3s"):
        await agent(server, "V1").vote_async("lonely", True, 3, 0.3)


async def test_send_many_from_the_agent_context(server: MessageServer) -> None:
    v1, v2, v3 = agent(server, "V1"), agent(server, "V2"), agent(server, "V3")
    batch = [{"to_task_id": "V2", "payload": {"n": n}, "priority": "low" if n else "high"} for n in range(3)]
    ids = await asyncio.to_thread(v1.send_many, [*batch, {"to_task_id": "V3", "payload": "x", "message_id": "k"}])
    assert len(ids) == 4 and ids[3] == "k"
    assert [m.value for m in await asyncio.to_thread(v2.receive, 1)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert await v1.send_many_async([{"to_task_id": "V3", "payload": "x", "message_id": "k"}]) == ["k"]  # no-op
    assert [m.value for m in await asyncio.to_thread(v3.receive, 1)] == ["x"]
    with pytest.raises(NotFound, match=r"^message 1: task NOPE not found"):
        await asyncio.to_thread(v1.send_many, [batch[0], {"to_task_id": "NOPE", "payload": 1}])
    assert await asyncio.to_thread(v2.receive, 0) == []  # nothing of the rejected batch

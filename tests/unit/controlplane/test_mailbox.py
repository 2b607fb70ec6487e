"""The pure mailbox logic: order, leases, bounds, TTL, idempotent ids, the index and its checks."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from maos.controlplane.core import Priority, TaskRecord, TaskStatus
from maos.controlplane.messaging import MessagingConfig, RuntimeTaskDirectory, TaskInfo, outgoing, read_params
from maos.controlplane.messaging._access import check_broadcast, check_read, check_send
from maos.controlplane.messaging._index import MessageIndex
from maos.controlplane.messaging._mailbox import Mailbox, StoredMessage
from maos.controlplane.messaging._names import parse_mailbox
from maos.errors import InvalidArgument, PermissionDenied, ResourceExhausted

T0 = 1_000_000.0
DAY = 86_400.0


def msg(
    seq: int, priority: int = 3, *, mailbox: str = "task:A", id: str | None = None, ttl: float = DAY
) -> StoredMessage:
    return StoredMessage(
        seq=seq,
        mailbox=mailbox,
        id=id or f"m{seq}",
        sender="S",
        recipient=mailbox,
        topic="",
        priority=priority,
        data=b'{"n": %d}' % seq,
        content_type="application/json",
        sent_at=T0,
        expires_at=T0 + ttl,
    )


def ids(messages: list[StoredMessage]) -> list[str]:
    return [m.id for m in messages]


def test_delivery_is_priority_order_then_fifo() -> None:
    box = Mailbox("task:A", max_queued=100)
    rng = random.Random(7)
    added = [msg(seq, rng.choice([1, 2, 3, 4])) for seq in range(1, 41)]
    for m in added:
        assert box.add(m)
    taken = box.take(T0, 100, 30).messages
    assert ids(taken) == ids(sorted(added, key=lambda m: (m.priority, m.seq)))
    assert all(m.delivery_count == 1 for m in taken)
    assert box.stats.delivered == 40 and box.stats.batches == 1


def test_take_respects_limit_and_leases_what_it_returns() -> None:
    box = Mailbox("task:A", max_queued=100)
    for seq in range(1, 6):
        box.add(msg(seq))
    first = box.take(T0, 2, 30).messages
    assert ids(first) == ["m1", "m2"]
    assert box.in_flight == 2 and box.queued == 3
    assert ids(box.take(T0, 10, 30).messages) == ["m3", "m4", "m5"]
    assert box.take(T0, 10, 30).messages == []


def test_an_expired_lease_redelivers_ahead_of_later_messages() -> None:
    box = Mailbox("task:A", max_queued=100)
    box.add(msg(1))
    box.add(msg(2))
    assert ids(box.take(T0, 1, 10).messages) == ["m1"]
    assert box.take(T0 + 9.9, 1, 10).messages[0].id == "m2"  # m1's lease still holds
    box.add(msg(3))
    again = box.take(T0 + 10.0, 5, 10).messages
    assert ids(again) == ["m1", "m3"]  # m2's lease holds until T0+19.9
    assert again[0].delivery_count == 2
    assert box.stats.redelivered == 1 and box.stats.delivery_errors == 1


def test_ack_removes_leased_and_ready_messages_and_ignores_unknown_ids() -> None:
    box = Mailbox("task:A", max_queued=100)
    for seq in range(1, 4):
        box.add(msg(seq))
    box.take(T0, 1, 10)
    removed = box.ack(["m1", "m3", "nope"], T0)
    assert ids(removed) == ["m1", "m3"]
    assert len(box) == 1 and box.in_flight == 0
    # An acknowledged message never comes back, even after its old lease deadline.
    assert ids(box.take(T0 + 60, 10, 10).messages) == ["m2"]
    assert box.ack(["m1"], T0) == []


def test_bound_counts_queued_in_flight_and_reserved() -> None:
    box = Mailbox("task:A", max_queued=3)
    box.add(msg(1))
    box.add(msg(2))
    box.take(T0, 1, 10)
    assert box.has_room()
    box.reserve()
    assert not box.has_room() and box.depth == 3
    box.release()
    assert box.has_room()
    box.ack(["m1"], T0)
    assert box.has_room(2) and not box.has_room(3)


def test_same_id_is_accepted_once_even_after_ack() -> None:
    box = Mailbox("task:A", max_queued=10, dedupe_window=2)
    assert box.add(msg(1, id="x"))
    assert not box.add(msg(2, id="x"))
    box.take(T0, 1, 10)
    box.ack(["x"], T0)
    assert box.knows("x")
    assert not box.add(msg(3, id="x"))
    # The window of remembered ids is bounded: the oldest falls out.
    for name in ("y", "z"):
        box.add(msg(4, id=name))
        box.ack([name], T0)
    assert not box.knows("x")
    assert box.add(msg(5, id="x"))


def test_ttl_drops_at_delivery_and_in_the_sweep() -> None:
    box = Mailbox("task:A", max_queued=10)
    box.add(msg(1, ttl=5))
    box.add(msg(2, ttl=50))
    box.add(msg(3, ttl=5))
    taken = box.take(T0 + 6, 1, 10)
    assert ids(taken.dropped) == ["m1"] and ids(taken.messages) == ["m2"]
    assert ids(box.expire(T0 + 6)) == ["m3"]
    assert box.stats.expired == 2 and len(box) == 1
    assert box.expire(T0 + 6) == []  # nothing else is due


def test_a_leased_message_past_its_ttl_is_dropped_when_its_lease_ends() -> None:
    box = Mailbox("task:A", max_queued=10)
    box.add(msg(1, ttl=5))
    box.take(T0, 1, 10)
    assert box.expire(T0 + 6) == []  # in flight: the receiver may still ack it
    assert ids(box.requeue_expired(T0 + 11)) == ["m1"]
    assert len(box) == 0 and box.in_flight == 0


def test_stale_heap_entries_are_compacted() -> None:
    box = Mailbox("task:A", max_queued=10_000)
    for seq in range(1, 2001):
        box.add(msg(seq))
    for _ in range(20):
        batch = box.take(T0, 100, 30).messages
        box.ack(ids(batch), T0)
    assert len(box) == 0
    assert len(box._leases) <= 64 and len(box._ready) <= 64


def test_lease_compaction_keeps_live_leases_of_a_deep_mailbox() -> None:
    # Many queued, few in flight: compaction filters the lease entries and keeps every live one,
    # so the leases still run out (and redeliver in order) after it.
    box = Mailbox("task:A", max_queued=10_000)
    for seq in range(1, 5001):
        box.add(msg(seq))
    kept: list[str] = []
    for round_ in range(40):
        batch = box.take(T0 + round_, 20, 1000).messages
        kept.append(batch[-1].id)  # one of each take stays in flight
        box.ack(ids(batch[:-1]), T0 + round_)
    assert box.in_flight == 40 and box.queued == 5000 - 800
    assert sum(len(leased) for _, _, leased in box._leases) <= 2 * 40 + 64
    back = box.unlease([kept[0]])  # given back: its lease entry goes stale
    assert back == 1
    assert box.requeue_expired(T0 + 2000) == []
    assert box.in_flight == 0 and box.stats.delivery_errors == 39
    again = box.take(T0 + 2000, 40, 30).messages
    assert ids(again) == kept  # back in line ahead of later messages, in seq order
    assert all(m.delivery_count == 2 for m in again)


def test_an_ack_longer_than_the_dedupe_window_remembers_its_newest_ids() -> None:
    box = Mailbox("task:A", max_queued=100, dedupe_window=5)
    for seq in range(1, 21):
        box.add(msg(seq))
    box.ack(ids(box.take(T0, 3, 30).messages), T0)  # m1..m3, then pushed out
    box.ack(ids(box.take(T0, 8, 30).messages), T0)  # m4..m11: only the last 5 stay
    assert [f"m{n}" for n in range(1, 21) if box.knows(f"m{n}") and box.get(f"m{n}") is None] == [
        "m7",
        "m8",
        "m9",
        "m10",
        "m11",
    ]
    box.ack(["m12", "m12", "nope"], T0)  # a repeated or unknown id is skipped
    assert not box.knows("m7") and box.knows("m8") and box.knows("m12")
    assert box.add(msg(30, id="m4"))  # out of the window: accepted again


def test_index_checks_every_target_and_the_byte_bound() -> None:
    index = MessageIndex(max_queued=2, max_total_bytes=1000, dedupe_window=10)
    a = index.mailbox("task:A", T0)
    a.add(msg(1))
    a.add(msg(2))
    with pytest.raises(ResourceExhausted, match=r"mailbox task:A is full: 2 messages waiting \(limit 2\)"):
        index.check_room(["task:B", "task:A"], 10)
    assert a.stats.rejected_full == 1
    with pytest.raises(ResourceExhausted, match="limit of 1000"):
        index.check_room(["task:B"], 990)
    index.check_room(["task:B"], 100)


def test_index_sums_topic_subscriptions_in_stats() -> None:
    index = MessageIndex(max_queued=10, max_total_bytes=10_000, dedupe_window=10)
    for sub in ("x", "y"):
        box = index.subscribe("news", f"topic:news/{sub}", T0)
        box.add(msg(1, mailbox=box.name))
        box.add(msg(2, mailbox=box.name))
        box.take(T0, 1, 10)
    rows = {row.name: row for row in index.stats()}
    assert rows["topic:news"].queued == 2 and rows["topic:news"].in_flight == 2
    assert rows["topic:news"].stats.delivered == 2
    assert rows["topic:news/x"].queued == 1
    assert index.usage.bytes == sum(m.size for b in index.mailboxes.values() for m in b._messages.values())
    held = index.remove("topic:news/x")
    assert len(held) == 2 and index.subscriptions("news") == ["topic:news/y"]


def test_mailbox_names() -> None:
    assert str(parse_mailbox("task:01ABC")) == "task:01ABC"
    parsed = parse_mailbox("topic:build.results/worker-1")
    assert (parsed.topic, parsed.subscriber) == ("build.results", "worker-1")
    for bad, why in [
        ("inbox", "must be task:<task id> or topic"),
        ("topic:news", "no subscriber"),
        ("topic:new s/x", "may contain only"),
        ("topic:/x", "topic is empty"),
        ("task:", "task id is empty"),
    ]:
        with pytest.raises(InvalidArgument, match=why):
            parse_mailbox(bad)


def test_outgoing_checks() -> None:
    config = MessagingConfig(max_payload_bytes=100)
    ok = outgoing(priority=0, data=b"", content_type="", ttl_seconds=0, message_id="", config=config)
    assert (ok.priority, ok.content_type, ok.ttl_seconds) == (3, "application/json", DAY)
    raw = outgoing(
        priority=1,
        data=b"\xff",
        content_type="application/octet-stream",
        ttl_seconds=5,
        message_id="k-1",
        config=config,
    )
    assert raw.data == b"\xff" and raw.message_id == "k-1"
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"priority": 9}, InvalidArgument, "priority 9 is unknown"),
        ({"data": b"x" * 101}, ResourceExhausted, "payload is 101 bytes; the limit is 100"),
        ({"data": b"{nope"}, InvalidArgument, "payload is not valid JSON"),
        ({"data": b"{", "content_type": "application/vnd.x+json"}, InvalidArgument, "not valid JSON"),
        ({"ttl_seconds": -1.0}, InvalidArgument, "ttl_seconds must be positive"),
        ({"ttl_seconds": 1e12}, InvalidArgument, "above the limit"),
        ({"message_id": "has space"}, InvalidArgument, "printable ASCII"),
    ]
    for change, error, text in cases:
        fields: dict[str, object] = {
            "priority": 0,
            "data": b"1",
            "content_type": "",
            "ttl_seconds": 0.0,
            "message_id": "",
        }
        fields.update(change)
        with pytest.raises(error, match=text):
            outgoing(config=config, **fields)  # type: ignore[arg-type]


def test_read_params() -> None:
    config = MessagingConfig()
    p = read_params(max_messages=0, wait_seconds=1e9, lease_seconds=0, config=config, limit=1000)
    assert (p.max_messages, p.wait_seconds, p.lease_seconds) == (1, config.max_wait_seconds, 30.0)
    with pytest.raises(InvalidArgument, match="at most 1000 messages"):
        read_params(max_messages=1001, wait_seconds=0, lease_seconds=0, config=config, limit=1000)
    with pytest.raises(InvalidArgument, match="wait_seconds must not be negative"):
        read_params(max_messages=1, wait_seconds=-1, lease_seconds=0, config=config, limit=1000)
    with pytest.raises(InvalidArgument, match=r"lease_seconds .* above the limit"):
        read_params(max_messages=1, wait_seconds=0, lease_seconds=1e9, config=config, limit=1000)


def test_config_is_validated() -> None:
    with pytest.raises(InvalidArgument, match="max_queued must be at least 1"):
        MessagingConfig(max_queued=0)
    with pytest.raises(InvalidArgument, match="default_ttl_seconds must not exceed"):
        MessagingConfig(default_ttl_seconds=10, max_ttl_seconds=5)


async def test_runtime_directory_reads_task_records_and_falls_back_to_the_store() -> None:
    def record(task_id: str, root_id: str, status: TaskStatus = TaskStatus.RUNNING, group: bool = False) -> TaskRecord:
        rec = TaskRecord(task_id, root_id, "", None, "echo", Priority.MEDIUM, T0, group=group)
        rec.status = status
        return rec

    live = {
        "R": record("R", "R", group=True),
        "C1": record("C1", "R"),
        "C2": record("C2", "R", TaskStatus.QUEUED),
        "C3": record("C3", "R", TaskStatus.COMPLETED),
        "X": record("X", "X"),
    }
    evicted = record("OLD", "R", TaskStatus.FAILED)

    async def fetch(ids: Sequence[str]) -> list[TaskRecord]:
        return [evicted] if list(ids) == ["OLD"] else []

    directory = RuntimeTaskDirectory(live, fetch)
    assert directory.unfinished_in_tree("R") == ["C1", "C2"]
    assert await directory.task("C1") == TaskInfo("C1", "R", False, "running")
    assert await directory.task("R") == TaskInfo("R", "R", False, "running", group=True)
    assert await directory.task("OLD") == TaskInfo("OLD", "R", True, "failed")
    assert await directory.task("NOPE") is None


def test_agents_stay_inside_their_tree_and_operators_do_not() -> None:
    agent = TaskInfo("C1", "R", False)
    check_send(agent, TaskInfo("C2", "R", False))
    check_send(None, TaskInfo("Z", "Z", False))
    check_broadcast(agent, "R")
    check_read(agent, parse_mailbox("task:C1"))
    check_read(agent, parse_mailbox("topic:news/anyone"))
    check_read(None, parse_mailbox("task:C2"))
    with pytest.raises(PermissionDenied, match="may not send to task Z of task tree Z"):
        check_send(agent, TaskInfo("Z", "Z", False))
    with pytest.raises(PermissionDenied, match="may not broadcast to task tree Z"):
        check_broadcast(agent, "Z")
    with pytest.raises(PermissionDenied, match="may read only its own mailbox task:C1, not task:C2"):
        check_read(agent, parse_mailbox("task:C2"))

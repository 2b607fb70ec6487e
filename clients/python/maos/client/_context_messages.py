"""TaskMessages: messaging and voting for agent code, as `ctx.messages` and `ctx.vote`.

    def run(ctx, data):
        ctx.messages.send(peer_id, {"partial": 42}, priority="high")
        for msg in ctx.messages.receive(timeout=10):      # acknowledged on return
            print(msg.sender, msg.value)
        for msg in ctx.messages.subscribe("prices"):      # topic:prices/<this task>
            ...
        plan = ctx.vote("plan", "B", quorum=3).value      # the same outcome for every voter

Delivery is at-least-once: `receive` and `subscribe` drop ids they have
already returned (a bounded memory of recent ids) and acknowledge what they
hand over, so agent code sees each message once unless its process dies
while handling it.

Voting is built on broadcast: each voter sends {"vote", "voter", "value"} to
every unfinished task of its tree (content type VOTE_CONTENT_TYPE) and reads
its own mailbox until it has the votes of `quorum` distinct voters. Votes are
ordered by message id, which the control plane assigns in the order it
accepts messages (a monotonic ULID), and each voter knows the id of its own
vote, so every voter takes the same first `quorum` voters (a voter's first
vote counts) and computes the same outcome: the value with the most votes,
ties broken by the smallest JSON serialisation (sorted keys). Votes that
arrive while the agent is not voting are kept for its later `vote` call and
never returned by `receive`. Limits: every voter must exist (be submitted)
before the first vote of a round is cast, since a broadcast reaches only the
tasks unfinished at that moment; use a fresh topic per decision.

This module stays light to import, like _context: grpc and the SDK load on
first use. One blocking channel per endpoint per process (one aio channel per
event loop) is shared by every task of a worker process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc
    import grpc.aio
    from maos.v1 import messages_pb2

    from ._frames_async import AsyncFrameConnections
    from ._frames_client import FrameConnection
    from ._messages_client import AsyncMessagesClient, MessagesClient

__all__ = ["VOTE_CONTENT_TYPE", "Received", "TaskMessages", "VoteOutcome"]

VOTE_CONTENT_TYPE = "application/vnd.maos.vote+json"
SEEN_IDS = 10_000
"""How many recently returned message ids each TaskMessages remembers to drop redeliveries."""
_BATCH = 100
_LEASE_SECONDS = 30.0
_MAX_ACK_IDS = 10_000  # per Ack call (the service's limit)
_LONG_POLL_SECONDS = 30.0  # one Receive call's longest wait; longer waits are several calls


_UNDECODED: Any = object()
_JSON = "application/json"
_orjson: Any = None  # orjson, imported with the first payload decoded (this module stays light to import)
_FIELDS = ("id", "sender", "value", "priority", "topic", "recipient", "sent_at", "delivery_count")


class Received:
    """A message as agent code sees it: who sent it, and its payload decoded. Read-only.

    `value` is decoded on first access (then kept): a reader that routes by id or sender
    pays no JSON decode. A plain class rather than a frozen dataclass: one is made per
    message, and a frozen dataclass sets each field through object.__setattr__."""

    __slots__ = (
        "_content_type",
        "_data",
        "_delivery_count",
        "_id",
        "_priority",
        "_recipient",
        "_sender",
        "_sent_at",
        "_topic",
        "_value",
    )

    def __init__(
        self,
        id: str,
        sender: str,  # the sending task's id; "" for an operator
        value: Any,  # JSON decoded to Python; bytes for other content types
        priority: str,  # critical, high, medium, low
        topic: str,  # set for messages that came through a topic
        recipient: str,  # task:<id>, topic:<name> or tree:<root id>
        sent_at: float,  # seconds since the epoch
        delivery_count: int,  # 1 on first delivery; more after a redelivery
    ) -> None:
        self._id = id
        self._sender = sender
        self._priority = priority
        self._topic = topic
        self._recipient = recipient
        self._sent_at = sent_at
        self._delivery_count = delivery_count
        self._data = b""
        self._content_type = ""
        self._value = value

    @classmethod
    def _of(cls, msg: messages_pb2.Message, priority_names: dict[int, str], message_id: str) -> Received:
        """A received wire message (its id already read); its payload is decoded when `value`
        is first read. Field by field: a batch makes thousands."""
        out = cls.__new__(cls)
        out._id = message_id
        out._sender = msg.sender_task_id
        priority = msg.priority
        out._priority = priority_names.get(priority) or _priority_name(priority)
        out._topic = msg.topic
        out._recipient = msg.recipient
        sent = msg.sent_at
        out._sent_at = sent.seconds + sent.nanos / 1e9
        out._delivery_count = msg.delivery_count
        payload = msg.payload
        out._data = payload.data
        out._content_type = payload.content_type
        out._value = _UNDECODED
        return out

    @property
    def id(self) -> str:
        return self._id

    @property
    def sender(self) -> str:
        return self._sender

    @property
    def value(self) -> Any:
        """The payload decoded, as `message_value` decodes it: JSON (or no content type) to
        Python, anything else (or JSON that does not parse) to its bytes; None when empty."""
        value = self._value
        if value is not _UNDECODED:
            return value
        data, content_type = self._data, self._content_type
        if not data:
            value = None
        elif content_type and content_type != _JSON:
            value = data
        else:
            try:
                value = (_orjson or _import_orjson()).loads(data)
            except ValueError:  # orjson.JSONDecodeError: show the bytes rather than fail the reader
                value = data
        self._value = value
        return value

    @property
    def priority(self) -> str:
        return self._priority

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def recipient(self) -> str:
        return self._recipient

    @property
    def sent_at(self) -> float:
        return self._sent_at

    @property
    def delivery_count(self) -> int:
        return self._delivery_count

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Received)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[type[Received], tuple[Any, ...]]:
        return Received, self._fields()  # decoded: the lazy state does not travel

    def __repr__(self) -> str:
        return "Received(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS) + ")"


def _priority_name(value: int) -> str:
    from ._enums import priority_name

    return priority_name(value)


def _import_orjson() -> Any:
    global _orjson
    import orjson

    _orjson = orjson
    return orjson


@dataclass(frozen=True, slots=True)
class VoteOutcome:
    """The decision every voter of a round computes alike."""

    value: Any  # the winning value
    tally: dict[str, int]  # JSON serialisation of each value -> votes among the first quorum voters
    voters: tuple[str, ...]  # the task ids whose votes counted, in vote order


class _Inbox:
    """What a TaskMessages remembers between calls: ids it returned, messages set aside
    during a vote (not yet acknowledged), and votes of rounds not yet being counted."""

    def __init__(self) -> None:
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.aside: deque[messages_pb2.Message] = deque()
        self.aside_ids: set[str] = set()
        self.votes: dict[str, dict[str, tuple[str, bytes]]] = {}  # topic -> id -> (voter, value JSON)

    def remember(self, message_id: str) -> None:
        self.seen[message_id] = None
        self.forget_oldest()

    def forget_oldest(self) -> None:
        """Keep the memory of returned ids to SEEN_IDS (a batch is remembered, then trimmed once)."""
        seen = self.seen
        while len(seen) > SEEN_IDS:
            seen.popitem(last=False)

    def sort(
        self, batch: list[messages_pb2.Message], *, keep_aside: bool
    ) -> tuple[list[messages_pb2.Message], list[str]]:
        """Split a received batch: fresh messages for the caller, and ids to acknowledge now
        (duplicates and votes, which go to `votes`). With `keep_aside`, fresh messages are
        set aside instead (a vote is reading) and stay unacknowledged until handed out."""
        fresh: list[messages_pb2.Message] = []
        ack: list[str] = []
        seen, aside_ids = self.seen, self.aside_ids
        for msg in batch:
            message_id = msg.id
            if message_id in seen:
                ack.append(message_id)
            elif message_id in aside_ids:
                continue  # redelivered while set aside: it is acknowledged when handed out
            elif msg.payload.content_type == VOTE_CONTENT_TYPE:
                ack.append(message_id)
                self.keep_vote(message_id, msg)
            elif keep_aside:
                self.aside.append(msg)
                aside_ids.add(message_id)
            else:
                seen[message_id] = None  # remembered at once: a repeat within the batch is a duplicate
                fresh.append(msg)
        self.forget_oldest()
        return fresh, ack

    def fresh(self, batch: Iterable[messages_pb2.Message]) -> tuple[list[Received], list[str]]:
        """`sort` without `keep_aside`, the fresh messages made Received in the same pass
        (each message's fields read once: this is every received message's path)."""
        fresh: list[Received] = []
        ack: list[str] = []
        seen, aside_ids = self.seen, self.aside_ids
        names = _priority_names()
        of = Received._of
        for msg in batch:
            message_id = msg.id
            if message_id in seen:
                ack.append(message_id)
                continue
            if message_id in aside_ids:
                continue  # redelivered while set aside: it is acknowledged when handed out
            received = of(msg, names, message_id)
            if received._content_type == VOTE_CONTENT_TYPE:
                ack.append(message_id)
                self.keep_vote(message_id, msg)
                continue
            seen[message_id] = None  # remembered at once: a repeat within the batch is a duplicate
            fresh.append(received)
        self.forget_oldest()
        return fresh, ack

    def keep_vote(self, message_id: str, msg: messages_pb2.Message) -> None:
        """A vote that arrived: kept for its round's count (acknowledged by the caller)."""
        vote = _parse_vote(msg)
        if vote is not None:
            self.votes.setdefault(vote[0], {})[message_id] = (vote[1], vote[2])

    def take_aside(self, limit: int) -> list[messages_pb2.Message]:
        out: list[messages_pb2.Message] = []
        while self.aside and len(out) < limit:
            msg = self.aside.popleft()
            self.aside_ids.discard(msg.id)
            self.remember(msg.id)
            out.append(msg)
        return out


def _ack_quietly(client: MessagesClient, mailbox: str, ids: list[str]) -> None:
    from maos.errors import MaosError

    try:
        client.ack(mailbox, ids)
    except MaosError:
        pass  # unacknowledged: redelivered after the lease, and dropped as already seen


def _parse_vote(msg: messages_pb2.Message) -> tuple[str, str, bytes] | None:
    import orjson

    try:
        body = orjson.loads(msg.payload.data)
        topic, voter = body["vote"], body["voter"]
        value = orjson.dumps(body.get("value"), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(topic, str) or not isinstance(voter, str):
        return None
    return topic, voter, value


class _VoteRound:
    """One voter's count of one round; `outcome()` is None until it is decided."""

    def __init__(self, topic: str, quorum: int, own: tuple[str, str, bytes]) -> None:
        self.topic = topic
        self.quorum = quorum
        self.own_id = own[0]
        self.votes: dict[str, tuple[str, bytes]] = {own[0]: (own[1], own[2])}
        self.complete_up_to = ""  # every vote with an id up to this one has been seen

    def absorb(self, votes: dict[str, tuple[str, bytes]]) -> None:
        if votes:
            self.votes.update(votes)
            self.complete_up_to = max(self.complete_up_to, max(votes))

    def drained(self) -> None:
        """A read came back short after our vote was committed: every earlier vote has arrived."""
        self.complete_up_to = max(self.complete_up_to, self.own_id)

    def voters_seen(self) -> int:
        return len({voter for voter, _ in self.votes.values()})

    def outcome(self) -> VoteOutcome | None:
        import orjson

        first: dict[str, bytes] = {}
        last_id = ""
        for vote_id in sorted(self.votes):
            voter, value = self.votes[vote_id]
            if voter not in first:
                first[voter] = value
                last_id = vote_id
                if len(first) == self.quorum:
                    break
        if len(first) < self.quorum or last_id > self.complete_up_to:
            return None
        tally = Counter(first.values())
        winner = min(tally, key=lambda value: (-tally[value], value))
        return VoteOutcome(
            value=orjson.loads(winner),
            tally={value.decode(): count for value, count in sorted(tally.items())},
            voters=tuple(first),
        )


def _received(msg: messages_pb2.Message) -> Received:
    return _received_all([msg])[0]


def _received_all(msgs: list[messages_pb2.Message]) -> list[Received]:
    """Received for each message (payloads are decoded when first read)."""
    names = _priority_names()
    of = Received._of
    return [of(msg, names, msg.id) for msg in msgs]


_PRIORITY_NAMES: dict[int, str] = {}


def _priority_names() -> dict[int, str]:
    """Priority number -> name, for every known priority (made on first use: the enum names
    load with the SDK)."""
    if not _PRIORITY_NAMES:
        from maos.v1 import common_pb2

        _PRIORITY_NAMES.update({value: _priority_name(value) for value in common_pb2.Priority.values()})
    return _PRIORITY_NAMES


def _check_vote(topic: str, quorum: int) -> None:
    from maos.errors import InvalidArgument

    if not isinstance(topic, str) or not topic:
        raise InvalidArgument("vote topic must be a non-empty string naming the decision")
    if not isinstance(quorum, int) or quorum < 1:
        raise InvalidArgument(f"quorum must be a whole number of voters, at least 1, got {quorum!r}")


def _vote_timeout(topic: str, round_: _VoteRound, timeout: float) -> Exception:
    from maos.errors import DeadlineExceeded

    return DeadlineExceeded(
        f"vote {topic!r}: {round_.voters_seen()} of {round_.quorum} voters after {timeout:g}s; "
        "were all voters submitted before the first vote?"
    )


class TaskMessages:
    """Messages for one task attempt: its mailbox, its tree, topics, and votes.

    Not thread-safe: read from one thread (or one asyncio task) at a time.
    """

    def __init__(self, *, task_id: str, attempt: int = 1, root_id: str = "", endpoint: str = "") -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.root_id = root_id or task_id
        self.endpoint = endpoint
        self.mailbox = "task:" + task_id
        self._inbox = _Inbox()
        self._sync: MessagesClient | None = None
        self._async: tuple[asyncio.AbstractEventLoop, AsyncMessagesClient] | None = None
        # Acks of what `receive` handed out go in the background, off the message's path; `flush`
        # (called when the attempt ends) waits for them. A lost ack only means a redelivery,
        # which the seen-ids memory drops. Ids handed out while an ack is under way go up
        # together in the next one (a reader taking a few messages a call acks in bulk).
        self._acker: ThreadPoolExecutor | None = None
        self._acks: list[Future[Any]] = []
        self._ack_lock = threading.Lock()
        self._ack_ids: list[str] = []
        self._ack_running = False

    def __repr__(self) -> str:
        return f"TaskMessages(task_id={self.task_id!r})"

    def flush(self, timeout: float = 5.0) -> None:
        """Wait (up to `timeout` s) until the acknowledgements `receive` sent are answered."""
        acks, self._acks = self._acks, []
        wait(acks, timeout=timeout)
        if self._acker is not None:
            if self._sync is not None:
                self._acker.submit(self._sync.close)  # the ack thread's relay connection, if it has one
            self._acker.shutdown(wait=False)
            self._acker = None

    def _ack_in_background(self, client: MessagesClient, ids: list[str]) -> None:
        if self._acker is None:
            self._acker = ThreadPoolExecutor(1, thread_name_prefix="maos-acks")
        with self._ack_lock:
            self._ack_ids.extend(ids)
            if self._ack_running:
                return  # the running ack job takes these too before it ends
            self._ack_running = True
        self._acks = [f for f in self._acks if not f.done()]
        self._acks.append(self._acker.submit(self._send_acks, client))

    def _send_acks(self, client: MessagesClient) -> None:
        """The ack thread: acknowledge every id handed out so far, until none is left."""
        try:
            while True:
                with self._ack_lock:
                    ids, self._ack_ids = self._ack_ids, []
                    if not ids:
                        self._ack_running = False
                        return
                for start in range(0, len(ids), _MAX_ACK_IDS):
                    _ack_quietly(client, self.mailbox, ids[start : start + _MAX_ACK_IDS])
        except BaseException:
            with self._ack_lock:
                self._ack_running = False  # the next receive starts another job
            raise

    # ---------------------------------------------------------------- clients

    def _client(self) -> MessagesClient:
        if self._sync is None:
            from ._messages_client import MessagesClient

            endpoint = _endpoint(self.endpoint)
            frames = _frames(endpoint)
            if frames is not None:
                from ._frames_client import FramedMessagesClient

                self._sync = FramedMessagesClient(
                    _channel(self.endpoint), endpoint, frames, caller=(self.task_id, self.attempt)
                )
            else:
                self._sync = MessagesClient(_channel(self.endpoint), endpoint, caller=(self.task_id, self.attempt))
        return self._sync

    def _aclient(self) -> AsyncMessagesClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            from ._messages_client import AsyncMessagesClient

            endpoint = _endpoint(self.endpoint)
            frames = _async_frames(endpoint)
            client: AsyncMessagesClient
            if frames is not None:
                from ._frames_async import AsyncFramedMessagesClient

                client = AsyncFramedMessagesClient(
                    _aio_channel(self.endpoint), endpoint, frames, caller=(self.task_id, self.attempt)
                )
            else:
                client = AsyncMessagesClient(_aio_channel(self.endpoint), endpoint, caller=(self.task_id, self.attempt))
            self._async = (loop, client)
        return self._async[1]

    # ---------------------------------------------------------------- sending

    def send(
        self,
        to_task_id: str,
        value: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
    ) -> str:
        """Send `value` (JSON, or bytes) to the mailbox of a task of this tree; the message id.

        Raises NotFound for an unknown task, FailedPrecondition for a finished
        one, PermissionDenied for a task of another tree (publish to a topic
        instead), ResourceExhausted when its mailbox is full (retry later).
        """
        reply = self._client().send(to_task_id, value, priority=priority, ttl=ttl, message_id=message_id)
        return reply.message_ids[0]

    def send_to_agent(self, agent_id: str, value: Any, *, priority: str | int | None = None) -> str:
        """Send `value` to the task the agent (worker) `agent_id` runs now; the message id."""
        return self._client().send_to_agent(agent_id, value, priority=priority).message_ids[0]

    def send_many(self, messages: Iterable[Mapping[str, Any]]) -> list[str]:
        """Send many messages at once (one call and one commit per 10,000); their ids, in order.

        Each is a dict: `to_task_id`, `payload`, optionally `priority`, `ttl`,
        `message_id`. All or nothing per 10,000: an error (naming the message's
        index) or a full mailbox sends none of them.
        """
        return self._client().send_many(messages)

    def broadcast(self, value: Any, *, priority: str | int | None = None, ttl: float | None = None) -> int:
        """Send to every other unfinished task of this task's tree; how many received it."""
        return self._client().broadcast(self.root_id, value, priority=priority, ttl=ttl).recipients

    def publish(
        self,
        topic: str,
        value: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
    ) -> int:
        """Publish to a topic; how many subscriptions received it (0 is not an error)."""
        return self._client().publish(topic, value, priority=priority, ttl=ttl, message_id=message_id).recipients

    # ---------------------------------------------------------------- reading

    def receive(self, timeout: float | None = None, *, max: int = _BATCH) -> list[Received]:
        """Messages from this task's mailbox, in priority order: up to `max`, waiting up to
        `timeout` seconds for the first (None: until one arrives; 0: do not wait).

        What is returned is acknowledged (in the background: `flush` waits for it); redeliveries
        of ids already returned are dropped.
        """
        client = self._client()
        out = _received_all(self._inbox.take_aside(max))
        deadline = None if timeout is None else time.monotonic() + timeout
        while not out:
            reply = client.receive_reply(self.mailbox, max=max, wait=_chunk(deadline), lease=_LEASE_SECONDS)
            out, ack = self._inbox.fresh(reply.messages)
            if ack:
                client.ack(self.mailbox, ack)
            if deadline is not None and time.monotonic() >= deadline:
                break
        if out:
            # After reading the batch: the ack thread's start would otherwise take the GIL from this one.
            self._ack_in_background(client, [r._id for r in out])
        return out

    def subscribe(
        self, topic: str, *, lease: float = _LEASE_SECONDS, max_in_flight: int = _BATCH
    ) -> Iterator[Received]:
        """Messages published to `topic` from now on (subscription "topic:<topic>/<this task>"),
        as they arrive; each is acknowledged when the next is asked for or the loop ends."""
        client = self._client()
        mailbox = f"topic:{topic}/{self.task_id}"
        pending: str | None = None
        stream = client.subscribe(mailbox, lease=lease, max_in_flight=max_in_flight)
        try:
            for msg in stream:
                if pending is not None:
                    client.ack(mailbox, [pending])
                    pending = None
                if msg.id in self._inbox.seen:
                    client.ack(mailbox, [msg.id])
                    continue
                self._inbox.remember(msg.id)
                pending = msg.id
                yield _received(msg)
        finally:
            if pending is not None:
                client.ack(mailbox, [pending])
            stream.close()

    # ----------------------------------------------------------------- voting

    def vote(self, topic: str, value: Any, quorum: int, timeout: float = 60.0) -> VoteOutcome:
        """Vote `value` on `topic` with the other agents of this tree; the outcome of the first
        `quorum` distinct voters, the same for all of them. DeadlineExceeded after `timeout` s."""
        _check_vote(topic, quorum)
        client = self._client()
        body = {"vote": topic, "voter": self.task_id, "value": value}
        reply = client.broadcast(self.root_id, body, priority="high", content_type=VOTE_CONTENT_TYPE)
        round_ = self._start_round(topic, quorum, value, reply)
        deadline = time.monotonic() + timeout
        wait = 0.0  # the first read does not wait: our own vote may complete the quorum
        while True:
            batch = client.receive(self.mailbox, max=_BATCH, wait=wait, lease=_vote_lease(timeout))
            _, ack = self._inbox.sort(batch, keep_aside=True)
            if ack:
                client.ack(self.mailbox, ack)
            outcome = self._count(round_, batch)
            if outcome is not None:
                return outcome
            if time.monotonic() >= deadline:
                raise _vote_timeout(topic, round_, timeout)
            wait = _chunk(deadline)

    def _start_round(self, topic: str, quorum: int, value: Any, reply: messages_pb2.SendResponse) -> _VoteRound:
        import orjson

        own_id = reply.message_ids[0] if reply.message_ids else ""
        round_ = _VoteRound(topic, quorum, (own_id, self.task_id, orjson.dumps(value, option=orjson.OPT_SORT_KEYS)))
        round_.absorb(self._inbox.votes.pop(topic, {}))
        return round_

    def _count(self, round_: _VoteRound, batch: list[messages_pb2.Message]) -> VoteOutcome | None:
        round_.absorb(self._inbox.votes.pop(round_.topic, {}))
        if len(batch) < _BATCH:
            round_.drained()
        return round_.outcome()

    # ------------------------------------------------------------------ async

    async def send_async(
        self,
        to_task_id: str,
        value: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
    ) -> str:
        """`send` for async agents."""
        reply = await self._aclient().send(to_task_id, value, priority=priority, ttl=ttl, message_id=message_id)
        return reply.message_ids[0]

    async def send_many_async(self, messages: Iterable[Mapping[str, Any]]) -> list[str]:
        """`send_many` for async agents."""
        return await self._aclient().send_many(messages)

    async def broadcast_async(self, value: Any, *, priority: str | int | None = None, ttl: float | None = None) -> int:
        """`broadcast` for async agents."""
        return (await self._aclient().broadcast(self.root_id, value, priority=priority, ttl=ttl)).recipients

    async def publish_async(
        self,
        topic: str,
        value: Any,
        *,
        priority: str | int | None = None,
        ttl: float | None = None,
        message_id: str | None = None,
    ) -> int:
        """`publish` for async agents."""
        reply = await self._aclient().publish(topic, value, priority=priority, ttl=ttl, message_id=message_id)
        return reply.recipients

    async def receive_async(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - bounds the server-side long poll, like receive()
        *,
        max: int = _BATCH,
    ) -> list[Received]:
        """`receive` for async agents."""
        client = self._aclient()
        out = _received_all(self._inbox.take_aside(max))
        deadline = None if timeout is None else time.monotonic() + timeout
        while not out:
            batch = await client.receive(self.mailbox, max=max, wait=_chunk(deadline), lease=_LEASE_SECONDS)
            out, ack = self._inbox.fresh(batch)
            if ack:
                await client.ack(self.mailbox, ack)
            if deadline is not None and time.monotonic() >= deadline:
                break
        if out:
            await client.ack(self.mailbox, [r._id for r in out])
        return out

    async def subscribe_async(
        self, topic: str, *, lease: float = _LEASE_SECONDS, max_in_flight: int = _BATCH
    ) -> AsyncIterator[Received]:
        """`subscribe` for async agents."""
        client = self._aclient()
        mailbox = f"topic:{topic}/{self.task_id}"
        pending: str | None = None
        stream = client.subscribe(mailbox, lease=lease, max_in_flight=max_in_flight)
        try:
            async for msg in stream:
                if pending is not None:
                    await client.ack(mailbox, [pending])
                    pending = None
                if msg.id in self._inbox.seen:
                    await client.ack(mailbox, [msg.id])
                    continue
                self._inbox.remember(msg.id)
                pending = msg.id
                yield _received(msg)
        finally:
            if pending is not None:
                await client.ack(mailbox, [pending])
            await stream.aclose()

    async def vote_async(
        self,
        topic: str,
        value: Any,
        quorum: int,
        timeout: float = 60.0,  # noqa: ASYNC109 - bounds the server-side long polls, like vote()
    ) -> VoteOutcome:
        """`vote` for async agents."""
        _check_vote(topic, quorum)
        client = self._aclient()
        body = {"vote": topic, "voter": self.task_id, "value": value}
        reply = await client.broadcast(self.root_id, body, priority="high", content_type=VOTE_CONTENT_TYPE)
        round_ = self._start_round(topic, quorum, value, reply)
        deadline = time.monotonic() + timeout
        wait = 0.0
        while True:
            batch = await client.receive(self.mailbox, max=_BATCH, wait=wait, lease=_vote_lease(timeout))
            _, ack = self._inbox.sort(batch, keep_aside=True)
            if ack:
                await client.ack(self.mailbox, ack)
            outcome = self._count(round_, batch)
            if outcome is not None:
                return outcome
            if time.monotonic() >= deadline:
                raise _vote_timeout(topic, round_, timeout)
            wait = _chunk(deadline)


def _vote_lease(timeout: float) -> float:
    """How long messages set aside during a vote stay leased (within the service's 12 h bound)."""
    return min(timeout + _LEASE_SECONDS, 3600.0)


def _chunk(deadline: float | None) -> float:
    """How long the next Receive may wait."""
    if deadline is None:
        return _LONG_POLL_SECONDS
    return max(0.0, min(_LONG_POLL_SECONDS, deadline - time.monotonic()))


# One channel per endpoint per process (per event loop for grpc.aio), made on first use.
_channels_lock = threading.Lock()
_channels: dict[str, grpc.Channel] = {}
_aio_channels: dict[str, tuple[asyncio.AbstractEventLoop, grpc.aio.Channel]] = {}
_frame_connections: dict[str, FrameConnection | None] = {}
_async_frame_connections: dict[str, AsyncFrameConnections | None] = {}


def _endpoint(endpoint: str) -> str:
    """Where this task's messages go: its host's relay when it runs under one, else the endpoint."""
    from ._config import messages_endpoint, resolve_endpoint

    return messages_endpoint(resolve_endpoint(endpoint or None))


def _frames(endpoint: str) -> FrameConnection | None:
    """The relay's frame socket (its hot calls without gRPC) when `endpoint` is a host relay
    that has one and tracing is off (trace context rides in gRPC metadata); one per process."""
    if endpoint in _frame_connections:
        return _frame_connections[endpoint]
    from maos import tracing

    from ._frames_client import FrameConnection, frames_path

    tracing.configure_from_env(tracing.CLIENT_SERVICE_NAME)
    path = frames_path(endpoint) if not tracing.enabled() else None
    with _channels_lock:
        connection = _frame_connections.setdefault(endpoint, FrameConnection(path) if path is not None else None)
    return connection


def _async_frames(endpoint: str) -> AsyncFrameConnections | None:
    """The relay's frame socket for asyncio calls, on the same conditions as `_frames`; one pool
    of connections per process (it serves every event loop)."""
    if endpoint in _async_frame_connections:
        return _async_frame_connections[endpoint]
    frames = _frames(endpoint)
    from ._frames_async import AsyncFrameConnections

    with _channels_lock:
        return _async_frame_connections.setdefault(
            endpoint, AsyncFrameConnections(frames.path) if frames is not None else None
        )


def _channel(endpoint: str) -> grpc.Channel:
    channel = _channels.get(endpoint)
    if channel is None:
        import grpc
        from maos import tracing

        from ._config import CHANNEL_OPTIONS

        with _channels_lock:
            channel = _channels.get(endpoint)
            if channel is None:
                # Traced when tracing is on: each message carries the agent's span context.
                channel = _channels[endpoint] = tracing.intercept_channel(
                    grpc.insecure_channel(_endpoint(endpoint), options=CHANNEL_OPTIONS)
                )
    return channel


def _aio_channel(endpoint: str) -> grpc.aio.Channel:
    loop = asyncio.get_running_loop()
    entry = _aio_channels.get(endpoint)
    if entry is None or entry[0] is not loop:
        import grpc.aio
        from maos import tracing

        from ._config import CHANNEL_OPTIONS

        # A grpc.aio channel belongs to the loop it was opened on.
        entry = _aio_channels[endpoint] = (
            loop,
            grpc.aio.insecure_channel(
                _endpoint(endpoint), options=CHANNEL_OPTIONS, interceptors=tracing.aio_client_interceptors()
            ),
        )
    return entry[1]

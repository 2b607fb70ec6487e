"""Messaging: the runtime-facing message service over the index and the store.

Order of effects for a send: validate and resolve the recipients, check
every target mailbox has room (all or nothing), reserve that room, hand the
copies to the store, and answer once they are committed; only then do the
copies become visible to readers. A caller that goes away mid-commit does
not undo it: the copies still become visible when the commit lands. An ack
removes messages from memory at once (so they are not redelivered) and is
answered once the deletion is committed.

Ids: a message's id is server-generated (a monotonic ULID, so id order is
the order the service accepted messages in, across all mailboxes) unless
the client gives one; the same id sent again to the same mailbox is a no-op,
while that mailbox still holds it or recently acknowledged it.

Waiting readers (long-polling Receive, Subscribe streams) sleep on a
per-mailbox wake-up, woken by commits and acks, and by their own timer for
the next lease to run out.

Callers: the task named by the request's metadata (`sender`/`caller`, ""
for an operator) must exist, and agents stay inside their tree (_access).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from maos import tracing
from maos.controlplane._ids import UlidGenerator
from maos.errors import (
    FailedPrecondition,
    InvalidArgument,
    MaosError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)

from ._access import check_broadcast, check_read, check_send
from ._backend import MessageBackend
from ._checks import BatchRow, Outgoing, ReadParams
from ._config import MessagingConfig
from ._directory import TaskDirectory, TaskInfo
from ._index import MessageIndex, StatsRow
from ._mailbox import Mailbox, MailboxStats, StoredMessage
from ._names import TASK_PREFIX, TOPIC_PREFIX, TREE_PREFIX, check_task_id, check_token, parse_mailbox, task_mailbox
from ._pg_store import PostgresMessageStore
from ._store import Loaded, MessageStore

if TYPE_CHECKING:
    from maos.controlplane.store import PostgresStore
    from maos.tracing._messages import MessageSpans

log = logging.getLogger(__name__)

# A waiting reader re-checks at least this often, so a lost wake-up costs at most this.
_MAX_SLEEP_SECONDS = 30.0
# The most messages one send_batch carries.
MAX_SEND_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Publication:
    """One accepted topic publication, as the live topic feed shows it."""

    topic: str
    message_id: str
    sender: str
    message: Outgoing
    published_at: float


@dataclass(frozen=True, slots=True)
class SendResult:
    """Where a message went: its id once per mailbox it was copied into."""

    message_ids: list[str]
    recipients: int


class Messaging:
    """Mailboxes, topics and delivery; use as `async with` or call open()/close()."""

    def __init__(self, store: MessageBackend, directory: TaskDirectory, config: MessagingConfig) -> None:
        self.config = config
        self._store = store
        self._directory = directory
        self._index = MessageIndex(
            max_queued=config.max_queued, max_total_bytes=config.max_total_bytes, dedupe_window=config.dedupe_window
        )
        self._ids = UlidGenerator()
        self._seq = 0
        self._pending: dict[tuple[str, str], asyncio.Future[None]] = {}  # (mailbox, client's id) -> its commit
        self._pending_bytes = 0
        self._wakers: dict[str, set[asyncio.Future[None]]] = {}
        self._streams_by_mailbox: dict[str, int] = {}
        self._streams_by_caller: dict[str, int] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False
        self._traces: MessageSpans | None = tracing.message_spans()  # None when tracing is off
        # Called with every accepted topic publication, after its copies are durable (the live
        # topic feed: watchers here and, with --redis, on the other control planes).
        self.publication_listeners: list[Callable[[Publication], None]] = []

    # --------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Load undelivered messages and subscriptions from the store; start the TTL sweep."""
        loaded = await self._store.open()
        now = time.time()
        for mailbox, topic in loaded.subscriptions:
            self._index.subscribe(topic, mailbox, now)
        expired: list[int] = []
        for msg in loaded.messages:
            if msg.expires_at <= now:
                expired.append(msg.seq)
            else:
                self._index.mailbox(msg.mailbox, now).add(msg)
        for box in self._index.mailboxes.values():
            box.stats = MailboxStats()  # counters count this run, not what was recovered
        self._seq = loaded.max_seq
        if expired:
            await self._store.delete(expired)
        if loaded.messages:
            log.info(
                "recovered %d undelivered messages in %d mailboxes (%d expired meanwhile)",
                len(loaded.messages) - len(expired),
                len(self._index.mailboxes),
                len(expired),
            )
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="maos-messages-sweep")

    async def snapshot(self) -> Loaded:
        """Every undelivered message and subscription as committed now (a checkpoint's queues)."""
        return await self._store.read_all()

    async def restore(self, loaded: Loaded) -> int:
        """Load a checkpoint's messages and subscriptions into a service that holds no message:
        stored first, then deliverable (leases start afresh). Expired ones are left out.
        Returns how many messages were restored."""
        held = sum(len(box) + box.reserved for box in self._index.mailboxes.values())
        if held:
            raise FailedPrecondition(f"messaging already holds {held} undelivered messages; restore needs none")
        now = time.time()
        live = [m for m in loaded.messages if m.expires_at > now]
        commits = [self._store.subscribe(mailbox, topic, now) for mailbox, topic in loaded.subscriptions]
        if live:
            commits.append(self._store.insert(live))
        await asyncio.gather(*commits)
        for mailbox, topic in loaded.subscriptions:
            self._index.subscribe(topic, mailbox, now)
        for msg in live:
            msg.delivery_count, msg.lease_until = 0, 0.0
            self._index.mailbox(msg.mailbox, now).add(msg)
            self._notify(msg.mailbox)
        self._seq = max(self._seq, loaded.max_seq)
        return len(live)

    async def close(self) -> None:
        """Stop the sweep, wake every waiting reader, commit what is queued. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.wait([self._sweeper])  # its CancelledError stays inside it
            self._sweeper = None
        for name in list(self._wakers):
            self._notify(name)
        await self._store.close()

    async def __aenter__(self) -> Messaging:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def store(self) -> MessageBackend:
        """The store under this service (tests and benchmarks read its counters)."""
        return self._store

    # ------------------------------------------------------------------ sending

    async def send(self, sender: str, to_task_id: str, message: Outgoing) -> SendResult:
        """Copy a message into one task's mailbox. `sender`: the calling task's id, "" for an operator."""
        caller = await self._caller(sender)
        await self._check_recipient(caller, to_task_id)
        return await self._deliver([task_mailbox(to_task_id)], task_mailbox(to_task_id), "", sender, message)

    async def send_batch(self, sender: str, items: Sequence[tuple[str, Outgoing]]) -> list[str]:
        """Copy many messages into task mailboxes, one per `(to_task_id, message)`: see send_rows."""
        return await self.send_rows(
            sender,
            [(to, m.priority, m.data, m.content_type, m.ttl_seconds, m.message_id, m.trace_context) for to, m in items],
        )

    async def send_rows(self, sender: str, rows: Sequence[BatchRow]) -> list[str]:
        """See _send_rows; traced as one send span when tracing is on."""
        if self._traces is None or not rows:
            return await self._send_rows(sender, rows, None)
        context = rows[0][6]
        span, carrier = self._traces.start_send(context, recipient="batch", message_id="", copies=len(rows))
        try:
            results = await self._send_rows(sender, rows, carrier)
        except BaseException as exc:
            self._traces.end_send(span, exc)
            raise
        self._traces.end_send(span)
        return results

    async def _send_rows(
        self, sender: str, rows: Sequence[BatchRow], trace_context: dict[str, str] | None
    ) -> list[str]:
        """Copy many checked messages (`check_batch_items`) into task mailboxes, one each, in
        one commit; the message ids, one per row in order.

        All or nothing: every recipient is checked first (an error names the
        message's index), then room for the whole batch (a full mailbox
        rejects it all); then every copy goes to the store in one transaction
        and the answer follows its commit.
        A client id already held (or repeated inside the batch) is a no-op,
        as with `send`.
        """
        if len(rows) > MAX_SEND_BATCH:
            raise InvalidArgument(f"a batch holds at most {MAX_SEND_BATCH} messages, got {len(rows)}; split it")
        recipients = await self._check_recipients(await self._caller(sender), [row[0] for row in rows])
        # No await from here until the copies are handed to the store: nothing changes under us.
        now = time.time()
        waits: dict[int, asyncio.Future[None]] = {}
        if any([row[5] for row in rows]):  # a list: quicker to build than a generator to run
            ids, copies, client_keys = self._copies(sender, rows, now, trace_context, waits)
            counts: dict[str, int] = Counter(msg.mailbox for msg in copies)
        else:
            ids, copies = self._fresh_copies(sender, rows, now, trace_context, recipients)
            client_keys = []
            counts = {TASK_PREFIX + to_task_id: n for to_task_id, n in recipients.items()}
        if copies:
            size = sum(len(msg.data) for msg in copies)
            self._index.check_room_many(counts, size, self._pending_bytes)
            self._seq = copies[-1].seq
            waits[0] = self._commit(copies, counts, size, client_keys, now)
        if waits:
            # Shielded: a caller that goes away does not undo a commit under way.
            pending_all = list(waits.values())
            await asyncio.shield(pending_all[0] if len(pending_all) == 1 else asyncio.gather(*pending_all))
        return ids

    def _fresh_copies(
        self,
        sender: str,
        rows: Sequence[BatchRow],
        now: float,
        trace_context: dict[str, str] | None,
        recipients: Mapping[str, int],
    ) -> tuple[list[str], list[StoredMessage]]:
        """The copies of rows that carry no client id (the common batch): each takes a fresh
        server id, which nobody can know yet, so there is no duplicate to look for; ids and
        seqs in row order. Nothing is reserved or committed here."""
        ids = self._ids.new_many(len(rows))
        seq = self._seq
        names = {to_task_id: TASK_PREFIX + to_task_id for to_task_id in recipients}
        copies = [
            StoredMessage(
                seq + i,
                (name := names[to_task_id]),
                message_id,
                sender,
                name,
                "",
                priority,
                data,
                content_type,
                now,
                now + ttl,
                0,
                0.0,
                trace_context,
            )
            for i, ((to_task_id, priority, data, content_type, ttl, _, _), message_id) in enumerate(
                zip(rows, ids, strict=True), 1
            )
        ]
        return ids, copies

    def _copies(
        self,
        sender: str,
        rows: Sequence[BatchRow],
        now: float,
        trace_context: dict[str, str] | None,
        waits: dict[int, asyncio.Future[None]],
    ) -> tuple[list[str], list[StoredMessage], list[tuple[str, str]]]:
        """The copies of rows some of which carry a client id: an id already held, being
        committed (its commit goes into `waits`) or repeated inside the batch is a no-op.
        Returns the ids (one per row), the copies to commit, and the (mailbox, id) of those
        with a client id. Nothing is reserved or committed here."""
        # Fresh server ids for the rows without a client id, in row order (so id order stays
        # acceptance order), made in one call.
        fresh_ids = iter(self._ids.new_many(sum(1 for row in rows if not row[5])))
        pending = self._pending
        index = self._index
        ids: list[str] = []
        copies: list[StoredMessage] = []
        client_keys: list[tuple[str, str]] = []  # copies with a client-chosen id, tracked while committing
        seen: set[tuple[str, str]] = set()
        seq = self._seq
        for to_task_id, priority, data, content_type, ttl, message_id, _ in rows:
            name = TASK_PREFIX + to_task_id
            if message_id:
                ids.append(message_id)
                key = (name, message_id)
                if key in seen:
                    continue  # the same id twice in one batch: the second is a no-op
                seen.add(key)
                committing = pending.get(key)
                if committing is not None:
                    waits[id(committing)] = committing  # the same id is being committed: answer when it is
                    continue
                box = index.get(name)
                if box is not None and box.knows(message_id):
                    continue
                client_keys.append(key)
            else:
                message_id = next(fresh_ids)
                ids.append(message_id)
            seq += 1
            copies.append(
                StoredMessage(
                    seq,
                    name,
                    message_id,
                    sender,
                    name,
                    "",
                    priority,
                    data,
                    content_type,
                    now,
                    now + ttl,
                    0,
                    0.0,
                    trace_context,
                )
            )
        return ids, copies, client_keys

    async def check_batch(self, sender: str, to_task_ids: Sequence[str], client_ids: bool) -> None:
        """The checks of `send_batch` that need no payload, for a caller to run before it
        validates thousands of payloads: the caller, each recipient once (an error names
        the index of its first message) and, unless a message carries a client id (a resend
        of one already held needs no room), room in every mailbox for its share. A sender
        retrying against a full mailbox is refused here, cheaply. Raises as send_batch would."""
        if len(to_task_ids) > MAX_SEND_BATCH:
            raise InvalidArgument(f"a batch holds at most {MAX_SEND_BATCH} messages, got {len(to_task_ids)}; split it")
        counts = await self._check_recipients(await self._caller(sender), to_task_ids)
        if not client_ids:
            self._index.check_room_many({task_mailbox(t): n for t, n in counts.items()}, 0, self._pending_bytes)

    async def _check_recipients(self, caller: TaskInfo | None, to_task_ids: Sequence[str]) -> dict[str, int]:
        """`_check_recipient` once per distinct recipient, in the order of their first message
        (an error names the index of that message); how many messages go to each."""
        counts = _count(to_task_ids)
        for to_task_id in counts:
            try:
                await self._check_recipient(caller, to_task_id)
            except MaosError as exc:
                raise type(exc)(f"message {to_task_ids.index(to_task_id)}: {exc}") from None
        return counts

    async def _check_recipient(self, caller: TaskInfo | None, to_task_id: str) -> None:
        """The task exists, is unfinished, is not a workflow root, and the caller may send to it."""
        check_task_id(to_task_id, "to_task_id")
        info = await self._directory.task(to_task_id)
        if info is None:
            raise NotFound(f"task {to_task_id} not found: there is no agent of that task to send to")
        if info.final:
            raise FailedPrecondition(f"task {to_task_id} is {info.status or 'finished'}; nobody will read it")
        if info.group:
            raise FailedPrecondition(
                f"task {to_task_id} is a workflow root: no agent runs it to read messages; send to one of its "
                "subtasks, or broadcast to the tree"
            )
        check_send(caller, info)

    async def broadcast(self, sender: str, root_id: str, message: Outgoing) -> SendResult:
        """Copy a message into the mailbox of every unfinished task of a tree (workflow roots
        aside: no agent reads them), except the sender's."""
        caller = await self._caller(sender)
        check_task_id(root_id, "broadcast_root_id")
        info = await self._directory.task(root_id)
        if info is None:
            raise NotFound(f"task {root_id} not found: there is no task tree to broadcast to")
        if info.root_id != root_id:
            raise InvalidArgument(f"task {root_id} is not the root of its tree; broadcast to its root {info.root_id}")
        check_broadcast(caller, root_id)
        members = [t for t in self._directory.unfinished_in_tree(root_id) if t != sender]
        if len(members) > self.config.max_recipients:
            raise ResourceExhausted(
                f"tree {root_id} has {len(members)} unfinished tasks; a broadcast reaches at most "
                f"{self.config.max_recipients}"
            )
        return await self._deliver([task_mailbox(t) for t in members], TREE_PREFIX + root_id, "", sender, message)

    async def publish(self, sender: str, topic: str, message: Outgoing) -> SendResult:
        """Copy a message into every current subscription of a topic (none: it is dropped)."""
        await self._caller(sender)
        check_token(topic, "topic")
        subscriptions = self._index.subscriptions(topic)
        if len(subscriptions) > self.config.max_recipients:
            raise ResourceExhausted(
                f"topic {topic} has {len(subscriptions)} subscriptions; a message reaches at most "
                f"{self.config.max_recipients}"
            )
        stats = self._index.topic_stats(topic)
        try:
            result = await self._deliver(subscriptions, TOPIC_PREFIX + topic, topic, sender, message)
        except ResourceExhausted:
            if stats is not None:
                stats.rejected_full += 1
            raise
        if stats is not None and result.recipients:
            stats.published += 1
            stats.bytes += len(message.data)
        if self.publication_listeners:
            # No subscription: no copy took an id, but the watchers still see it under one.
            message_id = result.message_ids[0] if result.message_ids else message.message_id or self._ids.new()
            publication = Publication(topic, message_id, sender, message, time.time())
            for listener in self.publication_listeners:
                try:
                    listener(publication)
                except Exception:  # an observer must never fail a publish
                    log.exception("a publication listener failed")
        return result

    async def _deliver(
        self, targets: Sequence[str], recipient: str, topic: str, sender: str, message: Outgoing
    ) -> SendResult:
        """See _copy; traced as a send span when tracing is on."""
        if self._traces is None:
            return await self._copy(targets, recipient, topic, sender, message, None)
        span, carrier = self._traces.start_send(
            message.trace_context, recipient=recipient, message_id=message.message_id, copies=len(targets)
        )
        try:
            result = await self._copy(targets, recipient, topic, sender, message, carrier)
        except BaseException as exc:
            self._traces.end_send(span, exc)
            raise
        self._traces.end_send(span)
        return result

    async def _copy(
        self,
        targets: Sequence[str],
        recipient: str,
        topic: str,
        sender: str,
        message: Outgoing,
        trace_context: dict[str, str] | None,
    ) -> SendResult:
        message_id = message.message_id or self._ids.new()
        now = time.time()
        waits: list[asyncio.Future[None]] = []
        fresh: list[str] = []
        for name in targets:
            pending = self._pending.get((name, message_id))
            box = self._index.get(name)
            if pending is not None:
                waits.append(pending)  # the same id is being committed: answer when it is
            elif box is None or not box.knows(message_id):
                fresh.append(name)
        if fresh:
            size = len(message.data)
            self._index.check_room(fresh, size, self._pending_bytes)
            copies = []
            for name in fresh:
                self._seq += 1
                copies.append(
                    StoredMessage(
                        self._seq,
                        name,
                        message_id,
                        sender,
                        recipient,
                        topic,
                        message.priority,
                        message.data,
                        message.content_type,
                        now,
                        now + message.ttl_seconds,
                        0,
                        0.0,
                        trace_context,
                    )
                )
            counts: dict[str, int] = {}
            for name in fresh:
                counts[name] = counts.get(name, 0) + 1
            keys = [(name, message_id) for name in fresh]
            waits.append(self._commit(copies, counts, size * len(copies), keys, now))
        if waits:
            # Shielded: a caller that goes away does not undo a commit under way.
            await asyncio.shield(waits[0] if len(waits) == 1 else asyncio.gather(*waits))
        return SendResult([message_id] * len(targets), len(targets))

    def _commit(
        self,
        copies: list[StoredMessage],
        counts: dict[str, int],
        size: int,
        keys: list[tuple[str, str]],
        now: float,
    ) -> asyncio.Future[None]:
        """Reserve room for checked copies and hand them to the store; they become readable
        when the returned commit lands. `counts`: copies per mailbox; `keys`: the (mailbox, id)
        of copies whose id a client chose, so a resend while committing waits for this commit."""
        for name, n in counts.items():
            self._index.mailbox(name, now).reserve(n)
        self._pending_bytes += size
        commit = self._store.insert(copies)
        for key in keys:
            self._pending[key] = commit
        commit.add_done_callback(functools.partial(self._committed, copies, counts, size, keys))
        return commit

    def _committed(
        self,
        copies: list[StoredMessage],
        counts: dict[str, int],
        size: int,
        keys: list[tuple[str, str]],
        fut: asyncio.Future[None],
    ) -> None:
        ok = not fut.cancelled() and fut.exception() is None
        for key in keys:
            self._pending.pop(key, None)
        self._pending_bytes -= size
        boxes: dict[str, Mailbox] = {}
        for name, n in counts.items():
            box = self._index.get(name)
            if box is None:  # cannot happen while reserved; be safe
                box = self._index.mailbox(name, copies[0].sent_at)
            box.release(n)
            boxes[name] = box
        if not ok:
            return
        if len(boxes) == 1:
            next(iter(boxes.values())).add_many(copies)
        else:
            for msg in copies:
                boxes[msg.mailbox].add(msg)
        for name in boxes:
            self._notify(name)

    # ------------------------------------------------------------------ reading

    async def receive(self, caller: str, mailbox: str, params: ReadParams) -> list[StoredMessage]:
        """Lease up to `params.max_messages` messages, waiting up to `params.wait_seconds` for the first."""
        box = await self._readable(caller, mailbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + params.wait_seconds
        waiting = False
        try:
            while True:
                now = time.time()
                taken = box.take(now, params.max_messages, params.lease_seconds)
                self._forget(taken.dropped)
                remaining = deadline - loop.time()
                if taken.messages or remaining <= 0 or self._closed:
                    if taken.messages and self._traces is not None:
                        self._traces.received(taken.messages, box.name)
                    return taken.messages
                if not waiting:
                    if len(self._wakers.get(box.name, ())) >= self.config.max_waiters_per_mailbox:
                        raise ResourceExhausted(
                            f"{self.config.max_waiters_per_mailbox} readers already wait on mailbox {box.name}; "
                            "read with fewer concurrent calls"
                        )
                    waiting = True
                await self._wait_change(box, min(remaining, self._until_lease(box, now)))
        finally:
            box.last_active = time.time()

    async def subscribe(
        self, caller_key: str, caller: str, mailbox: str, params: ReadParams
    ) -> AsyncIterator[list[StoredMessage]]:
        """Push delivery: batches of leased messages, at most `params.max_messages` unacknowledged at once.

        `caller_key` identifies the client for the per-client stream bound.
        Raises ResourceExhausted before the first batch when the mailbox or
        the client already has as many streams as allowed.
        """
        box = await self._readable(caller, mailbox)
        name = box.name
        if self._streams_by_mailbox.get(name, 0) >= self.config.max_streams_per_mailbox:
            raise ResourceExhausted(
                f"mailbox {name} already has {self._streams_by_mailbox[name]} subscriber stream(s), the limit; "
                "close the other one or read with Receive"
            )
        if self._streams_by_caller.get(caller_key, 0) >= self.config.max_streams_per_caller:
            raise ResourceExhausted(
                f"this client already holds {self._streams_by_caller[caller_key]} subscriber streams, the limit"
            )
        self._streams_by_mailbox[name] = self._streams_by_mailbox.get(name, 0) + 1
        self._streams_by_caller[caller_key] = self._streams_by_caller.get(caller_key, 0) + 1
        try:
            while not self._closed:
                now = time.time()
                self._forget(box.requeue_expired(now))
                credit = self._push_limit(box, params.max_messages) - box.in_flight
                if credit > 0:
                    taken = box.take(now, credit, params.lease_seconds)
                    self._forget(taken.dropped)
                    if taken.messages:
                        if self._traces is not None:
                            self._traces.received(taken.messages, name)
                        yield taken.messages
                        continue
                await self._wait_change(box, self._until_lease(box, now))
            raise Unavailable("the control plane is shutting down; subscribe again once it is back")
        finally:
            box.last_active = time.time()
            _decrement(self._streams_by_mailbox, name)
            _decrement(self._streams_by_caller, caller_key)

    def _push_limit(self, box: Mailbox, max_messages: int) -> int:
        """How many of `box`'s messages a subscriber stream may hold unacknowledged: its own
        bound, and no more than `max_in_flight_bytes` at the mailbox's mean payload size."""
        held = len(box)
        if not held or not box.bytes:
            return max_messages
        return min(max_messages, max(1, self.config.max_in_flight_bytes * held // box.bytes))

    async def ack(self, caller: str, mailbox: str, ids: Sequence[str]) -> int:
        """Remove acknowledged messages; answered once the removal is committed. Unknown ids are skipped."""
        if len(ids) > self.config.max_ack_ids:
            raise InvalidArgument(f"at most {self.config.max_ack_ids} message ids per ack, got {len(ids)}")
        name = self._mailbox_name(caller, mailbox)
        parsed = parse_mailbox(name)
        check_read(await self._caller(caller), parsed)
        box = self._index.get(name)
        if box is None:
            if not parsed.is_task:
                raise NotFound(f"there is no subscription {name}: it was never read, or expired after being idle")
            if await self._directory.task(parsed.task_id) is None:
                raise NotFound(f"task {parsed.task_id} not found: there is no mailbox {name}")
            return 0
        removed = box.ack(ids if isinstance(ids, list) else list(ids), time.time())
        if not removed:
            return 0
        self._notify(name)  # a stream waiting for credit can send more
        await asyncio.shield(self._store.delete([m.seq for m in removed]))
        return len(removed)

    async def release(self, caller: str, mailbox: str, ids: Sequence[str]) -> int:
        """Give leased messages back unread (a host relay that held them for an agent that
        finished): they are delivered again at once instead of when their lease runs out."""
        name = self._mailbox_name(caller, mailbox)
        check_read(await self._caller(caller), parse_mailbox(name))
        box = self._index.get(name)
        if box is None or not ids:
            return 0
        returned = box.unlease(list(ids))
        if returned:
            self._notify(name)
        return returned

    def stats(self) -> list[StatsRow]:
        """Per-topic sums, then every mailbox (counters since start-up)."""
        return self._index.stats()

    # ------------------------------------------------------------------ helpers

    def _mailbox_name(self, caller: str, mailbox: str) -> str:
        if mailbox:
            return str(parse_mailbox(mailbox))
        if not caller:
            raise InvalidArgument(
                "mailbox is empty and the caller is not a task: name a mailbox "
                "(task:<id> or topic:<topic>/<subscriber>), or call from inside a task (MAOS_TASK_ID)"
            )
        return task_mailbox(caller)

    async def _readable(self, caller: str, mailbox: str) -> Mailbox:
        """The mailbox to read: a task's (which must exist), or a subscription (created on first use)."""
        name = self._mailbox_name(caller, mailbox)
        parsed = parse_mailbox(name)
        check_read(await self._caller(caller), parsed)
        now = time.time()
        box = self._index.get(name)
        if box is None:
            if parsed.is_task:
                if await self._directory.task(parsed.task_id) is None:
                    raise NotFound(f"task {parsed.task_id} not found: there is no mailbox {name}")
                box = self._index.mailbox(name, now)
            else:
                box = self._index.subscribe(parsed.topic, name, now)
                await asyncio.shield(self._store.subscribe(name, parsed.topic, now))
        box.last_active = now
        return box

    async def _caller(self, task_id: str) -> TaskInfo | None:
        """The calling task (None for an operator); PermissionDenied if it names no task."""
        if not task_id:
            return None
        info = await self._directory.task(task_id)
        if info is None:
            raise PermissionDenied(
                f"the request says it comes from task {task_id} (metadata maos-task-id), "
                "which this control plane does not know"
            )
        return info

    def _until_lease(self, box: Mailbox, now: float) -> float:
        deadline = box.next_lease_deadline()
        if deadline is None:
            return _MAX_SLEEP_SECONDS
        return min(_MAX_SLEEP_SECONDS, max(deadline - now, 0.0) + 0.001)

    async def _wait_change(self, box: Mailbox, seconds: float) -> None:
        # A timer rather than wait_for: the reader resumes on the loop turn after the wake
        # (wait_for costs another turn, on every lone message's path).
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        waiters = self._wakers.setdefault(box.name, set())
        waiters.add(fut)
        timer = loop.call_later(seconds, _resolve, fut)
        try:
            await fut
        finally:
            timer.cancel()
            waiters.discard(fut)
            if not waiters and self._wakers.get(box.name) is waiters:
                del self._wakers[box.name]

    def _notify(self, name: str) -> None:
        for fut in self._wakers.get(name, ()):
            if not fut.done():
                fut.set_result(None)

    def _forget(self, dropped: list[StoredMessage]) -> None:
        """Delete expired messages from the store; nobody waits on it (a failed delete
        leaves rows that the next start-up drops as expired)."""
        if dropped:
            self._store.delete([m.seq for m in dropped]).add_done_callback(_log_failure)

    # -------------------------------------------------------------------- sweep

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval_seconds)
            try:
                self.sweep(time.time())
            except Exception:
                log.exception("message sweep failed; retrying at the next interval")

    def sweep(self, now: float) -> None:
        """Drop expired messages; forget idle subscriptions and idle empty task mailboxes."""
        for name, box in list(self._index.mailboxes.items()):
            self._forget(box.requeue_expired(now) + box.expire(now))
            if box.reserved or name in self._wakers or self._streams_by_mailbox.get(name):
                continue  # a send is committing into it, or someone is reading it
            idle = now - box.last_active
            if name.startswith(TOPIC_PREFIX):
                if idle > self.config.subscription_idle_seconds:
                    held = self._index.remove(name)
                    log.info("subscription %s idle for %.0fs: removed with %d messages", name, idle, len(held))
                    self._store.unsubscribe(name, [m.seq for m in held]).add_done_callback(_log_failure)
            elif box.empty and idle > self.config.mailbox_idle_seconds:
                self._index.remove(name)


def _count(to_task_ids: Sequence[str]) -> dict[str, int]:
    """How many messages go to each recipient, in the order of their first message; counted
    in C (a batch names few recipients, many times), most often all the same one."""
    if to_task_ids and to_task_ids.count(to_task_ids[0]) == len(to_task_ids):
        return {to_task_ids[0]: len(to_task_ids)}
    return Counter(to_task_ids)


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _log_failure(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("a message store delete failed: %s", fut.exception())


async def open_messaging(
    sqlite_path: Path,
    task_lookup: TaskDirectory,
    config: MessagingConfig,
    *,
    postgres: PostgresStore | None = None,
    load: bool = True,
) -> Messaging:
    """A running message service on `sqlite_path` (the task store's file): loaded, swept, ready.

    With `postgres` (the task store, opened) messages live in its schema and pool
    instead, so they follow a failover. `load=False` returns the service unopened:
    a standby opens it (`await messaging.open()`) once it leads, after fencing
    its store, so it loads what the old leader committed and never writes before.

    `task_lookup` answers which tasks exist, their tree and whether they are
    finished (`RuntimeTaskDirectory(runtime.orch.tasks, runtime.store.get_tasks)`
    in the control plane). Close it with `await messaging.close()` after the
    gRPC server stopped.
    """
    store: MessageBackend
    if postgres is not None:
        store = PostgresMessageStore(postgres)
    else:
        store = MessageStore(sqlite_path, synchronous=config.sqlite_synchronous)
    messaging = Messaging(store, task_lookup, config)
    if load:
        await messaging.open()
    return messaging

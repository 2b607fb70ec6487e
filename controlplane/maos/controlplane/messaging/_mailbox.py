"""One mailbox: a bounded priority queue with leases, TTLs and idempotent ids. No I/O.

A message is *ready* (in the priority heap) or *in flight* (leased to a
receiver until `lease_until`). Delivery order is (priority, seq): lower
priority number first, then the order the service accepted them in. A lease
that runs out puts the message back where it was, so a redelivery keeps its
place ahead of later messages. Ack removes a message in either state.
Expired messages (past `expires_at`) are dropped when they would be delivered
and by `expire()`, and returned so the caller deletes them from the store.

Ready messages wait in one lane per priority: a FIFO of entries that came in
seq order (new messages: O(1) in and out) and a heap of those that did not
(a redelivery, which goes back ahead of later messages). Leases are a heap
with one entry per take (its deadline and the ids it leased). Both use lazy
deletion: an entry (an id of a lease entry) is valid only while it matches the
message (same seq, not leased / same lease deadline); they are rebuilt when
stale entries outnumber live ones, so memory stays proportional to what the
mailbox holds.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

# What a store keeps of a StoredMessage, in its field order (the rest lives in memory only).
STORED_FIELDS = (
    "seq",
    "mailbox",
    "id",
    "sender",
    "recipient",
    "topic",
    "priority",
    "data",
    "content_type",
    "sent_at",
    "expires_at",
)


@dataclass(slots=True, eq=False)
class StoredMessage:
    """One copy of a message in one mailbox, as kept in memory and in the store."""

    seq: int
    mailbox: str
    id: str
    sender: str
    recipient: str
    topic: str
    priority: int
    data: bytes
    content_type: str
    sent_at: float
    expires_at: float
    delivery_count: int = 0
    lease_until: float = 0.0  # > 0 while in flight
    trace_context: dict[str, str] | None = None  # the send span's W3C context; in memory only, not stored

    @property
    def size(self) -> int:
        """Payload bytes (what the service's memory bound counts)."""
        return len(self.data)


@dataclass(slots=True)
class MailboxStats:
    """Counters since the mailbox was loaded (they are not persisted)."""

    sent: int = 0  # messages accepted into the mailbox
    bytes: int = 0  # payload bytes accepted
    delivered: int = 0  # first deliveries
    redelivered: int = 0  # deliveries after the first (a lease ran out)
    batches: int = 0  # Receive answers / Subscribe rounds that carried messages
    expired: int = 0  # dropped at their TTL
    rejected_full: int = 0  # sends refused because the mailbox was full
    delivery_errors: int = 0  # leases that ran out unacknowledged


class Usage:
    """Payload bytes held by a group of mailboxes (the service's global memory bound)."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


@dataclass(slots=True)
class Taken:
    """What one `take` produced: messages now leased, and expired ones it dropped."""

    messages: list[StoredMessage] = field(default_factory=list)
    dropped: list[StoredMessage] = field(default_factory=list)


class _Lane:
    """The ready entries `(seq, id)` of one priority, popped in seq order."""

    __slots__ = ("fifo", "late")

    def __init__(self) -> None:
        self.fifo: deque[tuple[int, str]] = deque()  # entries pushed in increasing seq order
        self.late: list[tuple[int, str]] = []  # a heap: entries pushed behind the FIFO's tail

    def push(self, seq: int, message_id: str) -> None:
        fifo = self.fifo
        if not fifo or fifo[-1][0] < seq:
            fifo.append((seq, message_id))
        else:
            heapq.heappush(self.late, (seq, message_id))

    def pop(self) -> tuple[int, str] | None:
        """The entry of lowest seq, or None when the lane is empty."""
        late = self.late
        if late:
            fifo = self.fifo
            if fifo and fifo[0][0] < late[0][0]:
                return fifo.popleft()
            return heapq.heappop(late)
        return self.fifo.popleft() if self.fifo else None

    def __len__(self) -> int:
        return len(self.fifo) + len(self.late)


class _Ready:
    """Ready entries popped in (priority, seq) order: one `_Lane` per priority, so the common
    case (messages arriving in seq order) costs a deque append and popleft, not a heap's
    O(log n) sift through every queued message."""

    __slots__ = ("lanes", "order")

    def __init__(self) -> None:
        self.lanes: dict[int, _Lane] = {}
        self.order: list[_Lane] = []  # the lanes by priority, lowest number (most urgent) first

    def lane(self, priority: int) -> _Lane:
        lane = self.lanes.get(priority)
        if lane is None:
            lane = self.lanes[priority] = _Lane()
            keys = sorted(self.lanes)
            self.order = [self.lanes[k] for k in keys]
        return lane

    def push(self, priority: int, seq: int, message_id: str) -> None:
        self.lane(priority).push(seq, message_id)

    def rebuild(self, entries: list[tuple[int, int, str]]) -> None:
        """Hold exactly `entries` `(priority, seq, id)`."""
        self.clear()
        for priority, seq, message_id in sorted(entries):
            self.lane(priority).fifo.append((seq, message_id))

    def clear(self) -> None:
        self.lanes.clear()
        self.order = []

    def __len__(self) -> int:
        return sum(len(lane) for lane in self.order)


class Mailbox:
    """A bounded mailbox; every method takes `now` (seconds since the epoch) explicitly."""

    __slots__ = (
        "_earliest_expiry",
        "_in_flight",
        "_lease_ids",
        "_leases",
        "_messages",
        "_ready",
        "_recent",
        "_reserved",
        "_usage",
        "bytes",
        "dedupe_window",
        "last_active",
        "max_queued",
        "name",
        "stats",
    )

    def __init__(
        self, name: str, max_queued: int, dedupe_window: int = 1000, now: float = 0.0, usage: Usage | None = None
    ) -> None:
        self.name = name
        self.max_queued = max_queued
        self.dedupe_window = dedupe_window
        self.stats = MailboxStats()
        self.bytes = 0  # payload bytes held
        self.last_active = now
        self._messages: dict[str, StoredMessage] = {}
        self._ready = _Ready()
        # One entry per take: (lease_until, first seq, ids leased until then); the seq breaks ties.
        self._leases: list[tuple[float, int, list[str]]] = []
        self._lease_ids = 0  # ids in _leases, stale ones included
        self._in_flight = 0
        self._reserved = 0
        self._recent: OrderedDict[str, None] = OrderedDict()  # acked/expired ids, newest last
        self._earliest_expiry = math.inf  # a lower bound over held messages
        self._usage = usage if usage is not None else Usage()

    # ------------------------------------------------------------------ sizes

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def in_flight(self) -> int:
        """Messages leased to a receiver and not yet acknowledged."""
        return self._in_flight

    @property
    def queued(self) -> int:
        """Messages ready for delivery."""
        return len(self._messages) - self._in_flight

    @property
    def depth(self) -> int:
        """What counts against `max_queued`: held messages plus sends awaiting their commit."""
        return len(self._messages) + self._reserved

    @property
    def reserved(self) -> int:
        """Sends accepted into this mailbox whose commit is still under way."""
        return self._reserved

    @property
    def empty(self) -> bool:
        """Nothing held and nothing on its way in."""
        return not self._messages and not self._reserved

    def has_room(self, n: int = 1) -> bool:
        """True if `n` more messages fit under `max_queued`."""
        return self.depth + n <= self.max_queued

    def reserve(self, n: int = 1) -> None:
        """Hold room for messages whose commit is pending, so concurrent sends cannot overfill."""
        self._reserved += n

    def release(self, n: int = 1) -> None:
        """Give back reserved room (the commit finished or failed)."""
        self._reserved = max(0, self._reserved - n)

    def knows(self, message_id: str) -> bool:
        """True if the id is held or was recently acknowledged or expired here."""
        return message_id in self._messages or message_id in self._recent

    def get(self, message_id: str) -> StoredMessage | None:
        """The held message with this id, if any."""
        return self._messages.get(message_id)

    # ---------------------------------------------------------------- changes

    def add(self, msg: StoredMessage) -> bool:
        """Accept a committed message, ready for delivery; False (and no change) if its id is known."""
        if self.knows(msg.id):
            return False
        self._messages[msg.id] = msg
        self.bytes += msg.size
        self._usage.bytes += msg.size
        self.stats.sent += 1
        self.stats.bytes += msg.size
        msg.lease_until = 0.0
        self._ready.push(msg.priority, msg.seq, msg.id)
        self._earliest_expiry = min(self._earliest_expiry, msg.expires_at)
        return True

    def add_many(self, msgs: list[StoredMessage]) -> int:
        """`add` for a committed batch (one loop, not one call per message); how many were new."""
        messages, recent, ready, stats = self._messages, self._recent, self._ready, self.stats
        added = size = 0
        earliest = self._earliest_expiry
        # The lane of the last message's priority (a batch shares one), and the seq at its FIFO's
        # tail: a copy numbered after it is appended here (`_Lane.push` inlined), others go
        # through `push`.
        priority: int | None = None
        lane = _Lane()
        append = lane.fifo.append
        tail: float = -math.inf
        for msg in msgs:
            message_id = msg.id
            if message_id in messages or message_id in recent:
                continue
            messages[message_id] = msg
            size += len(msg.data)
            added += 1
            msg.lease_until = 0.0
            if msg.priority != priority:
                priority = msg.priority
                lane = ready.lane(priority)
                append = lane.fifo.append
                tail = lane.fifo[-1][0] if lane.fifo else -math.inf
            seq = msg.seq
            if seq > tail:
                append((seq, message_id))
                tail = seq
            else:
                lane.push(seq, message_id)
                tail = lane.fifo[-1][0] if lane.fifo else -math.inf
            if msg.expires_at < earliest:
                earliest = msg.expires_at
        self._earliest_expiry = earliest
        self.bytes += size
        self._usage.bytes += size
        stats.sent += added
        stats.bytes += size
        return added

    def take(self, now: float, limit: int, lease_seconds: float) -> Taken:
        """Lease up to `limit` ready messages in (priority, seq) order for `lease_seconds`."""
        taken = Taken(dropped=self.requeue_expired(now))
        out = taken.messages
        messages = self._messages
        lease_until = now + lease_seconds
        redelivered = 0
        room = limit  # limit - len(out), kept as a count: one step less per message
        for lane in self._ready.order:
            fifo, late = lane.fifo, lane.late
            popleft = fifo.popleft
            while room > 0:
                if late:
                    entry = lane.pop()
                    if entry is None:
                        break
                    seq, message_id = entry
                elif fifo:
                    seq, message_id = popleft()
                else:
                    break
                msg = messages.get(message_id)
                if msg is None or msg.seq != seq or msg.lease_until:
                    continue  # stale entry
                if msg.expires_at <= now:
                    self._drop(msg, expired=True)
                    taken.dropped.append(msg)
                    continue
                count = msg.delivery_count = msg.delivery_count + 1
                msg.lease_until = lease_until
                if count > 1:
                    redelivered += 1
                out.append(msg)
                room -= 1
            if room <= 0:
                break
        if out:
            # One lease entry and the counters once per take, not per message.
            leased = [msg.id for msg in out]
            heapq.heappush(self._leases, (lease_until, out[0].seq, leased))
            self._lease_ids += len(leased)
            self._in_flight += len(out)
            stats = self.stats
            stats.delivered += len(out) - redelivered
            stats.redelivered += redelivered
            stats.batches += 1
            self.last_active = now
        return taken

    def requeue_expired(self, now: float) -> list[StoredMessage]:
        """Put messages whose lease ran out back in line; returns those whose TTL passed meanwhile."""
        dropped: list[StoredMessage] = []
        leases, messages = self._leases, self._messages
        while leases and leases[0][0] <= now:
            lease_until, _, leased = heapq.heappop(leases)
            self._lease_ids -= len(leased)
            for message_id in leased:
                msg = messages.get(message_id)
                if msg is None or msg.lease_until != lease_until:
                    continue  # acknowledged, or leased again since
                msg.lease_until = 0.0
                self._in_flight -= 1
                self.stats.delivery_errors += 1
                if msg.expires_at <= now:
                    self._drop(msg, expired=True)
                    dropped.append(msg)
                else:
                    self._ready.push(msg.priority, msg.seq, message_id)
        return dropped

    def unlease(self, ids: list[str]) -> int:
        """Put in-flight messages among `ids` back in line now (their receiver gave them back
        unread); they keep their place and count as redelivered when taken again."""
        returned = 0
        for message_id in ids:
            msg = self._messages.get(message_id)
            if msg is None or not msg.lease_until:
                continue
            msg.lease_until = 0.0  # the lease heap entry goes stale
            self._in_flight -= 1
            self._ready.push(msg.priority, msg.seq, message_id)
            returned += 1
        return returned

    def ack(self, ids: list[str], now: float) -> list[StoredMessage]:
        """Remove the held messages among `ids` (leased or not); returns those removed."""
        # `_drop` inlined: acks come by the thousand, and this is their per-message cost.
        removed: list[StoredMessage] = []
        messages = self._messages
        size = in_flight = 0
        for message_id in ids:
            msg = messages.pop(message_id, None)
            if msg is None:
                continue
            size += len(msg.data)
            if msg.lease_until:
                in_flight += 1
                msg.lease_until = 0.0
            removed.append(msg)
        if removed:
            if self.dedupe_window:
                self._remember([msg.id for msg in removed])
            self.bytes -= size
            self._usage.bytes -= size
            self._in_flight -= in_flight
            self.last_active = now
            self._compact()
        return removed

    def expire(self, now: float) -> list[StoredMessage]:
        """Drop ready messages past their TTL (in-flight ones go when their lease ends)."""
        if self._earliest_expiry > now:
            return []
        dropped = [m for m in self._messages.values() if m.expires_at <= now and not m.lease_until]
        for msg in dropped:
            self._drop(msg, expired=True)
        self._earliest_expiry = min((m.expires_at for m in self._messages.values()), default=math.inf)
        if dropped:
            self._compact()
        return dropped

    def next_lease_deadline(self) -> float | None:
        """When the earliest lease runs out (possibly a stale entry: waking early is harmless)."""
        return self._leases[0][0] if self._leases else None

    def drain(self) -> list[StoredMessage]:
        """Remove everything (the mailbox is being deleted); returns what it held."""
        held = list(self._messages.values())
        self._messages.clear()
        self._ready.clear()
        self._leases.clear()
        self._lease_ids = 0
        self._in_flight = 0
        self._usage.bytes -= self.bytes
        self.bytes = 0
        self._earliest_expiry = math.inf
        return held

    # ---------------------------------------------------------------- helpers

    def _drop(self, msg: StoredMessage, *, expired: bool) -> None:
        del self._messages[msg.id]
        self.bytes -= msg.size
        self._usage.bytes -= msg.size
        if msg.lease_until:
            self._in_flight -= 1
            msg.lease_until = 0.0
        if expired:
            self.stats.expired += 1
        if self.dedupe_window:
            self._recent[msg.id] = None
            if len(self._recent) > self.dedupe_window:
                self._recent.popitem(last=False)

    def _remember(self, ids: list[str]) -> None:
        """Add removed ids (none of them known yet) to the recent ones, keeping the newest
        `dedupe_window`. A batch at least that long replaces them all at once."""
        window = self.dedupe_window
        if len(ids) >= window:
            self._recent = OrderedDict.fromkeys(ids[len(ids) - window :])
            return
        recent = self._recent
        for message_id in ids:
            recent[message_id] = None
        while len(recent) > window:
            recent.popitem(last=False)

    def _compact(self) -> None:
        # Lazy deletion leaves stale lease ids; rebuild once they dominate, from the heap itself
        # (O(leases), not O(mailbox): a deep mailbox with few in flight stays cheap).
        if self._lease_ids > 64 and self._lease_ids > 2 * self._in_flight:
            if self._in_flight:
                self._leases, self._lease_ids = _live_leases(self._leases, self._messages)
            else:
                self._leases.clear()
                self._lease_ids = 0
        queued = self.queued
        if len(self._ready) > 64 and len(self._ready) > 2 * queued:
            self._ready.rebuild([(m.priority, m.seq, m.id) for m in self._messages.values() if not m.lease_until])


def _live_leases(
    leases: list[tuple[float, int, list[str]]], messages: dict[str, StoredMessage]
) -> tuple[list[tuple[float, int, list[str]]], int]:
    """The lease heap without its stale ids (acknowledged, given back or leased again since),
    and how many ids it keeps."""
    live: list[tuple[float, int, list[str]]] = []
    count = 0
    held = messages.keys()
    for lease_until, first, leased in leases:
        if held.isdisjoint(leased):
            continue  # every message of that take acknowledged (the usual case), checked in C
        kept = [i for i in leased if (m := messages.get(i)) is not None and m.lease_until == lease_until]
        if kept:
            live.append((lease_until, first, kept))
            count += len(kept)
    heapq.heapify(live)
    return live, count

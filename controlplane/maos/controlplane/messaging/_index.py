"""Every mailbox and topic subscription, the global byte bound and per-topic counters. No I/O.

The service holds one `MessageIndex`: it is rebuilt from the store at
start-up, changed only after the store committed, and read for delivery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from maos.errors import ResourceExhausted

from ._mailbox import Mailbox, MailboxStats, StoredMessage, Usage
from ._names import TOPIC_PREFIX, parse_mailbox


@dataclass(slots=True)
class TopicStats:
    """Counters of one topic (its subscriptions keep their own)."""

    published: int = 0
    bytes: int = 0
    rejected_full: int = 0


@dataclass(frozen=True, slots=True)
class StatsRow:
    """One line of the statistics: a mailbox, or a topic summed over its subscriptions."""

    name: str
    queued: int
    in_flight: int
    stats: MailboxStats = field(default_factory=MailboxStats)


class MessageIndex:
    """Mailboxes by name and topic subscriptions by topic."""

    def __init__(self, *, max_queued: int, max_total_bytes: int, dedupe_window: int) -> None:
        self.max_queued = max_queued
        self.max_total_bytes = max_total_bytes
        self.dedupe_window = dedupe_window
        self.usage = Usage()
        self.mailboxes: dict[str, Mailbox] = {}
        self._topics: dict[str, set[str]] = {}
        self._topic_stats: dict[str, TopicStats] = {}

    # ------------------------------------------------------------- mailboxes

    def get(self, name: str) -> Mailbox | None:
        """The mailbox of that name, if it exists."""
        return self.mailboxes.get(name)

    def mailbox(self, name: str, now: float) -> Mailbox:
        """The mailbox of that name, created empty if needed."""
        box = self.mailboxes.get(name)
        if box is None:
            box = self.mailboxes[name] = Mailbox(name, self.max_queued, self.dedupe_window, now, self.usage)
        return box

    def remove(self, name: str) -> list[StoredMessage]:
        """Delete a mailbox (and its subscription, for a topic); returns what it held."""
        box = self.mailboxes.pop(name, None)
        if name.startswith(TOPIC_PREFIX):
            topic = parse_mailbox(name).topic
            subs = self._topics.get(topic)
            if subs is not None:
                subs.discard(name)
                if not subs:
                    del self._topics[topic]
                    self._topic_stats.pop(topic, None)
        return box.drain() if box is not None else []

    # ---------------------------------------------------------------- topics

    def is_subscribed(self, topic: str, name: str) -> bool:
        """True if the mailbox `name` is a subscription of `topic`."""
        return name in self._topics.get(topic, ())

    def subscribe(self, topic: str, name: str, now: float) -> Mailbox:
        """Make `name` ("topic:<topic>/<subscriber>") a subscription of `topic`."""
        self._topics.setdefault(topic, set()).add(name)
        self._topic_stats.setdefault(topic, TopicStats())
        return self.mailbox(name, now)

    def subscriptions(self, topic: str) -> list[str]:
        """The subscription mailboxes of a topic, sorted (so copies get seqs in a stable order)."""
        return sorted(self._topics.get(topic, ()))

    def topic_stats(self, topic: str) -> TopicStats | None:
        """The counters of a topic that has subscriptions."""
        return self._topic_stats.get(topic)

    # ----------------------------------------------------------------- bounds

    def check_room(self, names: list[str], payload_bytes: int, pending_bytes: int = 0) -> None:
        """ResourceExhausted naming the first full mailbox (counted there), or the global byte bound
        (`pending_bytes`: accepted copies whose commit is still under way)."""
        for name in names:
            box = self.mailboxes.get(name)
            if box is not None and not box.has_room():
                box.stats.rejected_full += 1
                raise ResourceExhausted(
                    f"mailbox {name} is full: {box.depth} messages waiting (limit {box.max_queued}); "
                    "its reader is not keeping up — retry later"
                )
        held = self.usage.bytes + pending_bytes
        if held + payload_bytes * len(names) > self.max_total_bytes:
            raise ResourceExhausted(
                f"the control plane holds {held} bytes of undelivered messages; accepting "
                f"{payload_bytes * len(names)} more would pass its limit of {self.max_total_bytes} — retry later"
            )

    def check_room_many(self, counts: Mapping[str, int], total_bytes: int, pending_bytes: int = 0) -> None:
        """`check_room` for a batch: `counts` copies per mailbox, `total_bytes` of payload in all.
        ResourceExhausted naming the first mailbox without room for its share (counted there)."""
        for name, n in counts.items():
            box = self.mailboxes.get(name)
            depth = box.depth if box is not None else 0
            if depth + n > self.max_queued:
                if box is not None:
                    box.stats.rejected_full += 1
                raise ResourceExhausted(
                    f"mailbox {name} is full: {depth} messages waiting and the batch adds {n} "
                    f"(limit {self.max_queued}); its reader is not keeping up — retry later, or send less at once"
                )
        held = self.usage.bytes + pending_bytes
        if held + total_bytes > self.max_total_bytes:
            raise ResourceExhausted(
                f"the control plane holds {held} bytes of undelivered messages; accepting "
                f"{total_bytes} more would pass its limit of {self.max_total_bytes} — retry later"
            )

    # ------------------------------------------------------------ statistics

    def stats(self) -> list[StatsRow]:
        """A "topic:<name>" row per topic summing its subscriptions, then a row per mailbox."""
        rows: list[StatsRow] = []
        sums: dict[str, StatsRow] = {}
        for topic, counters in self._topic_stats.items():
            sums[topic] = StatsRow(
                TOPIC_PREFIX + topic,
                0,
                0,
                MailboxStats(sent=counters.published, bytes=counters.bytes, rejected_full=counters.rejected_full),
            )
        for name in sorted(self.mailboxes):
            box = self.mailboxes[name]
            rows.append(StatsRow(name, box.queued, box.in_flight, replace(box.stats)))
            if name.startswith(TOPIC_PREFIX):
                topic = parse_mailbox(name).topic
                total = sums.get(topic)
                if total is not None:
                    sums[topic] = _add(total, box)
        return [*(sums[t] for t in sorted(sums)), *rows]


def _add(total: StatsRow, box: Mailbox) -> StatsRow:
    s, b = total.stats, box.stats
    return StatsRow(
        total.name,
        total.queued + box.queued,
        total.in_flight + box.in_flight,
        MailboxStats(
            sent=s.sent,
            bytes=s.bytes,
            delivered=s.delivered + b.delivered,
            redelivered=s.redelivered + b.redelivered,
            batches=s.batches + b.batches,
            expired=s.expired + b.expired,
            rejected_full=s.rejected_full,
            delivery_errors=s.delivery_errors + b.delivery_errors,
        ),
    )

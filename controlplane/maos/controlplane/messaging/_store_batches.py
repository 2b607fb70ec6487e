"""The message store's rows: one per inserted batch, and the bookkeeping that deletes from them.

Each `MessageStore.insert` call (a send's copies) becomes ONE row of
`message_batches` keyed by its first seq, its messages packed in `body`. Deleting
some messages of a batch records their seqs as ranges in `message_gone`; deleting
the last live one deletes the row and its ranges. Per message this costs a share
of one row instead of an 11-column row plus a unique index entry, and a whole
batch acknowledged is one DELETE.

`BatchIndex` maps seqs to their batch in memory. Only the writer thread uses it,
inside its transactions, so it always mirrors what the database holds; batches'
seq ranges never overlap, so a sorted list of first seqs and bisect find the
batch of any seq, and a batch deleted whole costs O(log batches).
"""

from __future__ import annotations

import io
import operator
import pickle
import sqlite3
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ._mailbox import STORED_FIELDS, StoredMessage

COLUMNS = STORED_FIELDS
_ROW = operator.attrgetter(*COLUMNS)
_SEQ = operator.attrgetter("seq")

TABLES = (
    # first_seq..last_seq spans every seq of the batch (ranges of batches never overlap);
    # count: how many messages body holds (count == last_seq - first_seq + 1: every seq between).
    """CREATE TABLE IF NOT EXISTS message_batches (
        first_seq INTEGER PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        count INTEGER NOT NULL,
        body BLOB NOT NULL
    )""",
    # Deleted seqs lo..hi of a batch that still holds live messages.
    """CREATE TABLE IF NOT EXISTS message_gone (
        first_seq INTEGER NOT NULL,
        lo INTEGER NOT NULL,
        hi INTEGER NOT NULL,
        PRIMARY KEY (first_seq, lo)
    ) WITHOUT ROWID""",
    # The highest seq ever stored (one row): deleting the newest batch must not let seqs be reused.
    "CREATE TABLE IF NOT EXISTS message_seq (max_seq INTEGER NOT NULL)",
)
_INSERT_BATCH = "INSERT INTO message_batches (first_seq, last_seq, count, body) VALUES (?, ?, ?, ?)"
_DELETE_BATCH = "DELETE FROM message_batches WHERE first_seq = ?"
_INSERT_GONE = "INSERT INTO message_gone (first_seq, lo, hi) VALUES (?, ?, ?)"
_DELETE_GONE = "DELETE FROM message_gone WHERE first_seq = ?"
_SELECT_BODY = "SELECT body FROM message_batches WHERE first_seq = ?"
_RAISE_MAX_SEQ = "UPDATE message_seq SET max_seq = ? WHERE max_seq < ?"

MAX_PER_ROW = 10_000  # a send batch holds at most as many; only a restored checkpoint is split

# Pickle (protocol 5) of a list of plain tuples: its format is stable across Python versions
# (marshal's is not promised to be), and `_PlainUnpickler` refuses every class, so a body can
# only ever load as str/int/float/bytes/tuple/list.
_PROTOCOL = 5


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str, /) -> Any:
        raise pickle.UnpicklingError(f"a message batch may hold plain values only, not {module}.{name}")


class _NotPlainError(TypeError):
    pass


class _PlainPickler(pickle.Pickler):
    # Called only for values that are not plain (exact str, int, float, bytes, tuple, list...):
    # such a value would be pickled by class reference, which _PlainUnpickler refuses.
    def reducer_override(self, obj: Any) -> Any:
        raise _NotPlainError(type(obj).__name__)


def pack(messages: Iterable[StoredMessage]) -> bytes:
    """A batch row's body: the messages' stored fields as tuples of plain values."""
    rows = list(map(_ROW, messages))
    buf = io.BytesIO()
    try:
        _PlainPickler(buf, protocol=_PROTOCOL).dump(rows)
    except _NotPlainError:
        # A subclass (an IntEnum priority, a str subclass) or bytearray/memoryview data, as
        # SQLite's columns took them: stored as the plain value. Not on the service's path.
        buf = io.BytesIO()
        _PlainPickler(buf, protocol=_PROTOCOL).dump([_plain(row) for row in rows])
    return buf.getvalue()


def _plain(row: tuple[Any, ...]) -> tuple[Any, ...]:
    seq, mailbox, message_id, sender, recipient, topic, priority, data, content_type, sent_at, expires_at = row
    return (
        int(seq),
        str(mailbox),
        str(message_id),
        str(sender),
        str(recipient),
        str(topic),
        int(priority),
        bytes(data),
        str(content_type),
        float(sent_at),
        float(expires_at),
    )


def unpack(body: bytes) -> list[StoredMessage]:
    """The messages a batch row's body holds (all of them, deleted ones too)."""
    rows = _PlainUnpickler(io.BytesIO(body)).load()
    if not isinstance(rows, list) or not all(isinstance(r, tuple) and len(r) == len(COLUMNS) for r in rows):
        raise ValueError("a message batch's body is not a list of message rows")
    return [StoredMessage(*r) for r in rows]


@dataclass(slots=True)
class _Batch:
    """One batch row as the index sees it."""

    first: int
    last: int
    live: int
    # None when the batch holds every seq first..last (the usual case: a send numbers its
    # copies together); otherwise the seqs it holds that are not deleted.
    members: set[int] | None = None
    gone: set[int] | None = None  # deleted seqs, when members is None

    def take(self, seqs: list[int]) -> list[int]:
        """Mark these seqs (sorted, within first..last) deleted; return those that were live."""
        if self.members is not None:
            taken = [s for s in seqs if s in self.members]
            self.members.difference_update(taken)
        else:
            if self.gone is None:
                self.gone = set()
            gone = self.gone
            taken = [s for s in seqs if s not in gone]
            gone.update(taken)
        self.live -= len(taken)
        return taken


class BatchIndex:
    """Where each stored seq lives, and the SQL that inserts and deletes batches (writer thread only)."""

    def __init__(self, max_seq: int = 0) -> None:
        self._firsts: list[int] = []  # sorted
        self._batches: dict[int, _Batch] = {}
        self.max_seq = max_seq  # the highest seq ever stored
        self._saved_max_seq = max_seq  # ... as message_seq holds it

    def save_max_seq(self, conn: sqlite3.Connection) -> None:
        """Persist max_seq if it grew: once per transaction rather than once per batch."""
        if self.max_seq > self._saved_max_seq:
            conn.execute(_RAISE_MAX_SEQ, (self.max_seq, self.max_seq))
            self._saved_max_seq = self.max_seq

    def load(self, first: int, last: int, count: int, live: list[int], gone: set[int]) -> None:
        """Register a batch read from the database: `live`, its seqs not deleted."""
        dense = count == last - first + 1
        batch = _Batch(first, last, len(live), None if dense else set(live), (gone or None) if dense else None)
        self._add(batch)
        self.max_seq = max(self.max_seq, last)

    # ----------------------------------------------------------------- inserts

    def insert(self, conn: sqlite3.Connection, messages: Sequence[StoredMessage]) -> None:
        """Store one batch as one row. A seq already stored and live is left as it is, like
        INSERT OR IGNORE per message (a checkpoint restored over messages still there)."""
        if len(messages) > MAX_PER_ROW:  # a whole checkpoint restored: rows of a sane size
            ordered = sorted(messages, key=_SEQ)
            for start in range(0, len(ordered), MAX_PER_ROW):
                self.insert(conn, ordered[start : start + MAX_PER_ROW])
            return
        if not messages:
            return
        seqs = list(map(_SEQ, messages))
        lo, hi, n = min(seqs), max(seqs), len(seqs)
        distinct = set(seqs)
        if len(distinct) != n or self._overlaps(lo, hi):
            self._merge(conn, messages)
        else:
            self._write(conn, messages, lo, hi, n, None if hi - lo + 1 == n else distinct)

    def _overlaps(self, lo: int, hi: int) -> bool:
        # Ranges are disjoint and sorted: only the last batch starting at or before hi can reach lo.
        k = bisect_right(self._firsts, hi) - 1
        return k >= 0 and self._batches[self._firsts[k]].last >= lo

    def _write(
        self,
        conn: sqlite3.Connection,
        messages: Iterable[StoredMessage],
        lo: int,
        hi: int,
        n: int,
        members: set[int] | None,
    ) -> None:
        conn.execute(_INSERT_BATCH, (lo, hi, n, pack(messages)))
        self.max_seq = max(self.max_seq, hi)
        self._add(_Batch(lo, hi, n, members))

    def _merge(self, conn: sqlite3.Connection, messages: Sequence[StoredMessage]) -> None:
        """The rare insert that overlaps stored batches (or repeats a seq): rewrite those
        batches' live messages and the new ones (each seq once, the stored one first) as one row."""
        lo = min(map(_SEQ, messages))
        hi = max(map(_SEQ, messages))
        i = bisect_right(self._firsts, lo) - 1
        if i < 0 or self._batches[self._firsts[i]].last < lo:
            i += 1
        j = bisect_right(self._firsts, hi)
        union: dict[int, StoredMessage] = {}
        for first in self._firsts[i:j]:
            batch = self._batches[first]
            (body,) = conn.execute(_SELECT_BODY, (first,)).fetchone()
            for msg in unpack(body):
                if _holds(batch, msg.seq):
                    union[msg.seq] = msg
            self._remove(conn, batch)
        for msg in messages:
            union.setdefault(msg.seq, msg)
        ordered = sorted(union)
        first, last, n = ordered[0], ordered[-1], len(ordered)
        self._write(conn, (union[s] for s in ordered), first, last, n, None if last - first + 1 == n else set(ordered))

    # ----------------------------------------------------------------- deletes

    def delete(self, conn: sqlite3.Connection, seqs: Iterable[int]) -> None:
        """Delete these seqs (unknown or already deleted ones are skipped): a batch left
        without live messages loses its row, others record the deleted seqs as ranges."""
        ordered = sorted(set(seqs))
        firsts = self._firsts
        i, n = 0, len(ordered)
        while i < n and firsts:
            k = bisect_right(firsts, ordered[i]) - 1
            if k < 0:  # below every batch
                i = bisect_left(ordered, firsts[0], i)
                continue
            batch = self._batches[firsts[k]]
            if ordered[i] > batch.last:  # between two batches
                i = bisect_left(ordered, firsts[k + 1], i) if k + 1 < len(firsts) else n
                continue
            j = bisect_right(ordered, batch.last, i)
            self._drop(conn, batch, ordered[i:j])
            i = j

    def _drop(self, conn: sqlite3.Connection, batch: _Batch, seqs: list[int]) -> None:
        if batch.members is None and batch.gone is None and len(seqs) == batch.live:
            batch.live = 0  # the common case: every message of an untouched batch
        else:
            seqs = batch.take(seqs)
            if not seqs:
                return
        if batch.live == 0:
            self._remove(conn, batch)
        else:
            conn.executemany(_INSERT_GONE, [(batch.first, lo, hi) for lo, hi in runs(seqs)])

    # --------------------------------------------------------------- internals

    def _add(self, batch: _Batch) -> None:
        if not self._firsts or batch.first > self._firsts[-1]:
            self._firsts.append(batch.first)
        else:
            insort(self._firsts, batch.first)
        self._batches[batch.first] = batch

    def _remove(self, conn: sqlite3.Connection, batch: _Batch) -> None:
        conn.execute(_DELETE_BATCH, (batch.first,))
        if batch.gone or batch.members is not None:
            conn.execute(_DELETE_GONE, (batch.first,))
        del self._firsts[bisect_left(self._firsts, batch.first)]
        del self._batches[batch.first]


def _holds(batch: _Batch, seq: int) -> bool:
    """Whether seq is a live message of batch."""
    if batch.members is not None:
        return seq in batch.members
    return batch.first <= seq <= batch.last and not (batch.gone and seq in batch.gone)


def runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct seqs as (lo, hi) runs of consecutive ones."""
    out: list[tuple[int, int]] = []
    start = prev = seqs[0]
    for seq in seqs[1:]:
        if seq != prev + 1:
            out.append((start, prev))
            start = seq
        prev = seq
    out.append((start, prev))
    return out


# -------------------------------------------------------------------- loading


def create_tables(conn: sqlite3.Connection) -> None:
    """The batch tables and the max_seq row, if missing (inside the caller's transaction)."""
    for statement in TABLES:
        conn.execute(statement)
    conn.execute("INSERT INTO message_seq (max_seq) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM message_seq)")


@dataclass(slots=True)
class Scan:
    """What the batch tables hold."""

    messages: list[StoredMessage]  # live ones, in seq order
    index: BatchIndex
    stale: list[int]  # first seqs of rows (or gone ranges) with no live message left: none should be


def scan(conn: sqlite3.Connection) -> Scan:
    """Read every batch (in one snapshot if the caller opened a transaction)."""
    gone: dict[int, set[int]] = {}
    for first, lo, hi in conn.execute("SELECT first_seq, lo, hi FROM message_gone"):
        gone.setdefault(first, set()).update(range(lo, hi + 1))
    row = conn.execute("SELECT max_seq FROM message_seq").fetchone()
    index = BatchIndex(int(row[0]) if row else 0)
    messages: list[StoredMessage] = []
    stale: list[int] = []
    for first, last, count, body in conn.execute(
        "SELECT first_seq, last_seq, count, body FROM message_batches ORDER BY first_seq"
    ):
        deleted = gone.pop(first, set())
        live = [m for m in unpack(body) if m.seq not in deleted]
        if not live:
            stale.append(first)
            continue
        index.load(first, last, count, [m.seq for m in live], deleted)
        messages.extend(live)
    stale.extend(gone)  # gone ranges of a batch no longer stored
    messages.sort(key=_SEQ)  # already sorted but after a merge of out-of-order seqs: linear then
    return Scan(messages, index, stale)


def drop_stale(conn: sqlite3.Connection, stale: list[int]) -> None:
    """Delete what `scan` found stale (inside a write transaction)."""
    conn.executemany(_DELETE_BATCH, [(first,) for first in stale])
    conn.executemany(_DELETE_GONE, [(first,) for first in stale])


def migrate_v1(conn: sqlite3.Connection, *, per_row: int = 1000) -> int:
    """Turn schema 1's per-message `messages` table into batch rows (runs of consecutive seqs,
    at most per_row each) and drop it; inside the caller's transaction. Returns how many
    messages moved."""
    columns = ", ".join(COLUMNS)
    rows = [StoredMessage(*r) for r in conn.execute(f"SELECT {columns} FROM messages ORDER BY seq")]
    for msg in rows:
        msg.data = bytes(msg.data)
    index = BatchIndex()
    start = 0
    for i in range(1, len(rows) + 1):
        if i < len(rows) and rows[i].seq == rows[i - 1].seq + 1 and i - start < per_row:
            continue
        index.insert(conn, rows[start:i])
        start = i
    index.save_max_seq(conn)
    conn.execute("DROP TABLE messages")  # drops its (mailbox, id) index too
    return len(rows)


def count_live(conn: sqlite3.Connection) -> int:
    """How many messages the tables hold, not counting deleted ones (tests and tools)."""
    (stored,) = conn.execute("SELECT COALESCE(SUM(count), 0) FROM message_batches").fetchone()
    (deleted,) = conn.execute("SELECT COALESCE(SUM(hi - lo + 1), 0) FROM message_gone").fetchone()
    return int(stored) - int(deleted)

"""The SQLite message store keeps one row per inserted batch: what survives a reopen is exactly
what was committed and not deleted, whatever part of a batch was acknowledged."""

from __future__ import annotations

import asyncio
import pickle
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

import pytest
from maos.controlplane.messaging import MessageStore, StoredMessage
from maos.controlplane.messaging._store import SCHEMA_VERSION
from maos.controlplane.messaging._store_batches import COLUMNS, count_live, unpack
from maos.errors import Unavailable

from tests.support.messaging import stored_message

NOW = time.time()


def msg(seq: int, mailbox: str = "task:B", message_id: str = "") -> StoredMessage:
    return stored_message(
        seq,
        mailbox=mailbox,
        id=message_id or f"m{seq}",
        recipient=mailbox,
        priority=seq % 4,
        sent_at=NOW + seq,
        expires_at=NOW + 3600,
    )


def batch(seqs: Iterable[int]) -> list[StoredMessage]:
    return [msg(s) for s in seqs]


def _row(m: StoredMessage) -> tuple[object, ...]:
    """The stored fields (StoredMessage compares by identity)."""
    return tuple(getattr(m, column) for column in COLUMNS)


def rows(messages: Iterable[StoredMessage]) -> list[tuple[object, ...]]:
    return [_row(m) for m in messages]


def tables(path: Path) -> tuple[list[int], list[tuple[int, ...]], int]:
    """(first seqs of the batch rows, gone ranges, live messages) as the file holds them."""
    with closing(sqlite3.connect(path)) as conn:
        firsts = [r[0] for r in conn.execute("SELECT first_seq FROM message_batches ORDER BY first_seq")]
        gone = [tuple(r) for r in conn.execute("SELECT first_seq, lo, hi FROM message_gone ORDER BY first_seq, lo")]
        return firsts, gone, count_live(conn)


async def reopened(path: Path) -> tuple[list[StoredMessage], int]:
    store = MessageStore(path)
    loaded = await store.open()
    await store.close()
    return loaded.messages, loaded.max_seq


async def test_partial_acks_of_a_batch_survive_a_restart_and_a_fully_acked_batch_loses_its_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "maos.db"
    store = MessageStore(path)
    await store.open()
    await store.insert(batch(range(1, 11)))
    await store.insert(batch(range(11, 21)))
    await store.insert(batch(range(21, 31)))
    await store.delete([2, 3, 5])  # part of the first batch
    await store.delete([11, 12, 13, 14])  # the second batch, in two acks
    await store.delete([20, 19, 18, 17, 16, 15])
    await store.delete([3, 999])  # already deleted, never stored: skipped
    await store.close()
    firsts, gone, live = tables(path)
    assert firsts == [1, 21] and gone == [(1, 2, 3), (1, 5, 5)] and live == 17

    messages, max_seq = await reopened(path)
    assert [m.seq for m in messages] == [1, 4, *range(6, 11), *range(21, 31)]
    assert _row(messages[1]) == _row(msg(4)) and max_seq == 30

    # The index rebuilt at open carries on: the rest of the first batch goes with its row and ranges.
    store = MessageStore(path)
    await store.open()
    await store.delete([1, 4, 6, 7, 8, 9, 10, 25])
    await store.close()
    assert tables(path) == ([21], [(21, 25, 25)], 9)
    messages, _ = await reopened(path)
    assert [m.seq for m in messages] == [*range(21, 25), *range(26, 31)]


async def test_max_seq_never_goes_backwards_after_deleting_the_newest_batch(tmp_path: Path) -> None:
    path = tmp_path / "maos.db"
    store = MessageStore(path)
    await store.open()
    await store.insert(batch(range(1, 11)))
    await store.insert(batch(range(11, 21)))
    await store.delete(list(range(11, 21)))
    await store.close()
    messages, max_seq = await reopened(path)
    assert rows(messages) == rows(batch(range(1, 11))) and max_seq == 20

    store = MessageStore(path)
    await store.open()
    await store.delete(list(range(1, 11)))
    await store.close()
    assert tables(path) == ([], [], 0)
    messages, max_seq = await reopened(path)
    assert messages == [] and max_seq == 20


async def test_an_insert_over_stored_seqs_keeps_the_live_ones_and_fills_the_deleted_ones(tmp_path: Path) -> None:
    # A checkpoint restored while deletes of its messages were failing: per message, a live
    # seq stays as stored (INSERT OR IGNORE), a deleted one is stored again.
    path = tmp_path / "maos.db"
    store = MessageStore(path)
    await store.open()
    await store.insert(batch(range(1, 11)))
    await store.insert(batch(range(20, 23)))
    await store.delete([3, 4, 5])
    replacement = msg(7, message_id="other")
    await store.insert([msg(21), msg(12), msg(4), replacement, msg(5), msg(5)])
    await store.delete([21, 22, 12])
    await store.close()
    messages, max_seq = await reopened(path)
    assert [m.seq for m in messages] == [1, 2, 4, 5, 6, 7, 8, 9, 10, 20]
    assert _row(messages[5]) == _row(msg(7)) and max_seq == 22


# Schema 1, as the control plane wrote it before batch rows.
_V1 = """
CREATE TABLE messaging_schema (version INTEGER NOT NULL);
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY, mailbox TEXT NOT NULL, id TEXT NOT NULL, sender TEXT NOT NULL,
    recipient TEXT NOT NULL, topic TEXT NOT NULL, priority INTEGER NOT NULL, data BLOB NOT NULL,
    content_type TEXT NOT NULL, sent_at REAL NOT NULL, expires_at REAL NOT NULL
);
CREATE UNIQUE INDEX messages_mailbox_id ON messages (mailbox, id);
CREATE TABLE message_subscriptions (mailbox TEXT PRIMARY KEY, topic TEXT NOT NULL, created_at REAL NOT NULL);
INSERT INTO messaging_schema (version) VALUES (1);
"""


async def test_a_schema_1_file_is_converted_at_open(tmp_path: Path) -> None:
    path = tmp_path / "maos.db"
    old = [*batch(range(1, 6)), msg(8, "topic:t/s"), msg(9), *batch(range(20, 2520))]
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(_V1)
        conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", map(_row, old))
        conn.execute("INSERT INTO message_subscriptions VALUES ('topic:t/s', 't', 1.0)")
        conn.commit()

    store = MessageStore(path)
    loaded = await store.open()
    assert rows(loaded.messages) == rows(old) and loaded.max_seq == 2519
    assert loaded.subscriptions == [("topic:t/s", "t")]
    await store.delete([8, *range(20, 1020)])
    await store.insert(batch(range(2520, 2530)))
    await store.close()

    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version FROM messaging_schema").fetchall() == [(SCHEMA_VERSION,)]
        assert not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name IN ('messages', 'messages_mailbox_id')"
        ).fetchall()
        # Runs of consecutive seqs became rows of at most 1000; the whole ones acked are gone.
        firsts = [r[0] for r in conn.execute("SELECT first_seq FROM message_batches ORDER BY first_seq")]
    assert firsts == [1, 8, 1020, 2020, 2520]  # 8 itself is gone, 9 lives
    messages, max_seq = await reopened(path)
    assert rows(messages) == rows([*old[:5], msg(9), *batch(range(1020, 2530))]) and max_seq == 2529


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "maos.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE messaging_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO messaging_schema VALUES (?)", (SCHEMA_VERSION + 1,))
        conn.commit()
    with pytest.raises(Unavailable, match="newer than this control plane"):
        await MessageStore(path).open()


def test_a_batch_body_loads_plain_values_only() -> None:
    assert rows(unpack(pickle.dumps([_row(msg(1))], protocol=5))) == [_row(msg(1))]
    with pytest.raises(pickle.UnpicklingError, match="plain values only"):
        unpack(pickle.dumps([msg(1)], protocol=5))
    with pytest.raises(pickle.UnpicklingError, match="plain values only"):
        unpack(pickle.dumps([(1, print)], protocol=5))


async def test_a_failed_commit_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "maos.db"
    store = MessageStore(path)
    await store.open()
    await store.insert(batch(range(1, 11)))
    await store.delete([1, 2])
    bad = msg(11)
    bad.data = object()  # type: ignore[assignment]  # cannot be stored: the whole transaction fails
    deleted, inserted = await asyncio.gather(store.delete([3, 4]), store.insert([bad, msg(12)]), return_exceptions=True)
    assert isinstance(inserted, Unavailable) and "could not commit" in str(inserted)
    # The delete committed before, or shared the failed transaction and was undone with it.
    kept = [4] if isinstance(deleted, Unavailable) else []
    await store.delete([3, 10])  # the next transaction starts from what the database holds
    await store.insert(batch(range(13, 15)))
    await store.close()
    messages, max_seq = await reopened(path)
    assert [m.seq for m in messages] == [*kept, *range(5, 10), 13, 14] and max_seq == 14


async def test_a_restored_checkpoint_is_stored_in_rows_of_bounded_size(tmp_path: Path) -> None:
    path = tmp_path / "maos.db"
    store = MessageStore(path)
    await store.open()
    await store.insert(batch(range(25_000, 0, -1)))  # in any order
    await store.delete(list(range(9_990, 10_011)))
    await store.close()
    assert tables(path) == ([1, 10_001, 20_001], [(1, 9_990, 10_000), (10_001, 10_001, 10_010)], 24_979)
    messages, max_seq = await reopened(path)
    assert [m.seq for m in messages] == [*range(1, 9_990), *range(10_011, 25_001)] and max_seq == 25_000

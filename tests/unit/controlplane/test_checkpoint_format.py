"""The checkpoint format without I/O: sections, manifests, records, the restore's re-queueing."""

from __future__ import annotations

from dataclasses import astuple

import orjson
import pytest
from maos.controlplane._settings import LiveSettings
from maos.controlplane.checkpoints import parse_size
from maos.controlplane.checkpoints._apply import Decoded, decode_all, requeue_placed
from maos.controlplane.checkpoints._format import (
    FORMAT_VERSION,
    Manifest,
    RowsWriter,
    check_id,
    decode_section,
    encode_section,
    new_checkpoint_id,
    parse_manifest,
    rows_of,
)
from maos.controlplane.checkpoints._records import (
    ATTEMPT_COLUMNS,
    EVENT_COLUMNS,
    MESSAGE_COLUMNS,
    STATE_COLUMNS,
    TASK_COLUMNS,
    message_from_row,
    message_row,
    task_from_row,
    task_row,
)
from maos.controlplane.core import AttemptRecord, Orchestrator, Priority, TaskRecord, TaskStatus
from maos.controlplane.messaging import StoredMessage
from maos.controlplane.store import record_from_spec
from maos.errors import FailedPrecondition, InvalidArgument
from maos.v1 import common_pb2


def section(name: str = "tasks", rows: int = 50) -> tuple[bytes, int]:
    writer = RowsWriter(name, ("a", "b"))
    for start in range(0, rows, 20):
        writer.add([[i, f"row {i}"] for i in range(start, min(rows, start + 20))])
    return writer.finish(extra=1), writer.items


def test_rows_writer_builds_one_json_document_from_pages() -> None:
    raw, items = section(rows=50)
    doc = orjson.loads(raw)
    assert items == 50 and doc["section"] == "tasks" and doc["extra"] == 1
    assert rows_of(doc, ("a", "b"), "here")[49] == [49, "row 49"]
    assert rows_of(doc, ("b", "a"), "here")[49] == ("row 49", 49)  # values in the order asked for
    with pytest.raises(FailedPrecondition, match="lacks columns c"):
        rows_of(doc, ("a", "c"), "here")
    empty = orjson.loads(RowsWriter("events", ("x",)).finish())
    assert empty == {"section": "events", "columns": ["x"], "rows": []}


def test_a_section_survives_encoding_and_damage_is_named() -> None:
    raw, items = section()
    encoded = encode_section("tasks", raw, items)
    assert encoded.info.raw_bytes == len(raw) and encoded.info.compressed_bytes == len(encoded.data)
    assert decode_section("C1", encoded.info, encoded.data)["rows"][0] == [0, "row 0"]
    flipped = bytearray(encoded.data)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(FailedPrecondition, match="checkpoint C1, section tasks: the SHA-256 checksum does not match"):
        decode_section("C1", encoded.info, bytes(flipped))
    with pytest.raises(FailedPrecondition, match="truncated or damaged"):
        decode_section("C1", encoded.info, encoded.data[:-5])
    other = encode_section("events", raw, items)  # a section under another's name
    with pytest.raises(FailedPrecondition, match="the document is not that section"):
        decode_section("C1", other.info, other.data)


def manifest_bytes(**changes: object) -> bytes:
    raw, items = section()
    info = encode_section("tasks", raw, items).info
    doc = orjson.loads(Manifest("C1", 1700000000.0, "manual", "x", "src", 1.5, {"tasks": 50}, (info,)).to_json())
    doc.update(changes)
    return orjson.dumps(doc)


def test_manifests_are_checked_for_format_version_and_identity() -> None:
    manifest = parse_manifest("C1", manifest_bytes())
    assert manifest.format_version == FORMAT_VERSION and manifest.counts == {"tasks": 50}
    assert manifest.compression_ratio == manifest.raw_bytes / manifest.compressed_bytes
    with pytest.raises(FailedPrecondition, match=r"format version 2 \(written by MAOS 2\.0\); this control plane"):
        parse_manifest("C1", manifest_bytes(format_version=2, maos_version="2.0"))
    with pytest.raises(FailedPrecondition, match="no MAOS checkpoint manifest"):
        parse_manifest("C1", manifest_bytes(format="zip"))
    with pytest.raises(FailedPrecondition, match="names another checkpoint"):
        parse_manifest("C2", manifest_bytes())
    with pytest.raises(FailedPrecondition, match="corrupt manifest"):
        parse_manifest("C1", manifest_bytes(sections=[{"name": "tasks"}]))
    with pytest.raises(FailedPrecondition, match="corrupt manifest"):
        parse_manifest("C1", b"{")


def test_ids_sort_by_time_and_paths_are_refused() -> None:
    assert new_checkpoint_id(1_700_000_000.0) < new_checkpoint_id(1_700_000_001.0)
    assert check_id(new_checkpoint_id(1_700_000_000.0))
    for bad in ("../x", "", "a/b", ".hidden"):
        with pytest.raises(InvalidArgument):
            check_id(bad)


def test_sizes_parse_with_binary_units() -> None:
    assert parse_size("1048576", "x") == parse_size("1MiB", "x") == parse_size("1m", "x") == 1 << 20
    assert parse_size("16KiB", "x") == 16384 and parse_size("2G", "x") == 2 << 30
    with pytest.raises(InvalidArgument, match="--size '12 parsecs' is not a size"):
        parse_size("12 parsecs", "--size")


def record(task_id: str, status: TaskStatus, host: str = "", attempt: int = 0) -> TaskRecord:
    spec = common_pb2.TaskSpec(description="d", agent_type="echo", max_agents=2)
    rec = record_from_spec(task_id, spec, root_id=task_id, agent_type="echo", created_at=1.0)
    rec.status, rec.host_id, rec.attempt, rec.seq = status, host, attempt, 2
    return rec


def test_records_round_trip_through_rows_with_binary_bytes() -> None:
    rec = record("T1", TaskStatus.COMPLETED, "h1", 1)
    rec.result, rec.result_type, rec.priority = b"\xff\x00binary", "application/octet-stream", Priority.HIGH
    row = orjson.loads(orjson.dumps(task_row(rec)))
    assert task_from_row(row) == rec
    msg = StoredMessage(7, "task:T1", "m1", "", "T1", "", 3, b'{"a": 1}', "application/json", 1.0, 2.0)
    row = orjson.loads(orjson.dumps(message_row(msg)))
    assert row[MESSAGE_COLUMNS.index("data")] == '{"a": 1}'  # text stays readable in the checkpoint
    assert astuple(message_from_row(row)) == astuple(msg)
    binary = StoredMessage(8, "task:T1", "m2", "", "T1", "", 3, b"\x80\x81", "application/octet-stream", 1.0, 2.0)
    row = orjson.loads(orjson.dumps(message_row(binary)))
    assert astuple(message_from_row(row)) == astuple(binary)


def test_restore_requeues_work_placed_on_hosts_of_the_past() -> None:
    running = record("T1", TaskStatus.RUNNING, "old-host", 2)
    placed = record("T2", TaskStatus.QUEUED, "old-host", 1)
    waiting = record("T3", TaskStatus.QUEUED)
    done = record("T4", TaskStatus.COMPLETED, "old-host", 1)
    decoded = Decoded(tasks=[running, placed, waiting, done])
    decoded.attempts["T1"] = [
        AttemptRecord("T1", 1, "h0", "a0", 1.0, 1.1, 1.2, TaskStatus.FAILED, "boom", "x"),
        AttemptRecord("T1", 2, "old-host", "a1", 2.0, 2.1, 0.0, TaskStatus.RUNNING),
    ]
    assert requeue_placed(decoded, "C9", now=10.0) == 2
    assert [r.status for r in decoded.tasks] == [TaskStatus.QUEUED] * 3 + [TaskStatus.COMPLETED]
    assert running.host_id == "" and running.seq == 3 and running.attempt == 2
    closed = decoded.attempts["T1"][-1]
    assert (closed.number, closed.status, closed.error_kind, closed.finished_at) == (
        2,
        TaskStatus.FAILED,
        "checkpoint_restore",
        10.0,
    )
    assert decoded.attempts["T1"][0].error_kind == "boom"
    assert "restored from checkpoint C9" in decoded.events["T2"][-1].message
    assert "T3" not in decoded.events and "T4" not in decoded.events
    # The core takes the re-queued tasks as queued work, not as leases of an unknown host.
    orch = Orchestrator()
    orch.restore(decoded.tasks, 10.0)
    assert len(orch.queue) == 3 and not orch.hosts


def test_checkpoint_settings_live_outside_the_core_limits() -> None:
    settings = LiveSettings(Orchestrator())
    settings.set_default("checkpoints.interval", 3600.0)
    assert settings.value("checkpoints.interval") == 3600.0
    assert settings.apply("checkpoints.interval", "60s") == "60"
    assert settings.value("checkpoints.interval") == 60.0
    entries = {s.key: (value, default) for s, value, default in settings.entries()}
    assert entries["checkpoints.interval"] == ("60", "3600")
    assert entries["checkpoints.retention.count"] == ("24", "24")
    with pytest.raises(InvalidArgument, match="not a whole number >= 1"):
        settings.apply("checkpoints.retention.count", "0")


def test_decoding_refuses_what_the_store_would_refuse_half_way() -> None:
    def docs(*tasks: TaskRecord) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, columns, rows in (
            ("tasks", TASK_COLUMNS, [task_row(t) for t in tasks]),
            ("events", EVENT_COLUMNS, []),
            ("attempts", ATTEMPT_COLUMNS, []),
            ("shared_state", STATE_COLUMNS, []),
            ("message_queues", MESSAGE_COLUMNS, []),
        ):
            writer = RowsWriter(name, columns)
            writer.add(orjson.loads(orjson.dumps(rows)))
            out[name] = orjson.loads(writer.finish())
        out["library"] = {"section": "library"}
        out["agents"] = {"section": "agents", "hosts": [{"id": "h1"}]}
        return out

    ok = decode_all("C1", docs(record("T2", TaskStatus.QUEUED), record("T1", TaskStatus.PENDING)))
    assert [t.id for t in ok.tasks] == ["T1", "T2"] and ok.hosts == ["h1"]  # parents (older ids) first
    with pytest.raises(FailedPrecondition, match="holds a task id or idempotency key twice"):
        decode_all("C1", docs(record("T1", TaskStatus.QUEUED), record("T1", TaskStatus.QUEUED)))
    broken = docs(record("T1", TaskStatus.QUEUED))
    broken["tasks"]["rows"][0][3] = "bm90IGEgc3BlYw=="  # type: ignore[index]  # base64, but not a TaskSpec
    with pytest.raises(FailedPrecondition, match="checkpoint C1 holds a malformed record"):
        decode_all("C1", broken)

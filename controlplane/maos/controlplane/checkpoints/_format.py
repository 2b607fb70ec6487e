"""The checkpoint format: a manifest (JSON) and one lz4-frame compressed JSON document per section.

    <id>/manifest.json        format, versions, counts, and per section: file, items,
                              raw and compressed sizes, SHA-256 of the compressed bytes
    <id>/<section>.json.lz4   {"section": name, ...}: rows under named columns

The manifest is written last, so a checkpoint without one is incomplete and not
listed. Restoring verifies every section (size, checksum, decompression, JSON)
before it writes anything. Format version 1 is the only one so far; a newer
one is refused with a message naming both.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import lz4.frame
import orjson
from maos.errors import FailedPrecondition, InvalidArgument

FORMAT = "maos-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CODEC = "lz4-frame"
SECTIONS = ("agents", "tasks", "events", "attempts", "shared_state", "message_queues", "library")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def maos_version() -> str:
    try:
        return importlib.metadata.version("maos")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def new_checkpoint_id(now: float) -> str:
    """Sortable by time: "20250131T120000123Z-3fa2" (UTC, milliseconds, 16 random bits)."""
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    return f"{when:%Y%m%dT%H%M%S}{when.microsecond // 1000:03d}Z-{secrets.token_hex(2)}"


def check_id(checkpoint_id: str) -> str:
    """InvalidArgument unless it looks like a checkpoint id (never a path)."""
    if not _ID.match(checkpoint_id):
        raise InvalidArgument(
            f"{checkpoint_id[:60]!r} is not a checkpoint id: see `maosctl checkpoint list` for the ids there are"
        )
    return checkpoint_id


@dataclass(frozen=True, slots=True)
class SectionInfo:
    name: str
    file: str
    items: int
    raw_bytes: int
    compressed_bytes: int
    sha256: str
    codec: str = CODEC


@dataclass(frozen=True, slots=True)
class EncodedSection:
    info: SectionInfo
    data: bytes


@dataclass(frozen=True, slots=True)
class Manifest:
    id: str
    created_at: float
    trigger: str  # "manual" | "automatic"
    label: str
    source: str  # the stores it was taken from
    duration_seconds: float
    counts: dict[str, int]
    sections: tuple[SectionInfo, ...]
    format_version: int = FORMAT_VERSION
    maos_version: str = field(default_factory=maos_version)

    @property
    def raw_bytes(self) -> int:
        return sum(s.raw_bytes for s in self.sections)

    @property
    def compressed_bytes(self) -> int:
        return sum(s.compressed_bytes for s in self.sections)

    @property
    def compression_ratio(self) -> float:
        return self.raw_bytes / self.compressed_bytes if self.compressed_bytes else 0.0

    def section(self, name: str) -> SectionInfo:
        for s in self.sections:
            if s.name == name:
                return s
        raise FailedPrecondition(f"checkpoint {self.id} has no {name} section: it is incomplete or damaged")

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "format_version": self.format_version,
            "maos_version": self.maos_version,
            "id": self.id,
            "created_at": self.created_at,
            "created": dt.datetime.fromtimestamp(self.created_at, dt.UTC).isoformat().replace("+00:00", "Z"),
            "trigger": self.trigger,
            "label": self.label,
            "source": self.source,
            "duration_seconds": round(self.duration_seconds, 6),
            "counts": self.counts,
            "raw_bytes": self.raw_bytes,
            "compressed_bytes": self.compressed_bytes,
            "compression_ratio": round(self.compression_ratio, 4),
            "sections": [
                {
                    "name": s.name,
                    "file": s.file,
                    "codec": s.codec,
                    "items": s.items,
                    "raw_bytes": s.raw_bytes,
                    "compressed_bytes": s.compressed_bytes,
                    "sha256": s.sha256,
                }
                for s in self.sections
            ],
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def parse_manifest(checkpoint_id: str, data: bytes) -> Manifest:
    """The manifest, or FailedPrecondition naming what is wrong with it (corrupt, other format,
    newer version)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FailedPrecondition(f"checkpoint {checkpoint_id} has a corrupt manifest (not JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FailedPrecondition(f"checkpoint {checkpoint_id} has no MAOS checkpoint manifest (format is not {FORMAT})")
    version = doc.get("format_version")
    written_by = doc.get("maos_version", "an unknown version")
    if not isinstance(version, int) or version < 1:
        raise FailedPrecondition(f"checkpoint {checkpoint_id} has a corrupt manifest (format_version {version!r})")
    if version != FORMAT_VERSION:
        raise FailedPrecondition(
            f"checkpoint {checkpoint_id} has format version {version} (written by MAOS {written_by}); this control "
            f"plane (MAOS {maos_version()}) reads format {FORMAT_VERSION} only: use a MAOS release that reads it"
        )
    try:
        sections = tuple(
            SectionInfo(
                name=str(s["name"]),
                file=str(s["file"]),
                items=int(s["items"]),
                raw_bytes=int(s["raw_bytes"]),
                compressed_bytes=int(s["compressed_bytes"]),
                sha256=str(s["sha256"]),
                codec=str(s.get("codec", CODEC)),
            )
            for s in doc["sections"]
        )
        manifest = Manifest(
            id=str(doc["id"]),
            created_at=float(doc["created_at"]),
            trigger=str(doc.get("trigger", "manual")),
            label=str(doc.get("label", "")),
            source=str(doc.get("source", "")),
            duration_seconds=float(doc.get("duration_seconds", 0.0)),
            counts={str(k): int(v) for k, v in dict(doc.get("counts", {})).items()},
            sections=sections,
            format_version=version,
            maos_version=str(written_by),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FailedPrecondition(f"checkpoint {checkpoint_id} has a corrupt manifest (field {exc})") from None
    if manifest.id != checkpoint_id:
        raise FailedPrecondition(f"checkpoint {checkpoint_id}'s manifest names another checkpoint ({manifest.id})")
    for s in sections:
        if s.codec != CODEC:
            raise FailedPrecondition(
                f"checkpoint {checkpoint_id}: section {s.name} uses codec {s.codec!r}, not {CODEC}"
            )
    return manifest


def encode_section(name: str, raw: bytes, items: int) -> EncodedSection:
    """Compress and checksum one section's JSON (CPU work: run it in a thread; lz4 and
    hashlib release the GIL, so sections compress in parallel)."""
    data = lz4.frame.compress(raw, content_checksum=True, store_size=True)
    info = SectionInfo(name, f"{name}.json.lz4", items, len(raw), len(data), hashlib.sha256(data).hexdigest())
    return EncodedSection(info, data)


def decode_section(checkpoint_id: str, info: SectionInfo, data: bytes) -> Any:
    """The section's JSON document, after checking its size, checksum and frame; FailedPrecondition
    saying which section of which checkpoint is damaged otherwise."""
    where = f"checkpoint {checkpoint_id}, section {info.name}"
    if len(data) != info.compressed_bytes:
        raise FailedPrecondition(
            f"{where}: {len(data)} bytes stored, the manifest says {info.compressed_bytes}; "
            "the checkpoint is truncated or damaged"
        )
    if hashlib.sha256(data).hexdigest() != info.sha256:
        raise FailedPrecondition(f"{where}: the SHA-256 checksum does not match; the checkpoint is corrupt")
    try:
        raw = lz4.frame.decompress(data)
    except RuntimeError as exc:
        raise FailedPrecondition(f"{where}: lz4 frame does not decompress ({exc}); the checkpoint is corrupt") from None
    if len(raw) != info.raw_bytes:
        raise FailedPrecondition(f"{where}: {len(raw)} bytes decompressed, the manifest says {info.raw_bytes}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FailedPrecondition(f"{where}: not JSON ({exc}); the checkpoint is corrupt") from None
    if not isinstance(doc, dict) or doc.get("section") != info.name:
        raise FailedPrecondition(f"{where}: the document is not that section; the checkpoint is corrupt")
    return doc


class RowsWriter:
    """Builds a section document {"section", "columns", "rows": [...], **extra} from pages of rows
    serialised as they come, so a large section never sits in memory as Python objects and the
    event loop is held for one page at a time."""

    def __init__(self, section: str, columns: tuple[str, ...]) -> None:
        self.section = section
        self.columns = columns
        self.items = 0
        self._pieces: list[bytes] = []

    def add(self, rows: list[list[Any]]) -> None:
        if rows:
            self._pieces.append(orjson.dumps(rows)[1:-1])  # the rows without the list's brackets
            self.items += len(rows)

    def finish(self, **extra: Any) -> bytes:
        head = orjson.dumps({"section": self.section, "columns": self.columns, **extra})[:-1]
        return b"".join([head, b',"rows":[', b",".join(self._pieces), b"]}"])


def rows_of(doc: dict[str, Any], columns: tuple[str, ...], where: str) -> list[Sequence[Any]]:
    """A section's rows, each with its values in the order of `columns` (a checkpoint may list its
    columns in another order, or more of them); FailedPrecondition if any is missing."""
    got = tuple(doc.get("columns", ()))
    missing = [c for c in columns if c not in got]
    if missing:
        raise FailedPrecondition(f"{where}: the section lacks columns {', '.join(missing)}; the checkpoint is corrupt")
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise FailedPrecondition(f"{where}: the section has no rows list; the checkpoint is corrupt")
    if got == columns:
        return rows
    pick = itemgetter(*(got.index(c) for c in columns))
    try:
        return [pick(row) for row in rows]
    except (IndexError, TypeError, KeyError):
        raise FailedPrecondition(f"{where}: a row does not match the columns; the checkpoint is corrupt") from None

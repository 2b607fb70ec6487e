"""CheckpointManager: create, list, show, restore and delete checkpoints of one control plane.

One checkpoint operation runs at a time (a create or a restore); another waits
for it. Progress goes to an optional callback, a few times a second at most.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from maos.errors import FailedPrecondition, InvalidArgument, MaosError

from ._apply import Decoded, check_empty, decode_all, requeue_placed, write_all
from ._collect import (
    Collected,
    Sources,
    collect_agents,
    collect_library,
    collect_messages,
    collect_state,
    collect_tasks,
)
from ._format import (
    MANIFEST,
    SECTIONS,
    EncodedSection,
    Manifest,
    check_id,
    decode_section,
    encode_section,
    new_checkpoint_id,
    parse_manifest,
)
from ._targets import CheckpointTarget

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 0.2
MAX_LABEL_CHARS = 200
MANUAL, AUTOMATIC = "manual", "automatic"


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str  # reading, compressing, writing, verifying, restoring
    message: str
    done: int = 0
    total: int = 0


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class Listed:
    """A checkpoint in a listing: its manifest, or why it could not be read."""

    id: str
    manifest: Manifest | None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    checkpoint: Manifest
    counts: dict[str, int]
    requeued: int
    hosts: list[str]
    duration_seconds: float


@dataclass
class _Throttle:
    """Forwards progress at most every PROGRESS_INTERVAL_SECONDS, always the phase changes."""

    sink: ProgressFn | None
    last: float = 0.0
    phase: str = ""

    def __call__(self, progress: Progress, force: bool = False) -> None:
        if self.sink is None:
            return
        now = time.monotonic()
        if force or progress.phase != self.phase or now - self.last >= PROGRESS_INTERVAL_SECONDS:
            self.last, self.phase = now, progress.phase
            self.sink(progress)


class CheckpointManager:
    def __init__(self, target: CheckpointTarget, sources: Sources) -> None:
        self.target = target
        self.sources = sources
        self._busy = asyncio.Lock()

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    async def open(self) -> None:
        await self.target.open()

    async def close(self) -> None:
        await self.target.close()

    # ------------------------------------------------------------------ create

    async def create(self, *, label: str = "", trigger: str = MANUAL, progress: ProgressFn | None = None) -> Manifest:
        if len(label) > MAX_LABEL_CHARS:
            raise InvalidArgument(f"the label is {len(label)} characters; the limit is {MAX_LABEL_CHARS}")
        report = _Throttle(progress)
        if self._busy.locked():
            report(Progress("waiting", "another checkpoint operation is running; waiting for it"), True)
        async with self._busy:
            return await self._create(label, trigger, report)

    async def _create(self, label: str, trigger: str, report: _Throttle) -> Manifest:
        started = time.time()
        checkpoint_id = new_checkpoint_id(started)
        out = Collected()

        def tick(what: str, done: int, total: int) -> None:
            report(Progress("reading", f"reading {what}", done, total))

        report(Progress("reading", "reading tasks, shared state and message queues"), True)
        collect_agents(self.sources, out)
        await asyncio.gather(
            collect_tasks(self.sources, out, tick),
            collect_state(self.sources, out, tick),
            collect_messages(self.sources, out, tick),
            collect_library(self.sources, out),
        )
        report(Progress("compressing", f"compressing {len(out.sections)} sections in parallel"), True)
        # lz4 and hashlib release the GIL: sections compress on several cores at once.
        encoded: list[EncodedSection] = await asyncio.gather(
            *(asyncio.to_thread(encode_section, name, raw, items) for name, (raw, items) in out.sections.items())
        )
        out.sections.clear()
        total = sum(e.info.compressed_bytes for e in encoded)
        manifest = Manifest(
            id=checkpoint_id,
            created_at=started,
            trigger=trigger,
            label=label,
            source=self.sources.description,
            duration_seconds=0.0,
            counts=out.counts,
            sections=tuple(sorted((e.info for e in encoded), key=lambda s: SECTIONS.index(s.name))),
        )
        sent = 0

        def written(name: str, size: int) -> None:
            nonlocal sent
            sent += size
            report(Progress("writing", f"writing to {self.target.description}", min(sent, total), total))

        def finished() -> bytes:
            nonlocal manifest
            manifest = dataclasses.replace(manifest, duration_seconds=time.time() - started)
            return manifest.to_json()

        report(Progress("writing", f"writing to {self.target.description}", 0, total), True)
        await self.target.write(checkpoint_id, [(e.info.file, e.data) for e in encoded], finished, written)
        log.info(
            "checkpoint %s (%s) written to %s: %d tasks, %d bytes, compression %.2fx, %.2fs",
            checkpoint_id,
            trigger,
            self.target.location(checkpoint_id),
            manifest.counts.get("tasks", 0),
            manifest.compressed_bytes,
            manifest.compression_ratio,
            manifest.duration_seconds,
        )
        return manifest

    # -------------------------------------------------------------- inspection

    async def get(self, checkpoint_id: str) -> Manifest:
        check_id(checkpoint_id)
        return parse_manifest(checkpoint_id, await self.target.read(checkpoint_id, MANIFEST))

    async def list_checkpoints(self) -> list[Listed]:
        """Every complete checkpoint, oldest first; an unreadable manifest is listed with its problem."""
        ids = await self.target.list_ids()
        limit = asyncio.Semaphore(16)

        async def one(checkpoint_id: str) -> Listed:
            async with limit:
                try:
                    return Listed(checkpoint_id, await self.get(checkpoint_id))
                except MaosError as exc:
                    return Listed(checkpoint_id, None, str(exc))

        return list(await asyncio.gather(*(one(i) for i in ids)))

    async def delete(self, checkpoint_id: str) -> Listed:
        check_id(checkpoint_id)
        try:
            listed = Listed(checkpoint_id, await self.get(checkpoint_id))
        except FailedPrecondition as exc:  # a damaged checkpoint can still be deleted
            listed = Listed(checkpoint_id, None, str(exc))
        await self.target.delete(checkpoint_id)
        log.info("checkpoint %s deleted from %s", checkpoint_id, self.target.description)
        return listed

    async def prune(self, keep: int) -> list[str]:
        """Delete the oldest automatic checkpoints beyond the newest `keep`; manual ones stay."""
        automatic = [
            c.id for c in await self.list_checkpoints() if c.manifest is not None and c.manifest.trigger == AUTOMATIC
        ]
        doomed = automatic[: max(len(automatic) - keep, 0)]
        for checkpoint_id in doomed:
            await self.target.delete(checkpoint_id)
        if doomed:
            log.info("retention: deleted %d automatic checkpoints (%s)", len(doomed), ", ".join(doomed))
        return doomed

    # ----------------------------------------------------------------- restore

    async def restore(self, checkpoint_id: str, progress: ProgressFn | None = None) -> RestoreSummary:
        """Bring an empty control plane back to the checkpoint's state; unfinished work resumes.

        Checks that nothing is there, then reads and verifies every section before it
        writes anything: a damaged, truncated or incompatible checkpoint changes nothing."""
        check_id(checkpoint_id)
        report = _Throttle(progress)
        if self._busy.locked():
            report(Progress("waiting", "another checkpoint operation is running; waiting for it"), True)
        async with self._busy:
            started = time.time()
            await check_empty(self.sources)
            manifest = await self.get(checkpoint_id)
            decoded = await self._read_verified(manifest, report)
            await check_empty(self.sources)  # nothing arrived while we read
            requeued = requeue_placed(decoded, checkpoint_id, time.time())

            def step(what: str, done: int, total: int) -> None:
                report(Progress("restoring", f"restoring {what}", done, total))

            report(Progress("restoring", "writing tasks, shared state and messages", 0, len(decoded.tasks)), True)
            counts = await write_all(self.sources, decoded, step)
            counts["requeued"] = requeued
            elapsed = time.time() - started
            log.info(
                "restored checkpoint %s: %d tasks (%d unfinished, %d re-queued), %d state entries, %d messages, %.2fs",
                checkpoint_id,
                counts["tasks"],
                counts["unfinished_tasks"],
                requeued,
                counts["state_entries"],
                counts["messages"],
                elapsed,
            )
            return RestoreSummary(manifest, counts, requeued, decoded.hosts, elapsed)

    async def _read_verified(self, manifest: Manifest, report: _Throttle) -> Decoded:
        for name in SECTIONS:
            manifest.section(name)  # every section is there
        total = manifest.compressed_bytes
        got = 0

        async def fetch(name: str) -> tuple[str, bytes]:
            nonlocal got
            data = await self.target.read(manifest.id, manifest.section(name).file)
            got += len(data)
            report(Progress("reading", f"reading from {self.target.description}", min(got, total), total))
            return name, data

        report(Progress("reading", f"reading from {self.target.description}", 0, total), True)
        fetched = dict(await asyncio.gather(*(fetch(name) for name in SECTIONS)))
        report(Progress("verifying", "verifying checksums and decompressing"), True)
        docs: dict[str, Any] = dict(
            zip(
                SECTIONS,
                await asyncio.gather(
                    *(
                        asyncio.to_thread(decode_section, manifest.id, manifest.section(name), fetched.pop(name))
                        for name in SECTIONS
                    )
                ),
                strict=True,
            )
        )
        return await asyncio.to_thread(decode_all, manifest.id, docs)

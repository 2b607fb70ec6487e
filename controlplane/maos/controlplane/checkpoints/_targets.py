"""Where checkpoints are kept: a local directory (the default) or S3 (see _s3).

A target stores a checkpoint's objects under its id and makes the checkpoint
visible only once the manifest is stored, after every section.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from maos.errors import NotFound, Unavailable

from ._format import MANIFEST

Written = Callable[[str, int], None]
"""Called with an object's name and a number of its bytes just stored."""
ManifestFn = Callable[[], bytes]
"""The manifest, made once every section is stored (so it can record how long that took)."""


class CheckpointTarget(Protocol):
    @property
    def description(self) -> str:
        """Where checkpoints go, for logs and answers ("/var/lib/maos/checkpoints", "s3://bucket/prefix")."""
        ...

    async def open(self) -> None:
        """Check the target can be used; a clear error when it cannot (e.g. no such bucket)."""
        ...

    async def close(self) -> None: ...

    def location(self, checkpoint_id: str) -> str: ...

    async def write(
        self, checkpoint_id: str, objects: Sequence[tuple[str, bytes]], manifest: ManifestFn, written: Written
    ) -> None:
        """Store the objects, then the manifest; the checkpoint exists only once all are stored."""
        ...

    async def read(self, checkpoint_id: str, name: str) -> bytes:
        """One object; NotFound if the checkpoint (or the object) is not there."""
        ...

    async def list_ids(self) -> list[str]:
        """Ids of complete checkpoints (those with a manifest), oldest first."""
        ...

    async def delete(self, checkpoint_id: str) -> bool:
        """Remove every object of the checkpoint; False if there was none."""
        ...


class LocalTarget:
    """Checkpoints as directories: <root>/<id>/manifest.json and sections beside it.

    A checkpoint is written into <root>/.partial-<id>/, every file fsynced, and renamed
    into place once complete, so a crash never leaves a half-written checkpoint listed.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def description(self) -> str:
        return str(self.root)

    async def open(self) -> None:
        def prepare() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            for leftover in self.root.glob(".partial-*"):  # checkpoints cut short by a crash
                shutil.rmtree(leftover, ignore_errors=True)

        try:
            await asyncio.to_thread(prepare)
        except OSError as exc:
            raise Unavailable(f"cannot use checkpoint directory {self.root}: {exc.strerror or exc}") from None

    async def close(self) -> None:
        return None

    def location(self, checkpoint_id: str) -> str:
        return str(self.root / checkpoint_id)

    async def write(
        self, checkpoint_id: str, objects: Sequence[tuple[str, bytes]], manifest: ManifestFn, written: Written
    ) -> None:
        partial = self.root / f".partial-{checkpoint_id}"
        final = self.root / checkpoint_id
        loop = asyncio.get_running_loop()

        def put(name: str, data: bytes) -> None:
            _write_file(partial / name, data)
            loop.call_soon_threadsafe(written, name, len(data))

        try:
            await asyncio.to_thread(partial.mkdir, parents=True)
            await asyncio.gather(*(asyncio.to_thread(put, name, data) for name, data in objects))
            await asyncio.to_thread(put, MANIFEST, manifest())
            await asyncio.to_thread(_publish, partial, final)
        except BaseException as exc:  # failed or abandoned: leave nothing half-written behind
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, partial, True))
            if isinstance(exc, OSError):
                why = exc.strerror or exc
                raise Unavailable(f"cannot write checkpoint {checkpoint_id} to {self.root}: {why}") from None
            raise

    async def read(self, checkpoint_id: str, name: str) -> bytes:
        path = self.root / checkpoint_id / name
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            if name == MANIFEST or not (self.root / checkpoint_id).is_dir():
                raise NotFound(f"no checkpoint {checkpoint_id} in {self.root}") from None
            raise NotFound(f"checkpoint {checkpoint_id} lacks its file {name}; it is incomplete") from None
        except OSError as exc:
            raise Unavailable(f"cannot read {path}: {exc.strerror or exc}") from None

    async def list_ids(self) -> list[str]:
        def scan() -> list[str]:
            if not self.root.is_dir():
                return []
            return sorted(
                p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()
            )

        return await asyncio.to_thread(scan)

    async def delete(self, checkpoint_id: str) -> bool:
        path = self.root / checkpoint_id
        if not path.is_dir():
            return False
        # Renamed first, so a crash mid-delete leaves a leftover that open() clears, not a damaged checkpoint.
        doomed = self.root / f".partial-deleting-{checkpoint_id}"
        try:
            await asyncio.to_thread(os.replace, path, doomed)
            await asyncio.to_thread(shutil.rmtree, doomed)
        except OSError as exc:
            raise Unavailable(f"cannot delete checkpoint {checkpoint_id}: {exc.strerror or exc}") from None
        return True


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _publish(partial: Path, final: Path) -> None:
    os.replace(partial, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself is durable
    finally:
        os.close(fd)

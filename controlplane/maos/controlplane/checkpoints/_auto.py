"""Automatic checkpoints: one every `checkpoints.interval` seconds (a live setting, 0 = off),
keeping the newest `checkpoints.retention.count` automatic ones (manual ones stay until deleted).

The schedule survives restarts: it counts from the newest automatic checkpoint in the
target. A failed checkpoint is logged and tried again after the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from maos.errors import MaosError

from ._manager import AUTOMATIC, CheckpointManager

if TYPE_CHECKING:
    from maos.controlplane._settings import LiveSettings

log = logging.getLogger(__name__)

INTERVAL_KEY = "checkpoints.interval"
RETENTION_KEY = "checkpoints.retention.count"


class AutoCheckpoints:
    def __init__(self, manager: CheckpointManager, settings: LiveSettings, *, poll_seconds: float = 1.0) -> None:
        self._manager = manager
        self._settings = settings
        self._poll = poll_seconds
        self._last = time.time()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            listed = await self._manager.list_checkpoints()
        except MaosError as exc:
            log.warning("cannot list checkpoints in %s: %s", self._manager.target.description, exc)
            listed = []
        automatic = [c.manifest.created_at for c in listed if c.manifest and c.manifest.trigger == AUTOMATIC]
        if automatic:
            self._last = max(automatic)
        self._task = asyncio.create_task(self._run(), name="maos-auto-checkpoints")

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        interval = 0.0
        while True:
            # Wake when the next one is due, and at least every poll, to see a changed interval.
            due = self._last + interval - time.time() if interval > 0 else self._poll
            await asyncio.sleep(min(self._poll, max(due, 0.05)))
            interval = float(self._settings.value(INTERVAL_KEY))
            if interval <= 0 or time.time() - self._last < interval or self._manager.busy:
                continue
            self._last = time.time()
            try:
                await self._manager.create(trigger=AUTOMATIC)
                await self._manager.prune(int(self._settings.value(RETENTION_KEY)))
            except MaosError as exc:
                log.error("automatic checkpoint failed: %s", exc)
            except Exception:
                log.exception("automatic checkpoint failed")

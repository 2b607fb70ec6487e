"""Automatic pipelining for redis.asyncio: commands issued in one turn of the event loop (say,
the write-throughs of one group commit, or the gets of concurrent callers) reach Redis as one
pipeline, one round trip, instead of one round trip and one pooled connection each.

Each command gets its own answer or error; a pipeline that fails as a whole (connection lost)
fails every command in it. Pipelines sent in different turns may run on different connections,
so they can reach Redis in any order: callers that care use commands that are safe in any order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

MAX_COMMANDS = 1_000  # per pipeline: a flood is sent in slices, each answered as it completes


class AutoPipeline:
    """Sends commands; those issued in one turn of the event loop go as one pipeline."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def call(self, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append((args, future))
        return future

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        loop = asyncio.get_running_loop()
        for i in range(0, len(queued), MAX_COMMANDS):
            task = loop.create_task(self._send(queued[i : i + MAX_COMMANDS]), name="maos-redis-pipeline")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:  # alone: a plain command costs redis-py less than a pipeline of one
                results = [await self._client.execute_command(*batch[0][0])]  # type: ignore[no-untyped-call]
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    for args, _ in batch:
                        pipe.execute_command(*args)
                    results = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller stopped waiting
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def drain(self) -> None:
        """Wait for every pipeline sent or queued."""
        while self._queued or self._sending:
            if self._sending:
                await asyncio.wait(set(self._sending))
            else:
                await asyncio.sleep(0)  # the flush is scheduled: let it run

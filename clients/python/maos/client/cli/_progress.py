"""`task progress`: a live view of a task and its subtree, driven by WatchTask events.

One coroutine consumes the event stream (resuming from the root's last
sequence number if it drops) and another redraws on a short tick so elapsed
times move. Fetches (GetTask/ListTasks) happen once at the start, when events
leave a gap (an agent id they do not carry), after a reconnect, and at the end
for the results; never in a polling loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Mapping
from typing import TextIO

from maos.errors import DeadlineExceeded, Internal, ResourceExhausted, Unavailable

from .._async_client import AsyncClient
from .._specs import task_result
from ._output import pretty_value
from ._progress_view import ProgressView, Transition
from ._terminal import LiveRegion, is_tty, terminal_size

REDRAW_SECONDS = 0.25
MIN_REFRESH_SECONDS = 0.5
RECONNECT_GIVE_UP_SECONDS = 30.0
# Errors a dropped stream shows up as (ResourceExhausted: the server dropped a
# watcher that fell behind and asks it to resume); anything else (NotFound, ...) is final.
_TRANSIENT = (Unavailable, DeadlineExceeded, Internal, ResourceExhausted)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ProgressFollower:
    """Keeps a ProgressView current from a watch stream and draws it to `out`."""

    def __init__(self, client: AsyncClient, view: ProgressView, out: TextIO, *, live: bool) -> None:
        self.client = client
        self.view = view
        self.out = out
        self.live = live
        self._region = LiveRegion(out) if live else None
        self._refresh_wanted = False
        self._last_refresh = 0.0
        self._notice = ""

    async def refresh(self, *, include_result: bool = False) -> None:
        """Fetch the root and every descendant and merge them into the view."""
        root_id = self.view.root.id
        root = await self.client.get_task(root_id)
        tasks = [
            t async for t in self.client.list_tasks(root_id=root_id, page_size=1000, include_result=include_result)
        ]
        self.view.apply_snapshot(root, tasks)
        self._last_refresh = time.monotonic()
        self._refresh_wanted = False

    def draw(self) -> None:
        """Redraw the live region (no-op in line mode)."""
        if self._region is not None:
            columns, lines = terminal_size(self.out)
            rendered = self.view.render(_now(), width=columns, max_running=max(lines - 8, 3))
            if self._notice:
                rendered.append(self._notice)
            self._region.update(rendered)

    def _report(self, change: Transition) -> None:
        if self._region is None:
            self.out.write(self.view.transition_line(change, _now()) + "\n")
            self.out.flush()

    async def _consume(self) -> None:
        """Apply events until the root is final, reconnecting after the last seen sequence."""
        root_id = self.view.root.id
        failing_since: float | None = None
        delay = 0.2
        while not self.view.root_final:
            try:
                events = self.client.watch_task(root_id, after_seq=self.view.root_seq, include_subtree=True)
                async with contextlib.aclosing(events):
                    async for event in events:
                        failing_since, delay, self._notice = None, 0.2, ""
                        change = self.view.apply_event(event)
                        if change is not None:
                            self._report(change)
                            self._refresh_wanted = self._refresh_wanted or self.view.needs_refresh()
                        if self.view.root_final:
                            return
                # The server ended the stream without a final root: catch up, then resume.
                await self.refresh()
            except _TRANSIENT as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > RECONNECT_GIVE_UP_SECONDS:
                    raise
                self._notice = f"(connection lost: {exc}; reconnecting…)"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                with contextlib.suppress(*_TRANSIENT):
                    await self.refresh()

    async def _tick(self) -> None:
        """Redraw on a timer and fill gaps events leave, at most every MIN_REFRESH_SECONDS."""
        while True:
            if self._refresh_wanted and time.monotonic() - self._last_refresh >= MIN_REFRESH_SECONDS:
                with contextlib.suppress(*_TRANSIENT):
                    await self.refresh()
            self.draw()
            await asyncio.sleep(REDRAW_SECONDS)

    async def run(self) -> None:
        """Follow until the root is final, then fetch the results and draw the last frame."""
        ticker = asyncio.create_task(self._tick())
        try:
            await self._consume()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        await self.refresh(include_result=True)
        self.draw()


def final_report(view: ProgressView) -> str:
    """What to print once the root is final: its result, or its error, or its sinks' results."""
    root = view.root
    if root.HasField("error") and (root.error.kind or root.error.message):
        return f"{view.name(root)}: {root.error.kind or 'error'}: {root.error.message}"
    result = task_result(root)
    if result is not None or not view.children:
        return pretty_value(result)
    parts = []
    for sink in view.sinks():
        body = pretty_value(task_result(sink))
        if sink.HasField("error") and sink.error.message:
            body = f"{sink.error.kind or 'error'}: {sink.error.message}"
        parts.append(f"── {view.name(sink)} ──\n{body}")
    return "\n".join(parts)


async def follow_progress(
    client: AsyncClient,
    task_id: str,
    out: TextIO,
    *,
    follow: bool = True,
    names: Mapping[str, str] | None = None,
    report: bool = True,
) -> ProgressView:
    """Show a task's progress on `out`; with `follow`, live until the root is final.

    Redraws in place when `out` is a terminal and prints one line per status
    change otherwise. Returns the final view (root and subtasks, with results).
    """
    root = await client.get_task(task_id)
    view = ProgressView(root, names=dict(names or {}))
    follower = ProgressFollower(client, view, out, live=is_tty(out))
    with_results = view.root_final or not follow
    await follower.refresh(include_result=with_results)
    if follow and not view.root_final:
        await follower.run()
    elif view.root_final and not with_results:
        # The tree finished between the two fetches: the listing above had no results.
        await follower.refresh(include_result=True)
    if follower.live:
        follower.draw()
    else:
        # Line mode: the summary frame once, after the per-change lines.
        out.write("\n".join(view.render(_now(), width=terminal_size(out)[0])) + "\n")
    if report and view.root_final:
        out.write(final_report(view) + "\n")
    out.flush()
    return view

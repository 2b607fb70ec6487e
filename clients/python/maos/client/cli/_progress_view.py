"""The state behind `task progress`: a root task and its subtree, kept current by events.

Pure (no I/O): the driver in _progress.py feeds it snapshots and TaskEvents
and asks it for lines to draw, so rendering is unit-tested with plain data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from maos.v1 import common_pb2

from .._enums import is_final, status_name
from ._output import duration, progress_bar, render_table, timestamp, truncate
from ._views import progress_text

_RUNNING = common_pb2.TASK_STATUS_RUNNING


def _where(placement: common_pb2.Placement) -> str | None:
    """The agent id, prefixed with its host unless the id already names it."""
    host, agent = placement.host_id, placement.agent_id
    if agent and host and host not in agent:
        return f"{host}/{agent}"
    return agent or host or None


@dataclass(frozen=True, slots=True)
class Transition:
    """A task changed status (what the line-by-line display prints)."""

    task_id: str
    status: int
    host_id: str
    message: str


@dataclass
class ProgressView:
    """A root task and every descendant, merged from snapshots and events."""

    root: common_pb2.Task
    names: Mapping[str, str] = field(default_factory=dict)  # task id -> short display name
    children: dict[str, common_pb2.Task] = field(default_factory=dict)
    _seqs: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._seqs[self.root.id] = self.root.last_seq

    @property
    def root_final(self) -> bool:
        """True once the root task is COMPLETED, FAILED, CANCELLED or TIMED_OUT."""
        return is_final(self.root.status)

    @property
    def root_seq(self) -> int:
        """The newest sequence number seen for the root: where a resumed watch starts."""
        return self._seqs.get(self.root.id, 0)

    def name(self, task: common_pb2.Task) -> str:
        """A short label: the caller's name for it, else its description."""
        return self.names.get(task.id) or task.spec.description or task.id

    def apply_snapshot(self, root: common_pb2.Task | None, tasks: Iterable[common_pb2.Task]) -> None:
        """Merge fetched tasks; a fetched copy older than the events already applied only fills gaps."""
        if root is not None:
            self.root = self._merge(self.root, root)
        for task in tasks:
            if task.id == self.root.id:
                self.root = self._merge(self.root, task)
            else:
                known = self.children.get(task.id)
                self.children[task.id] = task if known is None else self._merge(known, task)

    def _merge(self, known: common_pb2.Task, fetched: common_pb2.Task) -> common_pb2.Task:
        if fetched.last_seq >= self._seqs.get(fetched.id, 0):
            self._seqs[fetched.id] = fetched.last_seq
            return fetched
        # Events have overtaken this fetch: keep their status, take what events lack.
        if not known.placement.agent_id and fetched.placement.agent_id:
            known.placement.CopyFrom(fetched.placement)
        if not known.HasField("started_at") and fetched.HasField("started_at"):
            known.started_at.CopyFrom(fetched.started_at)
        return known

    def apply_event(self, event: common_pb2.TaskEvent) -> Transition | None:
        """Apply one event; returns the Transition when the task's status changed.

        Events at or below the sequence number already seen for their task are
        ignored, which makes replays after a reconnect or a snapshot harmless.
        """
        if event.seq and event.seq <= self._seqs.get(event.task_id, 0):
            return None
        if event.seq:
            self._seqs[event.task_id] = event.seq
        task = self.root if event.task_id == self.root.id else self.children.get(event.task_id)
        if task is None:
            # A task we have not fetched yet (spawned at run time): start it from the event.
            task = common_pb2.Task(id=event.task_id, root_id=self.root.id)
            self.children[event.task_id] = task
        changed = event.status != 0 and event.status != task.status
        if event.status:
            task.status = event.status
        if event.attempt:
            task.attempt = event.attempt
        if event.host_id:
            task.placement.host_id = event.host_id
        if event.HasField("progress"):
            task.progress.CopyFrom(event.progress)
        if event.HasField("time"):
            if event.status == _RUNNING and changed:
                task.started_at.CopyFrom(event.time)
                task.placement.agent_id = ""  # a new attempt may run elsewhere
                task.ClearField("finished_at")
            elif is_final(event.status) and changed:
                task.finished_at.CopyFrom(event.time)
        if not changed:
            return None
        return Transition(event.task_id, event.status, event.host_id, event.message)

    def needs_refresh(self) -> bool:
        """True when a fetch would fill in something events do not carry (agent ids, descriptions)."""
        return any(
            (t.status == _RUNNING and not t.placement.agent_id) or not t.spec.description
            for t in self.children.values()
        )

    def counts(self) -> dict[str, int]:
        """Subtask counts by status name, in lifecycle order, zeros included for the common ones."""
        counts = {name: 0 for name in ("pending", "queued", "running", "completed")}
        for task in self.children.values():
            name = status_name(task.status)
            counts[name] = counts.get(name, 0) + 1
        return counts

    def fraction(self) -> float:
        """Work done, 0..1: finished subtasks plus the reported progress of running ones."""
        if not self.children:
            if self.root_final:
                return 1.0
            return self.root.progress.fraction if self.root.HasField("progress") else 0.0
        done = 0.0
        for task in self.children.values():
            if is_final(task.status):
                done += 1.0
            elif task.status == _RUNNING:
                done += min(max(task.progress.fraction, 0.0), 1.0)
        return done / len(self.children)

    def elapsed(self, task: common_pb2.Task, now: dt.datetime) -> float | None:
        """Seconds a task has run (to its finish, or to `now` while running)."""
        started = timestamp(task.started_at, task.HasField("started_at"))
        if started is None:
            return None
        finished = timestamp(task.finished_at, task.HasField("finished_at")) or now
        return max((finished - started).total_seconds(), 0.0)

    def render(self, now: dt.datetime, width: int = 100, max_running: int = 12) -> list[str]:
        """The display's lines: headline, bar, counts by state, then the running subtasks."""
        root = self.root
        created = timestamp(root.created_at, root.HasField("created_at"))
        age = duration((now - created).total_seconds()) if created else "-"
        head = f"{truncate(self.name(root), max(width - 40, 20))}  {root.id}  {status_name(root.status)}  {age}"
        fraction = self.fraction()
        bar_width = max(min(width - 30, 40), 10)
        finished = sum(1 for t in self.children.values() if is_final(t.status))
        total = len(self.children)
        tally = f"{finished}/{total} done" if total else status_name(root.status)
        lines = [head, f"{progress_bar(fraction, bar_width)} {fraction:4.0%}  {tally}"]
        if total:
            lines.append(" · ".join(f"{name} {n}" for name, n in self.counts().items()))
        running = sorted(
            (t for t in self.children.values() if t.status == _RUNNING),
            key=lambda t: (t.started_at.seconds, t.started_at.nanos, t.id),
        )
        if running:
            rows = [
                (
                    self.name(t),
                    _where(t.placement),
                    duration(self.elapsed(t, now)),
                    progress_text(t),
                )
                for t in running[:max_running]
            ]
            table = render_table(
                ("running", "agent", "elapsed", "progress"),
                rows,
                right=(2,),
                max_widths={0: 24, 1: 32, 3: max(width - 24 - 32 - 20, 12)},
            )
            lines.extend("  " + line for line in table.splitlines())
            if len(running) > max_running:
                lines.append(f"  … and {len(running) - max_running} more running")
        return lines

    def transition_line(self, change: Transition, now: dt.datetime) -> str:
        """One plain line for a status change (the display when stdout is not a terminal)."""
        task = self.root if change.task_id == self.root.id else self.children.get(change.task_id)
        name = self.name(task) if task is not None else change.task_id
        created = timestamp(self.root.created_at, self.root.HasField("created_at"))
        stamp = duration((now - created).total_seconds()) if created else "-"
        where = f" on {change.host_id}" if change.host_id else ""
        extra = ""
        if task is not None and is_final(change.status) and task.HasField("started_at"):
            extra = f" after {duration(self.elapsed(task, now))}"
        # Skip notes that only repeat what the line already says ("completed", "dispatched to host h1").
        redundant = change.message.lower() in ("", status_name(change.status)) or (
            change.host_id and change.host_id in change.message
        )
        note = "" if redundant else f" ({change.message})"
        return f"[{stamp:>7}] {name}: {status_name(change.status)}{where}{extra}{note}"

    def sinks(self) -> list[common_pb2.Task]:
        """Subtasks no other subtask depends on: a workflow's final outputs, in a stable order."""
        # depends_on holds task ids once stored; node keys are accepted too in case it does not.
        needed = {dep for t in self.children.values() for dep in t.spec.depends_on}
        return sorted(
            (t for t in self.children.values() if t.id not in needed and self.names.get(t.id) not in needed),
            key=lambda t: (self.name(t), t.id),
        )

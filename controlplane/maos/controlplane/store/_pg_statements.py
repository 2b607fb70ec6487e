"""The SQL of a PostgreSQL group commit.

Each table's rows go in as one statement over column arrays (`unnest`), and
the common group (tasks, keys, updates, events, attempts, plus the epoch
check) is ONE statement of data-modifying CTEs: one round trip and an
implicit transaction per commit. The CTEs run against one snapshot, so an
update of a task inserted in the same group is folded into its insert row
first (`fold_updates`); an epoch check that fails raises and takes the whole
statement back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._rows import ALL_COLUMNS, ATTEMPT_COLUMNS, EVENT_COLUMNS, FIXED_COLUMNS, MUTABLE_COLUMNS

# The SQLSTATE maos_fence() raises for a stale epoch (class "MA": ours).
STALE_EPOCH = "MA001"

TASK_TYPES = {
    "id": "text",
    "root_id": "text",
    "parent_id": "text",
    "spec": "bytea",
    "created_at": "float8",
    "idempotency_key": "text",
    "workflow_key": "text",
    "grp": "int4",
    "agent_type": "text",
    "plan": "bytea",
    "status": "int4",
    "priority": "int4",
    "attempt": "int4",
    "failures": "int4",
    "host_id": "text",
    "agent_id": "text",
    "queued_at": "float8",
    "started_at": "float8",
    "finished_at": "float8",
    "progress": "float8",
    "progress_message": "text",
    "result": "bytea",
    "result_type": "text",
    "error_kind": "text",
    "error_message": "text",
    "log": "text",
    "seq": "int8",
}
EVENT_TYPES = ("text", "int8", "int4", "int4", "float8", "text", "text", "float8", "text")
ATTEMPT_TYPES = ("text", "int4", "text", "text", "float8", "float8", "float8", "int4", "text", "text")
_UPDATE_NAMES = (*MUTABLE_COLUMNS, "id")


def fold_updates(inserts: list[tuple[Any, ...]], updates: dict[str, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Inserts carrying the newest snapshot of tasks updated in the same group; those
    updates are removed from `updates` (an UPDATE would not see a row inserted beside it)."""
    if not updates:
        return inserts
    fixed = len(FIXED_COLUMNS)
    out = []
    for row in inserts:
        newer = updates.pop(row[0], None)
        out.append(row if newer is None else (*row[:fixed], *newer[:-1]))
    return out


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows -> one list per column, the shape `unnest` takes."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


@dataclass(slots=True)
class Statement:
    """Builds one statement, numbering the parameters as parts are added."""

    args: list[Any] = field(default_factory=list)

    def unnest(self, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
        first = len(self.args) + 1
        self.args.extend(columns(rows, len(types)))
        return "unnest(" + ", ".join(f"${first + i}::{t}[]" for i, t in enumerate(types)) + ")"

    def param(self, value: Any, sql_type: str) -> str:
        self.args.append(value)
        return f"${len(self.args)}::{sql_type}"


# A replayed group (its first attempt's connection dropped, so it may have committed) skips rows
# already there; everything else in a group is an upsert or a snapshot update, safe to repeat.
_REPLAY = " ON CONFLICT DO NOTHING"


def insert_tasks(st: Statement, rows: Sequence[Sequence[Any]], replay: bool = False) -> str:
    source = st.unnest([TASK_TYPES[c] for c in ALL_COLUMNS], rows)
    return f"INSERT INTO tasks ({', '.join(ALL_COLUMNS)}) SELECT * FROM {source}" + (_REPLAY if replay else "")


def insert_keys(st: Statement, rows: Sequence[Sequence[Any]], replay: bool = False) -> str:
    source = st.unnest(("text", "text", "text"), rows)
    return f"INSERT INTO task_keys (idempotency_key, task_id, root_id) SELECT * FROM {source}" + (
        _REPLAY if replay else ""
    )


def update_tasks(st: Statement, rows: Sequence[Sequence[Any]]) -> str:
    source = st.unnest([TASK_TYPES[c] for c in _UPDATE_NAMES], rows)
    ids = f"${len(st.args)}::text[]"  # the id column, the last array
    sets = ", ".join(f"{c} = u.{c}" for c in MUTABLE_COLUMNS)
    # `t.id = ANY(ids)` lets the planner fetch just these rows through each partition's primary key;
    # joined on `t.id = u.id` alone it may hash-join a sequential scan of every partition.
    return (
        f"UPDATE tasks AS t SET {sets} FROM {source} AS u({', '.join(_UPDATE_NAMES)}) "
        f"WHERE t.id = ANY({ids}) AND t.id = u.id"
    )


def upsert_events(st: Statement, rows: Sequence[Sequence[Any]]) -> str:
    source = st.unnest(EVENT_TYPES, rows)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in EVENT_COLUMNS[2:])
    return (
        f"INSERT INTO task_events ({', '.join(EVENT_COLUMNS)}) SELECT * FROM {source} "
        f"ON CONFLICT (task_id, seq) DO UPDATE SET {sets}"
    )


def upsert_attempts(st: Statement, rows: Sequence[Sequence[Any]]) -> str:
    source = st.unnest(ATTEMPT_TYPES, rows)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in ATTEMPT_COLUMNS[2:])
    return (
        f"INSERT INTO task_attempts ({', '.join(ATTEMPT_COLUMNS)}) SELECT * FROM {source} "
        f"ON CONFLICT (task_id, number) DO UPDATE SET {sets}"
    )


def fence(st: Statement, epoch: int) -> str:
    return f"SELECT maos_fence({st.param(epoch, 'int8')})"


def one_statement(
    epoch: int | None,
    inserts: Sequence[Sequence[Any]],
    keys: Sequence[Sequence[Any]],
    updates: Sequence[Sequence[Any]],
    events: Sequence[Sequence[Any]],
    attempts: Sequence[Sequence[Any]],
    replay: bool = False,
) -> tuple[str, list[Any]]:
    """The whole group as one statement of CTEs (the main query runs the epoch check)."""
    st = Statement()
    ctes = []
    if inserts:
        ctes.append(f"ins AS ({insert_tasks(st, inserts, replay)})")
    if keys:
        ctes.append(f"keys AS ({insert_keys(st, keys, replay)})")
    for name, rows, build in (
        ("upd", updates, update_tasks),
        ("ev", events, upsert_events),
        ("att", attempts, upsert_attempts),
    ):
        if rows:
            ctes.append(f"{name} AS ({build(st, rows)})")
    main = fence(st, epoch) if epoch is not None else "SELECT true"
    return (f"WITH {', '.join(ctes)} {main}" if ctes else main), st.args


PURGE_ROOTS = """
WITH gone AS (SELECT id FROM tasks WHERE root_id = ANY($1::text[])),
     e AS (DELETE FROM task_events WHERE task_id IN (SELECT id FROM gone)),
     a AS (DELETE FROM task_attempts WHERE task_id IN (SELECT id FROM gone)),
     k AS (DELETE FROM task_keys WHERE root_id = ANY($1::text[]))
DELETE FROM tasks WHERE root_id = ANY($1::text[])
"""

"""Who may address which mailbox: pure rules, no I/O.

An agent (a caller identified as running inside a task, by the metadata
`maos-task-id`) stays inside its own task tree, as with shared state: it may
send to the tasks of its tree, broadcast to its tree, and read and
acknowledge only its own mailbox. Topics are how trees talk to each other:
anyone may publish to any topic and read any subscription. A caller outside
any task (an operator at maosctl, an external program) may do everything:
MAOS has no authentication yet, so nothing tells one operator from another;
when it does, this is where roles will be checked.
"""

from __future__ import annotations

from maos.errors import PermissionDenied

from ._directory import TaskInfo
from ._names import MailboxName, task_mailbox


def check_send(caller: TaskInfo | None, target: TaskInfo) -> None:
    """An agent sends only to tasks of its own tree."""
    if caller is not None and caller.root_id != target.root_id:
        raise PermissionDenied(
            f"task {caller.task_id} belongs to task tree {caller.root_id}; it may not send to task "
            f"{target.task_id} of task tree {target.root_id} — publish to a topic to reach another tree"
        )


def check_broadcast(caller: TaskInfo | None, root_id: str) -> None:
    """An agent broadcasts only to its own tree."""
    if caller is not None and caller.root_id != root_id:
        raise PermissionDenied(
            f"task {caller.task_id} belongs to task tree {caller.root_id}; it may not broadcast to task tree {root_id}"
        )


def check_read(caller: TaskInfo | None, mailbox: MailboxName) -> None:
    """An agent reads (and acknowledges) only its own task mailbox; subscriptions are open."""
    if caller is not None and mailbox.is_task and mailbox.task_id != caller.task_id:
        raise PermissionDenied(
            f"task {caller.task_id} may read only its own mailbox {task_mailbox(caller.task_id)}, not {mailbox}"
        )

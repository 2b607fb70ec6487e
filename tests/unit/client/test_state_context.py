"""ctx.state stays cheap for agent workers until it is used."""

from __future__ import annotations

import subprocess
import sys

from maos.client._context_state import TaskState


def test_task_state_imports_no_grpc_until_used() -> None:
    code = (
        "import sys\n"
        "from maos.client._context_state import TaskState\n"
        "s = TaskState(task_id='T', attempt=2, root_id='R', endpoint='127.0.0.1:1')\n"
        "print('grpc' in sys.modules, 'maos.v1.state_pb2' in sys.modules, s.namespace)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "tree:R"]


def test_a_task_without_a_root_is_its_own_root() -> None:
    assert TaskState(task_id="T7").namespace == "tree:T7"
    assert repr(TaskState(task_id="T7", root_id="R")) == "TaskState(namespace='tree:R')"

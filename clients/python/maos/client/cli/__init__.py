"""`maosctl`: the MAOS command line (click).

Commands live in small modules: _tasks (task ...), _hosts (host/agent/status),
_daemons (controlplane, agenthost, up); output helpers in _output/_views, the
live display in _progress, the demo in _demo.
"""

from ._app import cli as cli
from ._app import main as main
from ._daemons import agenthost, controlplane, up
from ._hosts import agent_group, host_group, status
from ._tasks import task_group

for _command in (task_group, host_group, agent_group, status, up, controlplane, agenthost):
    cli.add_command(_command)

__all__ = ["cli", "main"]

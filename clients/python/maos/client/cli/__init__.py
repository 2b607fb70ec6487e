"""`maosctl`: the MAOS command line (click).

Commands live in small modules: _tasks (task ...), _task_graph (task priority,
plan, submit-from-template), _workflow, _batches, _templates, _config, _hosts
(host/agent/status), _checkpoints, _daemons (controlplane, agenthost, up), _metrics_commands
(metrics, alerts, agent metrics), _monitor, _report; output helpers
in _output and the *_views modules, the live display in _progress, the demo
in _demo.
"""

from ._analyze import analyze, compare
from ._app import cli as cli
from ._app import main as main
from ._batches import batch_group
from ._bench import bench
from ._checkpoints import checkpoint_group
from ._config import config_group
from ._daemons import agenthost, controlplane, up
from ._hosts import agent_group, host_group, status
from ._messages import msg_group
from ._metrics_commands import agent_metrics, alerts, metrics
from ._monitor import monitor
from ._report import report
from ._state import state_group
from ._task_graph import plan, priority, submit_from_template
from ._tasks import task_group
from ._templates import template_group
from ._workflow import workflow_group

for _task_command in (priority, plan, submit_from_template, analyze, compare):
    task_group.add_command(_task_command)
agent_group.add_command(agent_metrics)
for _command in (
    task_group,
    workflow_group,
    batch_group,
    template_group,
    config_group,
    state_group,
    msg_group,
    checkpoint_group,
    host_group,
    agent_group,
    status,
    up,
    controlplane,
    agenthost,
    bench,
    metrics,
    alerts,
    report,
    monitor,
):
    cli.add_command(_command)

__all__ = ["cli", "main"]

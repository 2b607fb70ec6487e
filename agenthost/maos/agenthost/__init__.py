"""The MAOS agent host: one daemon per machine that runs agents in worker processes.

    from maos.agenthost import AgentHostConfig, run_agent_host
    await run_agent_host(AgentHostConfig(controlplane="127.0.0.1:7700", workers=4))

Names that need grpc (AgentHost, run_agent_host) load on first use, so a
worker process (`python -m maos.agenthost.worker`) imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import AgentHostConfig as AgentHostConfig

if TYPE_CHECKING:
    from ._daemon import AgentHost as AgentHost
    from ._daemon import run_agent_host as run_agent_host
    from ._pool import Outcome as Outcome
    from ._pool import PoolListener as PoolListener
    from ._pool import PoolTask as PoolTask
    from ._pool import TaskOutcome as TaskOutcome
    from ._pool import WorkerInfo as WorkerInfo
    from ._pool import WorkerPool as WorkerPool
    from ._pool import WorkerStatus as WorkerStatus

__all__ = [
    "AgentHost",
    "AgentHostConfig",
    "Outcome",
    "PoolListener",
    "PoolTask",
    "TaskOutcome",
    "WorkerInfo",
    "WorkerPool",
    "WorkerStatus",
    "run_agent_host",
]

_LAZY = {
    "AgentHost": "._daemon",
    "run_agent_host": "._daemon",
    "Outcome": "._pool",
    "PoolListener": "._pool",
    "PoolTask": "._pool",
    "TaskOutcome": "._pool",
    "WorkerInfo": "._pool",
    "WorkerPool": "._pool",
    "WorkerStatus": "._pool",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

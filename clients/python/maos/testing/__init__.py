"""Run real MAOS daemons as child processes: for tests of your agents, and for benchmarks."""

from maos.client.cli._local import Daemon as Daemon

from ._cluster import ControlPlaneProcess as ControlPlaneProcess
from ._cluster import connected_hosts as connected_hosts
from ._cluster import start_agenthost as start_agenthost
from ._cluster import start_controlplane as start_controlplane
from ._cluster import wait_for_hosts as wait_for_hosts

__all__ = [
    "ControlPlaneProcess",
    "Daemon",
    "connected_hosts",
    "start_agenthost",
    "start_controlplane",
    "wait_for_hosts",
]

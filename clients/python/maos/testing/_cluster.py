"""Real daemons as child processes: for tests of agents, the e2e suite and benchmarks.

Built on the same launcher as `maosctl up`. Servers bind port 0 and report the
port through a ready file; every process logs to a file so a failure can be
read back.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import grpc
from maos.client.cli._local import Daemon, spawn_daemon, wait_ready_file
from maos.v1 import hosts_pb2, hosts_pb2_grpc


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Agent functions are imported by module path in the workers: let them see the caller's cwd.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH", "")) if p)
    env.setdefault("MAOS_LOG_LEVEL", "info")
    return env


class ControlPlaneProcess(Daemon):
    """A control-plane daemon and the endpoint it reported."""

    endpoint: str = ""


def start_controlplane(
    data_dir: Path,
    *,
    listen: str = "127.0.0.1:0",
    agents: Path | None = None,
    extra: list[str] | None = None,
    timeout: float = 30.0,
) -> ControlPlaneProcess:
    ready = data_dir / "ready.json"
    ready.unlink(missing_ok=True)
    args = [sys.executable, "-m", "maos.controlplane", "--listen", listen]
    args += ["--data-dir", str(data_dir), "--ready-file", str(ready)]
    if agents is not None:
        args += ["--agents", str(agents)]
    daemon = spawn_daemon("control plane", args + (extra or []), data_dir / "controlplane.log", env=_env())
    cp = ControlPlaneProcess(daemon.name, daemon.process, daemon.log)
    try:
        cp.endpoint = wait_ready_file(cp, ready, timeout)
    except Exception:
        cp.kill()
        raise
    return cp


def start_agenthost(
    endpoint: str,
    log_dir: Path,
    *,
    workers: int = 2,
    agents: Path | None = None,
    host_id: str | None = None,
    extra: list[str] | None = None,
) -> Daemon:
    args = [sys.executable, "-m", "maos.agenthost", "--controlplane", endpoint, "--workers", str(workers)]
    if agents is not None:
        args += ["--agents", str(agents)]
    if host_id is not None:
        args += ["--host-id", host_id]
    name = host_id or f"host-{time.monotonic_ns()}"
    return spawn_daemon("agent host", args + (extra or []), log_dir / f"{name}.log", env=_env())


def connected_hosts(endpoint: str) -> list[hosts_pb2.Host]:
    with grpc.insecure_channel(endpoint) as channel:
        stub = hosts_pb2_grpc.HostServiceStub(channel)
        return list(stub.ListHosts(hosts_pb2.ListHostsRequest(), timeout=5).hosts)


def wait_for_hosts(endpoint: str, count: int, timeout: float = 30.0) -> list[hosts_pb2.Host]:
    deadline = time.monotonic() + timeout
    while True:
        hosts = connected_hosts(endpoint)
        if len(hosts) >= count:
            return hosts
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(hosts)} of {count} hosts connected after {timeout}s")
        time.sleep(0.05)

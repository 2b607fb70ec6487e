"""E2E fixtures: a real control plane and agent host as processes, and `maosctl` as a user runs it.

Set MAOS_E2E_ENDPOINT=HOST:PORT to run the suite against a cluster that is
already up instead of starting one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from maos.client import Client
from maos.errors import Unavailable

MAOSCTL = Path(sys.executable).with_name("maosctl")
START_TIMEOUT_SECONDS = 30.0

# Admin-defined command agents the tests need on top of the built-ins: a task
# that runs until cancelled, and one that takes a known second (so a follower
# surely attaches before a workflow ends).
E2E_AGENTS = """\
agent_types:
  sleeper:
    description: Sleeps for two minutes; e2e tests cancel it while it runs.
    capabilities: [test]
    runner: {command: ["sleep", "120"]}
    timeout: 300
  nap:
    description: Sleeps for one second.
    capabilities: [test]
    runner: {command: ["sleep", "1"]}
    timeout: 60
"""


@dataclass(frozen=True)
class Cluster:
    """Where the suite's control plane listens and where its daemons log."""

    endpoint: str
    data_dir: Path


@dataclass(frozen=True)
class Run:
    """One finished `maosctl` invocation."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    external = os.environ.get("MAOS_E2E_ENDPOINT")
    if external:
        yield Cluster(external, Path("."))
        return
    data = tmp_path_factory.mktemp("maos-e2e")
    agents = data / "agents.yaml"
    agents.write_text(E2E_AGENTS)
    ready = data / "ready.json"
    cp_log = data / "controlplane.log"
    ah_log = data / "agenthost.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with cp_log.open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "maos.controlplane", "--listen", "127.0.0.1:0"),
                        *("--data-dir", str(data), "--ready-file", str(ready), "--agents", str(agents)),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready.exists():
            if processes[0].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the control plane did not start:\n{_tail(cp_log)}")
            time.sleep(0.05)
        time.sleep(0.05)  # the ready file is written atomically, but be gentle with a slow disk
        endpoint = json.loads(ready.read_text())["endpoint"]
        with ah_log.open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "maos.agenthost", "--controlplane", endpoint),
                        *("--workers", "2", "--agents", str(agents)),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        with Client(endpoint) as client:
            while True:
                with contextlib.suppress(Unavailable):
                    if client.list_hosts():
                        break
                if processes[1].poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the agent host did not register:\n{_tail(ah_log)}\n--\n{_tail(cp_log)}")
                time.sleep(0.1)
        yield Cluster(endpoint, data)
    finally:
        for process in reversed(processes):
            _stop(process)


@pytest.fixture
def maosctl(cluster: Cluster) -> Callable[..., Run]:
    """Run `maosctl ARGS...` against the suite's cluster (MAOS_ENDPOINT in its environment)."""

    def run(*args: str, endpoint: str | None = None, timeout: float = 60.0) -> Run:
        env = {**os.environ, "MAOS_ENDPOINT": endpoint or cluster.endpoint, "NO_COLOR": "1"}
        done = subprocess.run(
            [str(MAOSCTL), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        result = Run(tuple(args), done.returncode, done.stdout, done.stderr)
        # Whatever happens, a user never sees a Python traceback.
        assert "Traceback" not in done.stderr, done.stderr
        assert "Traceback" not in done.stdout, done.stdout
        return result

    return run

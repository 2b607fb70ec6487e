"""The public names of maos.agenthost and maos.profiles."""

from __future__ import annotations

import subprocess
import sys

import maos.agenthost
import maos.profiles


def test_agenthost_all() -> None:
    assert sorted(maos.agenthost.__all__) == [
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
    for name in maos.agenthost.__all__:
        assert getattr(maos.agenthost, name) is not None


def test_profiles_all() -> None:
    assert sorted(maos.profiles.__all__) == [
        "AgentProfile",
        "BUILTIN_FILE",
        "CommandRunner",
        "PythonRunner",
        "Runner",
        "RunnerKind",
        "load_profiles",
        "load_profiles_file",
        "parse_duration",
        "parse_profile",
        "parse_profiles",
        "parse_size",
    ]


def test_worker_imports_stay_light() -> None:
    # A worker process imports these; none may pull in grpc.
    code = (
        "import sys, maos.agenthost, maos.agenthost._worker_main, maos.agenthost.builtin.analyst; "
        "print('grpc' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""Fixtures for checkpoint tests: control planes on data directories of their own, an agent
host, the SDK clients, maosctl as a user types it, and a local S3 server (moto)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from maos.client import CheckpointClient, Client
from maos.testing import ControlPlaneProcess, Daemon, start_agenthost, start_controlplane, wait_for_hosts

TEST_AGENTS = Path(__file__).parents[1] / "agents.yaml"
MAOSCTL = Path(sys.executable).with_name("maosctl")
S3_ENV = {"AWS_ACCESS_KEY_ID": "maos-test", "AWS_SECRET_ACCESS_KEY": "maos-test", "AWS_DEFAULT_REGION": "us-east-1"}


class Plane:
    """One control plane (and optional hosts) on a data directory of its own."""

    def __init__(self, root: Path, name: str) -> None:
        self.data_dir = root / name
        self.cp: ControlPlaneProcess | None = None
        self.hosts: list[Daemon] = []
        self._clients: list[Any] = []

    def start(self, *extra: str) -> Plane:
        self.cp = start_controlplane(self.data_dir, agents=TEST_AGENTS, extra=list(extra))
        return self

    @property
    def endpoint(self) -> str:
        assert self.cp is not None
        return self.cp.endpoint

    def add_host(self, workers: int = 2) -> Daemon:
        host = start_agenthost(self.endpoint, self.data_dir / "hosts", workers=workers, agents=TEST_AGENTS)
        self.hosts.append(host)
        wait_for_hosts(self.endpoint, len(self.hosts))
        return host

    def client(self) -> Client:
        client = Client(self.endpoint, timeout=30)
        self._clients.append(client)
        return client

    def checkpoints(self) -> CheckpointClient:
        client = CheckpointClient(self.endpoint, timeout=30)
        self._clients.append(client)
        return client

    def maosctl(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MAOSCTL), "--endpoint", self.endpoint, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
            check=False,
        )

    def maosctl_json(self, *args: str) -> Any:
        done = self.maosctl("--format", "json", *args)
        assert done.returncode == 0, done.stderr
        return orjson.loads(done.stdout)

    def logs(self) -> str:
        parts = [f"--- {d.log.name}\n{d.log_text()[-3000:]}" for d in [self.cp, *self.hosts] if d is not None]
        return "\n".join(parts)

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        for host in self.hosts:
            host.stop()
        self.hosts.clear()
        if self.cp is not None:
            self.cp.stop()


@pytest.fixture
def planes(tmp_path: Path) -> Iterator[Any]:
    """Make control planes with `planes("name", *flags)`; all are stopped after the test."""
    made: list[Plane] = []

    def make(name: str, *extra: str) -> Plane:
        plane = Plane(tmp_path, name).start(*extra)
        made.append(plane)
        return plane

    yield make
    for plane in made:
        plane.stop()


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local S3 server (moto's server mode) on a free loopback port; small multipart parts allowed."""
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, **S3_ENV, "S3_UPLOAD_PART_MIN_SIZE": "1024"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"], stdout=log, stderr=log, env=env
        )
    try:
        deadline = time.monotonic() + 30
        while (found := re.search(rb"Running on (http://127\.0\.0\.1:\d+)", log_path.read_bytes())) is None:
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        yield found.group(1).decode()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client of the local S3 server; the control planes this test starts get its credentials."""
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    return boto3.client("s3", endpoint_url=s3_endpoint)

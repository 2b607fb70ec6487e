"""Fixtures: a real control plane and agent hosts as processes, on port 0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from maos.testing import ControlPlaneProcess, Daemon, start_agenthost, start_controlplane, wait_for_hosts

from tests.support.api import RawApi

TEST_AGENTS = Path(__file__).parent / "agents.yaml"


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cp: ControlPlaneProcess | None = None
        self.hosts: list[Daemon] = []
        self._api: RawApi | None = None

    @property
    def endpoint(self) -> str:
        assert self.cp is not None
        return self.cp.endpoint

    @property
    def api(self) -> RawApi:
        if self._api is None:
            self._api = RawApi(self.endpoint)
        return self._api

    def start_controlplane(self, listen: str = "127.0.0.1:0", extra: list[str] | None = None) -> ControlPlaneProcess:
        self.cp = start_controlplane(self.root / "cp", listen=listen, agents=TEST_AGENTS, extra=extra)
        if self._api is not None:
            self._api.close()
            self._api = None
        return self.cp

    def add_host(self, workers: int = 2, host_id: str | None = None, wait: bool = True) -> Daemon:
        host = start_agenthost(self.endpoint, self.root / "hosts", workers=workers, agents=TEST_AGENTS, host_id=host_id)
        self.hosts.append(host)
        if wait:
            wait_for_hosts(self.endpoint, sum(1 for h in self.hosts if h.alive()))
        return host

    def logs(self) -> str:
        parts = []
        for proc in [self.cp, *self.hosts]:
            if proc is not None:
                parts.append(f"--- {proc.log.name}\n{proc.log_text()[-4000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        if self._api is not None:
            self._api.close()
        for host in self.hosts:
            host.stop()
        if self.cp is not None:
            self.cp.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One control plane and one 2-worker host shared by a module's tests."""
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    c.start_controlplane()
    c.add_host(workers=2)
    yield c
    c.stop()


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of the test's own, for tests that kill things."""
    c = Cluster(tmp_path)
    yield c
    c.stop()

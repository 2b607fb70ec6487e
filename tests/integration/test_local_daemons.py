"""Daemons started by maosctl's launcher (spawn_daemon)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from maos.client.cli._local import Daemon, spawn_daemon


def test_a_daemon_started_from_a_worker_thread_outlives_the_thread(tmp_path: Path) -> None:
    started: list[Daemon] = []
    worker = threading.Thread(target=lambda: started.append(spawn_daemon("sleeper", ["sleep", "30"], tmp_path / "l")))
    worker.start()
    worker.join()
    try:
        time.sleep(0.5)  # a parent-death signal tied to the finished thread would have landed by now
        assert started[0].process.poll() is None
    finally:
        started[0].process.kill()
        started[0].process.wait()

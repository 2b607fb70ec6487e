"""Relay socket directories of hosts that are gone are removed by the next host (a SIGKILLed host
cannot clean up after itself); live ones are left alone."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from maos.agenthost._relay_server import OWNER_FILE, RELAY_DIR_PREFIX, sweep_stale_relay_dirs


def _relay_dir(tmp: Path, name: str, owner: int | None) -> Path:
    path = tmp / f"{RELAY_DIR_PREFIX}{name}"
    path.mkdir()
    (path / "frames.sock").write_bytes(b"")
    if owner is not None:
        (path / OWNER_FILE).write_text(str(owner))
    return path


def test_only_the_directories_of_hosts_that_are_gone_are_removed(tmp_path: Path) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()  # its pid now names no process
    dead = _relay_dir(tmp_path, "dead", ended.pid)
    alive = _relay_dir(tmp_path, "alive", os.getpid())
    # Older hosts wrote no owner file: judged by whether anything accepts on the socket.
    unowned_dead = _relay_dir(tmp_path, "old-dead", None)
    with socket.socket(socket.AF_UNIX) as gone:
        gone.bind(str(unowned_dead / "messages.sock"))  # bound, never listening, closed: refuses
    unowned_live = _relay_dir(tmp_path, "old-live", None)
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(unowned_live / "messages.sock"))
    listening.listen()
    unrelated = tmp_path / "something-else"
    unrelated.mkdir()
    try:
        assert sweep_stale_relay_dirs(tmp_path) == 2
    finally:
        listening.close()
    assert not dead.exists() and not unowned_dead.exists()
    assert alive.exists() and unowned_live.exists() and unrelated.exists()

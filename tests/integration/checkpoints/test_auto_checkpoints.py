"""Automatic checkpoints: `maosctl config set checkpoints.interval N` starts them at once on a
running control plane, and only the newest `checkpoints.retention.count` automatic ones are kept."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .conftest import Plane


@pytest.mark.slow
def test_interval_and_retention_are_live_settings(planes: Any) -> None:
    plane: Plane = planes("cp")
    plane.client().submit_task("something to keep", agent_type="echo")
    manual = plane.checkpoints().create(label="kept by hand")
    shown = {e["key"]: e for e in plane.maosctl_json("config", "list")}
    assert shown["checkpoints.interval"]["value"] == "0" and shown["checkpoints.retention.count"]["value"] == "24"

    client = plane.client()
    client.set_config("checkpoints.retention.count", "2")
    assert plane.maosctl("config", "set", "checkpoints.interval", "0.3").returncode == 0
    deadline = time.monotonic() + 60
    seen: set[str] = set()
    while len(seen) < 4:
        automatic = [c for c in plane.checkpoints().list() if c.trigger == "automatic"]
        seen |= {c.id for c in automatic}
        assert len(automatic) <= 3, "retention keeps 2 (a third may be in the making)"
        assert time.monotonic() < deadline, f"only {len(seen)} automatic checkpoints so far"
        time.sleep(0.2)
    client.set_config("checkpoints.interval", "0")
    time.sleep(0.5)  # a checkpoint in progress when it was turned off finishes
    listed = plane.checkpoints().list()
    automatic = [c for c in listed if c.trigger == "automatic"]
    assert len(automatic) <= 3
    assert manual.id in {c.id for c in listed}, "retention never deletes manual checkpoints"
    assert all(c.counts["tasks"] == 1 for c in automatic)

    bad = plane.maosctl("config", "set", "checkpoints.retention.count", "0")
    assert bad.returncode == 1 and bad.stderr == "error: '0' is not a whole number >= 1\n"

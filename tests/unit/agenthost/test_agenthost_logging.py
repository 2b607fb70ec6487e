"""The daemon's JSON-lines logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from maos.agenthost._logging import configure_logging, task_id_var


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root")
def test_one_json_object_per_line_with_bound_ids() -> None:
    stream = io.StringIO()
    configure_logging("INFO", host_id="h-1", stream=stream)
    log = logging.getLogger("maos.agenthost.test")
    log.debug("hidden")
    log.info("plain %d", 1)
    log.warning("with task", extra={"task_id": "t-9"})
    token = task_id_var.set("t-ctx")
    try:
        log.error("from context")
    finally:
        task_id_var.reset(token)
    try:
        raise RuntimeError("bad")
    except RuntimeError:
        log.exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["msg"] for line in lines] == ["plain 1", "with task", "from context", "failed"]
    first = lines[0]
    assert set(first) == {"ts", "level", "logger", "msg", "host_id"}
    assert first["level"] == "INFO"
    assert first["logger"] == "maos.agenthost.test"
    assert first["host_id"] == "h-1"
    assert first["ts"].endswith("Z")
    assert lines[1]["task_id"] == "t-9"
    assert lines[2]["task_id"] == "t-ctx"
    assert "RuntimeError: bad" in lines[3]["exc"]


@pytest.mark.usefixtures("restore_root")
def test_configure_twice_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first)
    configure_logging("INFO", stream=second)
    logging.getLogger("maos.x").info("once")
    assert first.getvalue() == ""
    assert json.loads(second.getvalue())["msg"] == "once"

"""TaskEnv: per-task environment variables set in place, seen by Python and the C environment, restored."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator

import pytest
from maos.agenthost._task_env import TaskEnv

KEYS = ("MAOS_TEST_ENV_A", "MAOS_TEST_ENV_B")

_libc = ctypes.CDLL(None)
_libc.getenv.argtypes = [ctypes.c_char_p]
_libc.getenv.restype = ctypes.c_void_p


def c_getenv(key: str) -> tuple[str | None, int]:
    """What a child process would inherit (the C environment), and where the string lives."""
    address = _libc.getenv(key.encode())
    if not address:
        return None, 0
    return ctypes.string_at(address).decode(), address


@pytest.fixture
def clean() -> Iterator[None]:
    for key in KEYS:
        os.environ.pop(key, None)
    os.environ["MAOS_TEST_ENV_B"] = "before"
    yield
    for key in KEYS:
        os.environ.pop(key, None)


@pytest.mark.usefixtures("clean")
def test_update_sets_python_and_c_environment_and_restore_undoes_it() -> None:
    env = TaskEnv(KEYS)
    assert not env.active
    env.update(("t1", "x"))
    assert env.active
    assert (os.environ["MAOS_TEST_ENV_A"], os.getenv("MAOS_TEST_ENV_B")) == ("t1", "x")
    assert (c_getenv("MAOS_TEST_ENV_A")[0], c_getenv("MAOS_TEST_ENV_B")[0]) == ("t1", "x")
    env.update(("t2-longer-than-before", "x"))
    env.update(("t3", "y"))
    assert (os.environ["MAOS_TEST_ENV_A"], os.environ["MAOS_TEST_ENV_B"]) == ("t3", "y")
    assert (c_getenv("MAOS_TEST_ENV_A")[0], c_getenv("MAOS_TEST_ENV_B")[0]) == ("t3", "y")
    env.restore()
    assert not env.active
    assert "MAOS_TEST_ENV_A" not in os.environ
    assert c_getenv("MAOS_TEST_ENV_A") == (None, 0)
    assert os.environ["MAOS_TEST_ENV_B"] == "before"
    assert c_getenv("MAOS_TEST_ENV_B")[0] == "before"
    env.update(("t4", "z"))  # usable again after a restore
    assert (c_getenv("MAOS_TEST_ENV_A")[0], os.environ["MAOS_TEST_ENV_B"]) == ("t4", "z")
    env.restore()


@pytest.mark.usefixtures("clean")
def test_values_are_rewritten_in_place_so_nothing_accumulates() -> None:
    # setenv(3) would keep a copy of every distinct value for the life of the process.
    env = TaskEnv(KEYS)
    env.update(("first", "b"))
    _, address = c_getenv("MAOS_TEST_ENV_A")
    for i in range(1000):
        env.update((f"task-{i}", "b"))
        assert c_getenv("MAOS_TEST_ENV_A") == (f"task-{i}", address)
    env.restore()


@pytest.mark.usefixtures("clean")
def test_agent_code_replacing_or_deleting_a_variable_does_not_stick() -> None:
    env = TaskEnv(KEYS)
    env.update(("t1", "b"))
    os.environ["MAOS_TEST_ENV_A"] = "set by agent code"
    env.update(("t2", "b"))
    assert os.environ["MAOS_TEST_ENV_A"] == "t2"
    assert c_getenv("MAOS_TEST_ENV_A")[0] == "t2"
    del os.environ["MAOS_TEST_ENV_A"]
    env.update(("t3", "b"))
    assert os.environ["MAOS_TEST_ENV_A"] == "t3"
    assert c_getenv("MAOS_TEST_ENV_A")[0] == "t3"
    env.restore()


@pytest.mark.usefixtures("clean")
def test_a_long_value_gets_a_bigger_buffer() -> None:
    env = TaskEnv(KEYS)
    env.update(("short", "b"))
    long = "v" * 1000
    env.update((long, "b"))
    assert os.environ["MAOS_TEST_ENV_A"] == long
    assert c_getenv("MAOS_TEST_ENV_A")[0] == long
    env.update(("short again", "b"))
    assert c_getenv("MAOS_TEST_ENV_A")[0] == "short again"
    env.restore()

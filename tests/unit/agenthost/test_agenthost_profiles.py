"""Agent profiles: the built-ins, merging a user file, and precise validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from maos.errors import InvalidArgument
from maos.profiles import (
    AgentProfile,
    CommandRunner,
    PythonRunner,
    load_profiles,
    parse_duration,
    parse_profiles,
    parse_size,
)

ROOT = Path(__file__).resolve().parents[3]


def test_builtins() -> None:
    profiles = load_profiles()
    assert {"echo", "analyst", "coordinator", "shell"} <= set(profiles)
    echo = profiles["echo"]
    assert echo.runner == PythonRunner("maos.agenthost.builtin.echo:run")
    assert echo.batch_size == 64
    analyst = profiles["analyst"]
    assert analyst.capabilities == ("data_analysis", "statistics")
    assert analyst.memory_limit_bytes == 2 * 1024**3
    assert analyst.cpu_cores == 1.0
    assert analyst.runner_kind == "python"
    shell = profiles["shell"]
    assert isinstance(shell.runner, CommandRunner)
    assert "{description}" in shell.runner.argv
    assert shell.runner_kind == "command"


def test_user_file_is_merged_and_wins(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        """
agent_types:
  echo:
    runner: {python: "my.module:echo"}
    timeout: 5
  claude-code:
    capabilities: [code_generation]
    runner: {command: ["claude", "-p", "{description}"]}
    timeout: 1800
"""
    )
    profiles = load_profiles(path)
    assert profiles["echo"].runner == PythonRunner("my.module:echo")
    assert profiles["echo"].timeout_seconds == 5.0
    assert profiles["echo"].batch_size == 1
    assert profiles["claude-code"] == AgentProfile(
        name="claude-code",
        capabilities=("code_generation",),
        runner=CommandRunner(("claude", "-p", "{description}")),
        timeout_seconds=1800.0,
    )
    assert "analyst" in profiles


def test_the_example_deploy_file_loads() -> None:
    profiles = load_profiles(ROOT / "deploy" / "agents.yaml")
    assert isinstance(profiles["claude-code"].runner, CommandRunner)
    assert profiles["claude-code"].runner.argv == ("claude", "-p", "{description}")


def test_empty_file_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    assert set(load_profiles(path)) == set(load_profiles())


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"nope\.yaml: cannot read agent profiles"):
        load_profiles(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("runner: {shell: 'rm -rf /'}", "agents.yaml: agent type 'x': runner must be {python: 'module:function'} or"),
        ("runner: 'module:fn'", "agent type 'x': runner must be"),
        ("timeout: 5", "agent type 'x': runner must be"),
        ("runner: {python: 'no_colon'}", "agent type 'x': runner.python must look like 'package.module:function'"),
        ("runner: {python: 'a:b', command: [x]}", "agent type 'x': runner must be"),
        ("runner: {command: []}", "agent type 'x': runner.command must be a non-empty list"),
        ("runner: {command: 'claude -p x'}", "agent type 'x': runner.command must be a non-empty list"),
        ("runner: {command: [sleep, 5]}", "runner.command arguments must be strings (quote numbers), got 5"),
        ("runner: {python: 'a:b'}\n    timeout: -1", "agent type 'x': timeout: expected a positive number"),
        ("runner: {python: 'a:b'}\n    timeout: soon", "agent type 'x': timeout:"),
        ("runner: {python: 'a:b'}\n    batch_size: 0", "agent type 'x': batch_size must be an integer from 1"),
        ("runner: {python: 'a:b'}\n    batch_size: 2.5", "batch_size must be an integer"),
        ("runner: {python: 'a:b'}\n    resources: {memory: lots}", "agent type 'x': resources.memory: expected a size"),
        ("runner: {python: 'a:b'}\n    resources: {cpu: -1}", "agent type 'x': resources.cpu must be a positive"),
        ("runner: {python: 'a:b'}\n    resources: {gpu: 1}", "agent type 'x': resources: unknown field 'gpu'"),
        ("runner: {python: 'a:b'}\n    capabilities: code", "agent type 'x': capabilities must be a list"),
        ("runner: {python: 'a:b'}\n    timout: 5", "agent type 'x': unknown field 'timout'"),
    ],
)
def test_invalid_profiles_name_file_type_and_field(spec: str, message: str) -> None:
    text = f"agent_types:\n  x:\n    {spec}\n"
    with pytest.raises(InvalidArgument) as info:
        parse_profiles(text, source="agents.yaml")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agent_types: [a, b]", "agents.yaml: 'agent_types' must be a mapping"),
        ("- a\n- b\n", "agents.yaml: the top level must be a mapping"),
        ("agents: {}", "agents.yaml: unknown top-level key 'agents'"),
        ("agent_types: {'bad name': {runner: {python: 'a:b'}}}", "agent type name 'bad name' must be"),
        ("agent_types: {x: [1]}", "agent type 'x': must be a mapping"),
        ("agent_types: {x: {runner: {python: 'a:b'}}", "agents.yaml: not valid YAML"),
    ],
)
def test_invalid_documents(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_profiles(text, source="agents.yaml")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1048576, 1048576),
        ("512MB", 512 * 1024**2),
        ("2GB", 2 * 1024**3),
        ("2G", 2 * 1024**3),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("64k", 64 * 1024),
        ("100", 100),
        ("100B", 100),
        (" 3 mb ", 3 * 1024**2),
    ],
)
def test_sizes(value: object, expected: int) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize("value", ["", "abc", "-5MB", "0", 0, True, "5XB", "2GBs", 1.5, None])
def test_bad_sizes(value: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(value)


@pytest.mark.parametrize(
    ("value", "expected"), [(30, 30.0), (2.5, 2.5), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("500ms", 0.5)]
)
def test_durations(value: object, expected: float) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", [0, -1, "x", "5d", float("inf"), float("nan"), False])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="seconds"):
        parse_duration(value)

"""Argv templates of command agents: substitution per argument, never a shell."""

from __future__ import annotations

from maos.agenthost._runners import substitute_argv, uses_placeholder

VALUES = {"description": "d", "input": '{"k": 1}', "task_id": "t-1", "attempt": "2", "input_file": "/tmp/in.json"}


def test_each_placeholder_is_substituted() -> None:
    template = ["prog", "{description}", "--in={input}", "{task_id}/{attempt}", "{input_file}"]
    assert substitute_argv(template, VALUES) == ["prog", "d", '--in={"k": 1}', "t-1/2", "/tmp/in.json"]


def test_shell_metacharacters_stay_one_inert_argument() -> None:
    evil = "; rm -rf / && $(reboot) `id` | cat > /etc/passwd"
    argv = substitute_argv(["claude", "-p", "{description}"], {**VALUES, "description": evil})
    assert argv == ["claude", "-p", evil]
    assert len(argv) == 3


def test_values_are_not_expanded_twice() -> None:
    # A description that itself looks like a placeholder stays literal.
    argv = substitute_argv(["x", "{description}"], {**VALUES, "description": "{input} {task_id}"})
    assert argv == ["x", "{input} {task_id}"]


def test_unknown_braces_stay_literal() -> None:
    assert substitute_argv(["awk", "{print $1}", "{nope}"], VALUES) == ["awk", "{print $1}", "{nope}"]


def test_missing_value_leaves_the_placeholder() -> None:
    assert substitute_argv(["{input_file}"], {"description": ""}) == ["{input_file}"]


def test_uses_placeholder() -> None:
    assert uses_placeholder(["cat", "{input_file}"], "input_file")
    assert not uses_placeholder(["cat", "{input}"], "input_file")

"""`maosctl msg` against the in-process MessageService: what a command agent or operator types."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from maos.client.cli import cli
from maos.client.cli._app import MaosGroup
from maos.client.cli._messages import msg_group
from maos.controlplane.messaging import MessagingConfig

from tests.support.messaging import MessageServer


def maosctl() -> click.Group:
    """The real root group with `msg` under it, as the CLI registers it."""
    root = MaosGroup(name="maosctl", params=cli.params, callback=cli.callback, commands=dict(cli.commands))
    root.add_command(msg_group)
    return root


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[MessageServer]:
    s = MessageServer(tmp_path / "maos.db", MessagingConfig(max_queued=3))
    for task in ("A", "B"):
        s.tasks.add(task, "A")
    await s.start()
    yield s
    await s.stop()


async def run(server: MessageServer, *args: str, task: str | None = None, stdin: str | None = None) -> Result:
    env = {"MAOS_TASK_ID": task, "MAOS_ATTEMPT": "1" if task else None}
    runner = CliRunner()
    # The CLI blocks; the service runs on this event loop, so the CLI runs in a thread.
    return await asyncio.to_thread(
        runner.invoke, maosctl(), ["--endpoint", server.endpoint, *args], env=env, input=stdin
    )


async def test_send_receive_as_a_command_agent(server: MessageServer) -> None:
    sent = await run(server, "msg", "send", "B", '{"x": 1}', "--priority", "high", task="A")
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.startswith("sent ") and sent.stdout.strip().endswith("to 1 mailbox (task:B)")
    await run(server, "msg", "send", "B", "-", task="A", stdin='"from stdin"')
    got = await run(server, "msg", "receive", "--max", "10", "--format", "json", task="B")
    assert got.exit_code == 0, got.output
    docs = json.loads(got.stdout)
    assert [(d["from"], d["priority"], d["payload"]) for d in docs] == [
        ("A", "high", {"x": 1}),
        ("A", "medium", "from stdin"),
    ]
    again = await run(server, "msg", "receive", "--mailbox", "task:B")
    assert again.stdout.strip() == "(no messages)"  # the first receive acknowledged them


async def test_bad_input_is_one_clear_line(server: MessageServer) -> None:
    cases = [
        (
            ("msg", "send", "B", "{oops"),
            "error: JSON is not valid JSON: Expecting property name enclosed in double quotes",
        ),
        (("msg", "send", "B", "hello"), """a JSON string needs quotes, like '"hello"'"""),
        (("msg", "send", "GHOST", "1"), "error: task GHOST not found"),
        (("msg", "receive"), "error: mailbox is empty and the caller is not a task"),
        (("msg", "tail", "topic:news"), "error: mailbox 'topic:news' names a topic but no subscriber"),
        (("msg", "publish", "bad topic", "1"), "error: topic 'bad topic' may contain only"),
    ]
    for args, text in cases:
        result = await run(server, *args)
        assert result.exit_code == 1, (args, result.output)
        assert text in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    for _ in range(3):
        await run(server, "msg", "send", "B", "1")
    full = await run(server, "msg", "send", "B", "1")
    assert full.exit_code == 1 and "error: mailbox task:B is full: 3 messages waiting (limit 3)" in full.stderr


async def test_publish_tail_and_stats(server: MessageServer) -> None:
    dropped = await run(server, "msg", "publish", "news", '"nobody"')
    assert "nobody received it: topic news has no recipients" in dropped.stdout
    await run(server, "msg", "receive", "--mailbox", "topic:news/cli")  # subscribe
    for n in (1, 2):
        assert (await run(server, "msg", "publish", "news", str(n), task="A")).exit_code == 0
    tail = await run(server, "--format", "json", "msg", "tail", "topic:news/cli", "--count", "2")
    assert tail.exit_code == 0, tail.output
    assert [json.loads(line)["payload"] for line in tail.stdout.splitlines()] == [1, 2]
    stats = await run(server, "msg", "stats")
    lines = stats.stdout.splitlines()
    assert lines[0].split()[:4] == ["MAILBOX", "QUEUED", "IN-FLIGHT", "SENT"]
    assert any(line.split()[:4] == ["topic:news", "0", "0", "2"] for line in lines), stats.stdout

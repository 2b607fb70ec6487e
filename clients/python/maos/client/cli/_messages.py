"""`maosctl msg ...`: messages for command agents and operators.

Inside a task (MAOS_TASK_ID set, as agent hosts do for command agents) the
sender is that task and `msg receive` reads its mailbox; elsewhere name one
with `--mailbox task:<id>` or `--mailbox topic:<topic>/<subscriber>`.
Payloads are JSON text: quote strings (`'"text"'`); `-` reads it from stdin.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import grpc

from .._config import CHANNEL_OPTIONS, messages_endpoint
from .._enums import PRIORITY
from .._messages_client import MessagesClient
from ._common import CliState, format_option, pass_state
from ._message_views import (
    caller,
    host_stats_rows,
    host_stats_table,
    message_dict,
    message_line,
    messages_table,
    parse_payload,
    sent_dict,
    sent_text,
    stats_rows,
    stats_table,
)

_F = TypeVar("_F", bound=Callable[..., Any])


def open_messages_client(endpoint: str, *, relay: bool = True) -> MessagesClient:
    """A MessagesClient on its own channel, closed when the command ends. Inside an agent
    (and with `relay`), its host's message relay carries the calls."""
    if relay:
        endpoint = messages_endpoint(endpoint)
    channel = grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
    click.get_current_context().call_on_close(channel.close)
    return MessagesClient(channel, endpoint, caller=caller())


def _payload(text: str) -> Any:
    return parse_payload(sys.stdin.read() if text == "-" else text)


def send_options(command: _F) -> _F:
    """--priority and --ttl, shared by send, broadcast and publish."""
    command = click.option(
        "--ttl",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        metavar="SECONDS",
        help="Drop the message if it is not delivered within this long (default 24 h).",
    )(command)
    return click.option(
        "--priority",
        type=click.Choice(PRIORITY.names, case_sensitive=False),
        default=None,
        help="Delivery order: critical first, then high, medium (default), low.",
    )(command)


def id_option(command: _F) -> _F:
    return click.option(
        "--id",
        "message_id",
        default=None,
        metavar="ID",
        help="Your own message id: sending it again to the same mailbox is a no-op.",
    )(command)


@click.group("msg")
def msg_group() -> None:
    """Messages between agents: send, broadcast, publish, receive, tail, stats."""


@msg_group.command("send")
@click.argument("task_id")
@click.argument("payload", metavar="JSON")
@click.option("--agent", "to_agent", is_flag=True, help="TASK_ID is an agent id: send to the task it runs now")
@send_options
@id_option
@format_option
@pass_state
def send(
    state: CliState,
    task_id: str,
    payload: str,
    to_agent: bool,
    priority: str | None,
    ttl: float | None,
    message_id: str | None,
) -> None:
    """Send the JSON payload to the mailbox of task TASK_ID (with --agent, of the task agent TASK_ID runs)."""
    value = _payload(payload)
    client = open_messages_client(state.endpoint)
    if to_agent:
        reply = client.send_to_agent(task_id, value, priority=priority, ttl=ttl, message_id=message_id)
        state.emit(sent_dict(reply), lambda: sent_text(reply, f"agent {task_id}"))
        return
    reply = client.send(task_id, value, priority=priority, ttl=ttl, message_id=message_id)
    state.emit(sent_dict(reply), lambda: sent_text(reply, f"task:{task_id}"))


@msg_group.command("broadcast")
@click.argument("root_id")
@click.argument("payload", metavar="JSON")
@send_options
@format_option
@pass_state
def broadcast(state: CliState, root_id: str, payload: str, priority: str | None, ttl: float | None) -> None:
    """Send the JSON payload to every unfinished task of the tree rooted at ROOT_ID (but the sender)."""
    value = _payload(payload)
    reply = open_messages_client(state.endpoint).broadcast(root_id, value, priority=priority, ttl=ttl)
    state.emit(sent_dict(reply), lambda: sent_text(reply, f"tree {root_id}"))


@msg_group.command("publish")
@click.argument("topic")
@click.argument("payload", metavar="JSON")
@send_options
@id_option
@format_option
@pass_state
def publish(
    state: CliState, topic: str, payload: str, priority: str | None, ttl: float | None, message_id: str | None
) -> None:
    """Publish the JSON payload to every subscription of TOPIC (none: it is dropped)."""
    value = _payload(payload)
    reply = open_messages_client(state.endpoint).publish(
        topic, value, priority=priority, ttl=ttl, message_id=message_id
    )
    state.emit(sent_dict(reply), lambda: sent_text(reply, f"topic {topic}"))


@msg_group.command("receive")
@click.option(
    "--mailbox",
    "-m",
    default=None,
    metavar="M",
    help="task:<id> or topic:<topic>/<subscriber> (default: the mailbox of MAOS_TASK_ID).",
)
@click.option("--max", "max_messages", type=click.IntRange(1, 1000), default=1, show_default=True)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="SECONDS",
    help="Wait up to this long for the first message (default: answer at once).",
)
@format_option
@pass_state
def receive(state: CliState, mailbox: str | None, max_messages: int, wait: float) -> None:
    """Print waiting messages in priority order and acknowledge them (they are not delivered again)."""
    client = open_messages_client(state.endpoint)
    messages = client.receive(mailbox, max=max_messages, wait=wait)
    state.emit([message_dict(m) for m in messages], lambda: messages_table(messages))
    if messages:
        client.ack(mailbox, [m.id for m in messages])


@msg_group.command("tail")
@click.argument("mailbox")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N", help="Stop after N messages.")
@format_option
@pass_state
def tail(state: CliState, mailbox: str, count: int | None) -> None:
    """Print MAILBOX's messages as they arrive (one JSON document per line with --format json),
    acknowledging each once printed, until Ctrl-C or --count N."""
    client = open_messages_client(state.endpoint)
    stream = client.subscribe(mailbox)
    try:
        for msg in itertools.islice(stream, count):
            click.echo(message_line(msg, as_json=state.json))
            client.ack(mailbox, [msg.id])
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None
    finally:
        stream.close()


@msg_group.command("watch")
@click.argument("topic")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N", help="Stop after N messages.")
@format_option
@pass_state
def watch(state: CliState, topic: str, count: int | None) -> None:
    """Print what is published to TOPIC from now on (one JSON document per line with --format json),
    consuming nothing: subscriptions still receive every message. Any control plane answers, a standby
    too when the control planes share --redis. Until Ctrl-C or --count N."""
    client = open_messages_client(state.endpoint, relay=False)
    stream = client.watch_topic(topic)
    try:
        for msg in itertools.islice(stream, count):
            click.echo(message_line(msg, as_json=state.json))
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None
    finally:
        stream.close()


@msg_group.command("stats")
@click.option("--hosts", "by_host", is_flag=True, help="each host's message relay instead of each mailbox")
@format_option
@pass_state
def stats(state: CliState, by_host: bool) -> None:
    """Counters per topic (summed over its subscriptions) and per mailbox, since the control plane started;
    with --hosts, what each agent host's relay did (local deliveries, stream traffic, compression)."""
    client = open_messages_client(state.endpoint, relay=False)
    if by_host:
        hosts = client.host_stats()
        state.emit(host_stats_rows(hosts), lambda: host_stats_table(hosts))
        return
    rows = client.stats()
    state.emit(stats_rows(rows), lambda: stats_table(rows))

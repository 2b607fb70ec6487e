"""`maosctl host ...`, `maosctl agent ...` and `maosctl status`."""

from __future__ import annotations

import datetime as dt

import click

from .._enums import host_status_name
from ._common import CliState, format_option, pass_state
from ._metrics_views import resources_dict, resources_table
from ._views import (
    agent_dict,
    agent_table,
    agent_type_dict,
    agent_type_table,
    host_dict,
    host_table,
    status_dict,
    status_text,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@click.group("host")
def host_group() -> None:
    """Agent hosts: the machines that run agents."""


@host_group.command("list")
@click.option("--all", "include_lost", is_flag=True, help="Include hosts that lost their connection.")
@format_option
@pass_state
def host_list(state: CliState, include_lost: bool) -> None:
    """List agent hosts with their slots, load and agent types."""
    hosts = state.client().list_hosts(include_lost=include_lost)
    state.emit([host_dict(h) for h in hosts], lambda: host_table(hosts, _now()))


@host_group.command("drain")
@click.argument("host_id", metavar="ID")
@format_option
@pass_state
def host_drain(state: CliState, host_id: str) -> None:
    """Send a host no new work; what it runs finishes."""
    host = state.client().drain_host(host_id)
    state.emit(host_dict(host), lambda: f"{host.id}: {host_status_name(host.status)}")


@click.group("agent")
def agent_group() -> None:
    """Agents (worker processes) and agent types."""


@agent_group.command("list")
@click.option("--host", "host_id", metavar="ID", help="Only agents on this host.")
@click.option("--type", "agent_type", metavar="NAME", help="Only agents of this type.")
@format_option
@pass_state
def agent_list(state: CliState, host_id: str | None, agent_type: str | None) -> None:
    """List agents with their status, current task and counters."""
    agents = state.client().list_agents(host_id, agent_type=agent_type)
    state.emit([agent_dict(a) for a in agents], lambda: agent_table(agents))


@agent_group.command("types")
@format_option
@pass_state
def agent_types(state: CliState) -> None:
    """List the agent types the connected hosts offer."""
    types = state.client().list_agent_types()
    state.emit([agent_type_dict(t) for t in types], lambda: agent_type_table(types))


@click.command("status")
@click.option("--resources", is_flag=True, help="Add CPU and memory of the control plane and of each host.")
@format_option
@pass_state
def status(state: CliState, resources: bool) -> None:
    """Show the control plane: version, store, hosts, slots, task counts, queues."""
    reply = state.client().status()
    if not resources:
        state.emit(status_dict(reply, state.endpoint), lambda: status_text(reply, _now(), state.endpoint))
        return
    used = state.client().get_metrics(60)
    state.emit(
        {**status_dict(reply, state.endpoint), "resources": resources_dict(used)},
        lambda: f"{status_text(reply, _now(), state.endpoint)}\n\n{resources_table(used)}",
    )

"""`maosctl controlplane`, `maosctl agenthost` (run one daemon in the foreground) and `maosctl up`."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click
from maos.errors import FailedPrecondition

from .._config import DEFAULT_ENDPOINT, ENDPOINT_ENV
from ._common import CliState, pass_state
from ._demo_data import ROWS_PER_SHARD
from ._local import LocalCluster, relative

_PASSTHROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _exec_module(module: str, what: str, args: list[str]) -> None:
    """Replace this process with `python -m module args...` (signals then go straight to the daemon)."""
    if importlib.util.find_spec(module) is None or importlib.util.find_spec(f"{module}.__main__") is None:
        raise FailedPrecondition(f"the {what} is not installed here (no module {module}); pip install maos")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *args])


@click.command("controlplane", context_settings=_PASSTHROUGH, add_help_option=False)
@click.pass_context
def controlplane(ctx: click.Context) -> None:
    """Run the control plane in the foreground; options go to it (try `--help`)."""
    _exec_module("maos.controlplane", "control plane", list(ctx.args))


@click.command("agenthost", context_settings=_PASSTHROUGH, add_help_option=False)
@click.pass_context
@pass_state
def agenthost(state: CliState, ctx: click.Context) -> None:
    """Run an agent host in the foreground: --controlplane ADDR (default: --endpoint) and its options."""
    args = list(ctx.args)
    if not any(a == "--controlplane" or a.startswith("--controlplane=") for a in args) and "--help" not in args:
        args = ["--controlplane", state.endpoint, *args]
    _exec_module("maos.agenthost", "agent host", args)


class _StopRequested(Exception):
    """SIGTERM arrived: unwind to the orderly shutdown."""


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _StopRequested(signal.Signals(signum).name)


@click.command("up")
@click.option(
    "--listen",
    default=DEFAULT_ENDPOINT,
    show_default=True,
    metavar="ADDR",
    help="Address the control plane listens on (port 0 picks a free one).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".maos"),
    show_default=True,
    help="Store, checkpoints, logs and demo data.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes of the agent host (default: its number of cores).",
)
@click.option(
    "--agents",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Agent profiles YAML (e.g. deploy/agents.yaml), added to the built-ins; given to both daemons.",
)
@click.option("--demo", is_flag=True, help="Run the demo workflow, then stop and exit with its status.")
# Smaller shards make the demo a quick end-to-end test; not for users, hence hidden.
@click.option("--demo-rows", type=click.IntRange(min=10), default=ROWS_PER_SHARD, hidden=True)
def up(listen: str, data_dir: Path, workers: int | None, agents: Path | None, demo: bool, demo_rows: int) -> None:
    """Start a control plane and a local agent host; stop both with Ctrl-C."""
    cluster = LocalCluster(listen=listen, data_dir=data_dir, workers=workers, agents=agents)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    previous_hup = signal.signal(signal.SIGHUP, _raise_stop)  # the terminal went away: stop the daemons too
    code = 0
    try:
        click.echo(f"starting the control plane ({relative(cluster.log_dir / 'controlplane.log')}) …", err=True)
        endpoint = cluster.start_controlplane()
        click.echo(f"starting an agent host ({relative(cluster.log_dir / 'agenthost.log')}) …", err=True)
        host_id = cluster.start_agenthost()
        _announce(cluster, endpoint, host_id, demo)
        if demo:
            from ._demo import run_demo

            code = asyncio.run(run_demo(endpoint, data_dir, sys.stdout, rows=demo_rows))
        else:
            code = _supervise(cluster)
    except (KeyboardInterrupt, _StopRequested):
        click.echo("\nstopping …", err=True)
        # Stopping a plain `up` is the normal way out; an interrupted demo did not succeed.
        code = 130 if demo else 0
    finally:
        cluster.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGHUP, previous_hup)
    if code:
        raise click.exceptions.Exit(code)


def _announce(cluster: LocalCluster, endpoint: str, host_id: str, demo: bool) -> None:
    env_hint = "" if endpoint == DEFAULT_ENDPOINT else f"export {ENDPOINT_ENV}={endpoint}\n  "
    click.echo(
        f"MAOS is up.\n"
        f"  control plane  {endpoint}   log {relative(cluster.log_dir / 'controlplane.log')}\n"
        f"  agent host     {host_id}   log {relative(cluster.log_dir / 'agenthost.log')}\n"
        f"  data           {relative(cluster.data_dir)}\n"
    )
    if not demo:
        click.echo(
            "In another terminal:\n"
            f"  {env_hint}maosctl task submit 'say hello' --agent-type echo --input '{{\"hello\": 1}}' --wait\n"
            "  maosctl status\n"
            "Press Ctrl-C to stop.\n"
        )


def _supervise(cluster: LocalCluster) -> int:
    """Stay in the foreground until interrupted; 1 if a daemon dies on its own."""
    idle = threading.Event()  # never set: a wait that a signal can interrupt
    while True:
        idle.wait(0.5)
        dead = cluster.dead()
        if dead is not None:
            click.echo(f"error: {dead.describe_exit('unexpectedly')}", err=True)
            return 1

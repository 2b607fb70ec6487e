"""AgentHostConfig: every setting of an agent host, validated in one place; plus its command line."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from maos.client._endpoints import parse_endpoints
from maos.errors import InvalidArgument
from maos.tracing import OFF, TRACING_ENV, TracingSpec, parse_spec, spec_from_env

if TYPE_CHECKING:  # at run time imported by the functions that need it: workers import this module, light
    from maos.controlplane.messaging import MessagingConfig

DEFAULT_ENDPOINT = "127.0.0.1:7700"
ENDPOINT_ENV = "MAOS_ENDPOINT"
TOKEN_ENV = "MAOS_TOKEN"
LOG_LEVEL_ENV = "MAOS_LOG_LEVEL"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def default_endpoint() -> str:
    """$MAOS_ENDPOINT, else the control plane's default address."""
    return os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT


def default_workers() -> int:
    """One worker per CPU."""
    return os.cpu_count() or 1


def default_host_id() -> str:
    """hostname-pid-random: unique per host process, stable for its lifetime."""
    return f"{socket.gethostname().split('.')[0]}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class AgentHostConfig:
    """Settings of one agent host process.

    controlplane                 HOST:PORT of the control plane ($MAOS_ENDPOINT, else 127.0.0.1:7700);
                                 several comma-separated for active/standby control planes
    workers                      worker processes = task slots (default: CPU count)
    agents_file                  YAML with agent types merged over the built-ins (None: built-ins only)
    host_id                      identity on the control plane; stable for the process lifetime
    kill_grace_seconds           after a cancel or timeout, how long a task may take to stop before
                                 its worker is SIGKILLed and replaced
    shutdown_grace_seconds       on SIGTERM/SIGINT, how long running and queued tasks may take to
                                 finish before they are cancelled
    log_level                    DEBUG, INFO, WARNING or ERROR
    token                        bearer token sent as `authorization` metadata ($MAOS_TOKEN)
    python_path                  extra sys.path entries for workers (where agent modules live)
    heartbeat_interval_seconds   used until the control plane's Registered names its own
    reconnect_initial_seconds,
    reconnect_max_seconds        backoff (full jitter) between connection attempts
    max_message_bytes            gRPC send/receive limit on the host stream
    outbox_size                  bound of the queue of items waiting to go up the stream
    tracing                      OpenTelemetry spans of this host and its workers (maos.tracing;
                                 applied process-wide when the host starts; workers get it in
                                 $MAOS_TRACING)
    local_message_delivery       deliver messages between this host's agents of one tree on the
                                 host, without a round trip to the control plane
    messaging                    the bounds of those local deliveries (mailbox size, default
                                 TTL, payload sizes; None = the defaults): give hosts the
                                 control plane's values
    """

    controlplane: str = field(default_factory=default_endpoint)
    workers: int = field(default_factory=default_workers)
    agents_file: Path | None = None
    host_id: str = field(default_factory=default_host_id)
    kill_grace_seconds: float = 2.0
    shutdown_grace_seconds: float = 10.0
    log_level: str = "INFO"
    token: str | None = None
    python_path: tuple[str, ...] = ()
    heartbeat_interval_seconds: float = 5.0
    reconnect_initial_seconds: float = 0.1
    reconnect_max_seconds: float = 5.0
    max_message_bytes: int = 16 * 1024 * 1024
    outbox_size: int = 65536
    tracing: TracingSpec = OFF
    local_message_delivery: bool = True
    messaging: MessagingConfig | None = None

    def __post_init__(self) -> None:
        parse_endpoints(self.controlplane)  # HOST:PORT, or several comma-separated (active/standby)
        if not 1 <= self.workers <= 1024:
            raise InvalidArgument(f"workers must be from 1 to 1024, got {self.workers}")
        if not self.host_id or len(self.host_id) > 128 or any(c.isspace() for c in self.host_id):
            raise InvalidArgument(f"host_id must be 1-128 characters without spaces, got {self.host_id!r}")
        for name in ("kill_grace_seconds", "shutdown_grace_seconds", "heartbeat_interval_seconds"):
            value = getattr(self, name)
            if not 0 < value <= 3600:
                raise InvalidArgument(f"{name} must be in (0, 3600] seconds, got {value}")
        if not 0 < self.reconnect_initial_seconds <= self.reconnect_max_seconds:
            raise InvalidArgument("reconnect_initial_seconds must be positive and at most reconnect_max_seconds")
        if self.log_level.upper() not in LOG_LEVELS:
            raise InvalidArgument(f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        if self.max_message_bytes < 1024 * 1024 or self.outbox_size < 100:
            raise InvalidArgument("max_message_bytes must be at least 1 MiB and outbox_size at least 100")


def build_arg_parser(prog: str = "python -m maos.agenthost") -> argparse.ArgumentParser:
    """The daemon's command line (also what `maosctl agenthost` mirrors)."""
    p = argparse.ArgumentParser(prog=prog, description="Run a MAOS agent host: worker processes that run agents.")
    p.add_argument(
        "--controlplane",
        metavar="HOST:PORT",
        default=None,
        help=f"control plane address, or several comma-separated for active/standby control planes "
        f"(default: ${ENDPOINT_ENV} or {DEFAULT_ENDPOINT})",
    )
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")
    p.add_argument("--agents", type=Path, default=None, metavar="FILE", help="agent profiles YAML (added to built-ins)")
    p.add_argument("--host-id", default=None, help="host identity (default: hostname-pid-random)")
    p.add_argument("--kill-grace", type=float, default=2.0, metavar="S", help="seconds before SIGKILL (default 2)")
    p.add_argument(
        "--shutdown-grace", type=float, default=10.0, metavar="S", help="seconds to finish work on SIGTERM (default 10)"
    )
    p.add_argument(
        "--log-level",
        default=(os.environ.get(LOG_LEVEL_ENV) or "INFO").upper(),
        type=str.upper,
        choices=LOG_LEVELS,
        help=f"DEBUG, INFO, WARNING or ERROR (default: ${LOG_LEVEL_ENV} or INFO)",
    )
    p.add_argument(
        "--python-path",
        action="append",
        default=[],
        metavar="DIR",
        help="extra import path for agent modules in workers (repeatable)",
    )
    p.add_argument(
        "--tracing",
        default=None,
        metavar="SPEC",
        help=f"OpenTelemetry spans: off, otlp-grpc[=ENDPOINT], otlp-http[=ENDPOINT] or jsonl:PATH "
        f"(default: ${TRACING_ENV} or off)",
    )
    p.add_argument(
        "--no-local-messages",
        action="store_true",
        help="send every message through the control plane, even between agents on this host",
    )
    from maos.controlplane.messaging import add_messaging_arguments

    add_messaging_arguments(p)
    return p


def config_from_args(argv: Sequence[str] | None = None) -> AgentHostConfig:
    """Parse the command line (and $MAOS_ENDPOINT, $MAOS_TOKEN) into a config; InvalidArgument on bad values."""
    from maos.controlplane.messaging import messaging_config

    ns = build_arg_parser().parse_args(argv)
    return AgentHostConfig(
        controlplane=ns.controlplane or default_endpoint(),
        workers=ns.workers if ns.workers is not None else default_workers(),
        agents_file=ns.agents,
        host_id=ns.host_id or default_host_id(),
        kill_grace_seconds=ns.kill_grace,
        shutdown_grace_seconds=ns.shutdown_grace,
        log_level=ns.log_level,
        token=os.environ.get(TOKEN_ENV) or None,
        python_path=tuple(p for entry in ns.python_path for p in entry.split(os.pathsep) if p),
        tracing=parse_spec(ns.tracing) if ns.tracing is not None else spec_from_env(),
        local_message_delivery=not ns.no_local_messages,
        messaging=messaging_config(ns),
    )

"""`python -m maos.controlplane`: run the control-plane daemon in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path

from maos import tracing
from maos.errors import MaosError, Unavailable
from maos.tracing import TRACING_ENV, parse_spec

from ._config import DEFAULT_LISTEN, ControlPlaneConfig
from ._logging import configure_json_logging
from ._runtime import RuntimeSettings
from ._server import ControlPlane
from .checkpoints._cli import add_checkpoint_arguments, checkpoint_config
from .core import CoreLimits
from .messaging import add_messaging_arguments, messaging_config
from .store import PostgresOptions

log = logging.getLogger("maos.controlplane")


def parse_args(argv: list[str] | None = None) -> ControlPlaneConfig:
    parser = argparse.ArgumentParser(prog="maos-controlplane", description="Run the MAOS control plane.")
    parser.add_argument(
        "--listen", default=os.environ.get("MAOS_LISTEN", DEFAULT_LISTEN), help="HOST:PORT (port 0 = any)"
    )
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("MAOS_DATA_DIR", ".maos")))
    parser.add_argument("--agents", type=Path, default=None, help="agent profiles YAML (adds to the built-ins)")
    parser.add_argument("--ready-file", type=Path, default=None, help="write {endpoint, pid} JSON here once serving")
    parser.add_argument("--heartbeat-interval", type=float, default=1.0, help="seconds between host heartbeats")
    parser.add_argument("--missed-heartbeats", type=int, default=3, help="a host silent this many intervals is lost")
    parser.add_argument(
        "--prefetch-min", type=int, default=2, help="assignments a host may always hold beyond its slots"
    )
    parser.add_argument("--prefetch-max", type=int, default=64, help="upper bound of the adaptive prefetch")
    parser.add_argument(
        "--prefetch-window", type=float, default=0.05, help="seconds of queued work per slot the prefetch may cover"
    )
    parser.add_argument(
        "--max-queue-time", type=float, default=300.0, help="aging: seconds queued before moving up one level"
    )
    parser.add_argument("--sqlite-synchronous", default="NORMAL", help="OFF|NORMAL|FULL (NORMAL survives SIGKILL)")
    parser.add_argument(
        "--state",
        default=os.environ.get("MAOS_STATE", "sqlite"),
        help="shared state: sqlite (default: beside the tasks, in the SQLite file or, with --store "
        "postgresql://..., in that schema) or redis://HOST:PORT/DB",
    )
    parser.add_argument(
        "--state-cache-ttl",
        type=_positive_seconds,
        default=os.environ.get("MAOS_STATE_CACHE_TTL", "3600"),
        metavar="SECONDS",
        help="with --state redis://...: seconds a cached entry lives in Redis (default 3600; the durable copy stays)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("MAOS_REDIS", ""),
        metavar="URL",
        help="redis://HOST:PORT/DB for fan-out between control planes: the leader's state-watch and topic events "
        "reach every control plane, and standbys serve read-only calls (off by default)",
    )
    _add_store_arguments(parser)
    add_checkpoint_arguments(parser)
    add_messaging_arguments(parser)
    parser.add_argument(
        "--tracing",
        default=os.environ.get(TRACING_ENV, "off"),
        metavar="SPEC",
        help="OpenTelemetry spans: off (default), otlp-grpc[=ENDPOINT], otlp-http[=ENDPOINT] or jsonl:PATH",
    )
    parser.add_argument(
        "--metrics-listen",
        default=os.environ.get("MAOS_METRICS_LISTEN", ""),
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464; off by default)",
    )
    parser.add_argument(
        "--metrics-interval", type=float, default=2.0, help="seconds between the performance monitor's samples"
    )
    parser.add_argument("--log-level", default=os.environ.get("MAOS_LOG_LEVEL", "info"))
    args = parser.parse_args(argv)
    configure_json_logging(args.log_level)
    return ControlPlaneConfig(
        listen=args.listen,
        data_dir=args.data_dir,
        agents_file=args.agents,
        ready_file=args.ready_file,
        sqlite_synchronous=args.sqlite_synchronous,
        state_url=args.state,
        state_cache_ttl_seconds=args.state_cache_ttl,
        redis_url=args.redis,
        store_url=args.store,
        store_options=PostgresOptions(
            pool_size=args.store_pool_size,
            max_overflow=args.store_max_overflow,
            acquire_timeout_seconds=args.store_acquire_timeout,
            recycle_seconds=args.store_recycle_seconds,
            application_name=args.store_application_name,
            outage_limit_seconds=args.store_outage_limit,
        ),
        tracing=parse_spec(args.tracing),
        checkpoints=checkpoint_config(args),
        messaging=messaging_config(args),
        metrics_listen=args.metrics_listen,
        metrics_interval_seconds=args.metrics_interval,
        runtime=RuntimeSettings(
            core=CoreLimits(
                heartbeat_interval_seconds=args.heartbeat_interval,
                missed_heartbeats=args.missed_heartbeats,
                prefetch_min=args.prefetch_min,
                prefetch_max=args.prefetch_max,
                prefetch_window_seconds=args.prefetch_window,
                max_queue_time_seconds=args.max_queue_time,
            ),
        ),
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0.001:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{text} must be at least 0.001 seconds")
    return value


def _add_store_arguments(parser: argparse.ArgumentParser) -> None:
    d = PostgresOptions()
    parser.add_argument(
        "--store",
        default=os.environ.get("MAOS_STORE", ""),
        metavar="URL",
        help="task store: SQLite in --data-dir (default) or postgresql://USER@HOST:PORT/DB[?schema=NAME]; "
        "control planes sharing one PostgreSQL schema run active/standby",
    )
    parser.add_argument(
        "--store-pool-size", type=int, default=d.pool_size, help=f"PostgreSQL connections kept open ({d.pool_size})"
    )
    parser.add_argument(
        "--store-max-overflow",
        type=int,
        default=d.max_overflow,
        help=f"extra PostgreSQL connections under load ({d.max_overflow})",
    )
    parser.add_argument(
        "--store-acquire-timeout",
        type=float,
        default=d.acquire_timeout_seconds,
        help=f"seconds to wait for a free connection before UNAVAILABLE ({d.acquire_timeout_seconds:g})",
    )
    parser.add_argument(
        "--store-outage-limit",
        type=float,
        default=d.outage_limit_seconds,
        metavar="SECONDS",
        help="while PostgreSQL is unreachable, calls get UNAVAILABLE and unwritten changes are kept and retried; "
        f"past this many seconds they fail and the control plane exits 1 to restart from the store "
        f"({d.outage_limit_seconds:g})",
    )
    parser.add_argument(
        "--store-recycle-seconds",
        type=float,
        default=d.recycle_seconds,
        help=f"replace PostgreSQL connections after this many seconds ({d.recycle_seconds:g})",
    )
    parser.add_argument(
        "--store-application-name",
        default=d.application_name,
        help=f"application_name PostgreSQL shows for our connections ({d.application_name})",
    )


async def run_control_plane(config: ControlPlaneConfig) -> None:
    """Serve until SIGINT/SIGTERM, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    async with ControlPlane(config) as cp:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(cp.shutdown()))
        await cp.wait_stopped()
    if cp.failure:
        # e.g. leadership lost: exit non-zero so a supervisor restarts us (as a standby).
        raise Unavailable(cp.failure)


def main(argv: list[str] | None = None) -> None:
    # The daemon keeps many long-lived objects (live tasks, the finished-task cache):
    # collect the young generation less often so collections do not become latency spikes.
    gc.set_threshold(50_000, 20, 100)
    try:
        config = parse_args(argv)
        import uvloop

        uvloop.run(run_control_plane(config))
    except MaosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        tracing.shutdown()  # export the last spans (bounded: an unreachable collector cannot hang exit)


if __name__ == "__main__":
    main()

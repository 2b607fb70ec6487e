"""Control-plane configuration: one frozen dataclass, validated in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from maos.errors import InvalidArgument
from maos.tracing import OFF, TracingSpec

from ._runtime import RuntimeSettings
from ._validation import InputLimits
from .checkpoints import CheckpointConfig
from .messaging import MessagingConfig
from .store import PostgresOptions, is_postgres_url, parse_postgres_url

DEFAULT_LISTEN = "127.0.0.1:7700"


@dataclass(frozen=True, slots=True)
class ControlPlaneConfig:
    """Everything a control plane needs to start. Durations carry their unit in the name."""

    listen: str = DEFAULT_LISTEN
    data_dir: Path = Path(".maos")
    agents_file: Path | None = None
    ready_file: Path | None = None
    max_message_bytes: int = 16 * 1024 * 1024
    max_concurrent_streams: int = 1000
    sqlite_synchronous: str = "NORMAL"
    state_url: str = "sqlite"  # shared state: "sqlite" (in the task store's file) or "redis://host:port/db"
    state_cache_ttl_seconds: float = 3600.0  # with a redis:// state: how long a cached entry lives in Redis
    # "" = no fan-out; "redis://host:port/db" = state-watch and topic events go to the other control planes
    # through it, and a standby serves read-only calls (state get/list/watch, topic watch).
    redis_url: str = ""
    # The task store: "" = SQLite in data_dir; "postgresql://user@host:port/db[?schema=NAME]" = PostgreSQL,
    # where several control planes run active/standby. `store_options` are its pool knobs.
    store_url: str = ""
    store_options: PostgresOptions = field(default_factory=PostgresOptions)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    input_limits: InputLimits = field(default_factory=InputLimits)
    # Where checkpoints go (default <data dir>/checkpoints), their upload knobs, a restore at start-up.
    checkpoints: CheckpointConfig = field(default_factory=CheckpointConfig)
    # Mailbox bounds, default TTL, payload limits (sqlite_synchronous is taken from the field above).
    messaging: MessagingConfig = field(default_factory=MessagingConfig)
    # Spans of RPCs and task lives (maos.tracing); applied process-wide when the control plane is built.
    tracing: TracingSpec = OFF
    # The performance monitor samples every interval; "" = no Prometheus endpoint, else HOST:PORT for GET /metrics.
    metrics_interval_seconds: float = 2.0
    metrics_listen: str = ""

    def __post_init__(self) -> None:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise InvalidArgument(f"--listen {self.listen!r} must be HOST:PORT, e.g. 127.0.0.1:7700 (port 0 = any)")
        if self.runtime.core.heartbeat_interval_seconds <= 0:
            raise InvalidArgument("heartbeat interval must be above 0 seconds")
        if self.runtime.core.missed_heartbeats < 1:
            raise InvalidArgument("missed heartbeats must be at least 1")
        if not 0 <= self.runtime.core.prefetch_min <= self.runtime.core.prefetch_max:
            raise InvalidArgument("prefetch bounds must satisfy 0 <= --prefetch-min <= --prefetch-max")
        if self.runtime.core.prefetch_window_seconds < 0:
            raise InvalidArgument("--prefetch-window must not be negative")
        if self.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise InvalidArgument("sqlite synchronous must be OFF, NORMAL, FULL or EXTRA")
        if not 0.05 <= self.metrics_interval_seconds <= 3600:
            raise InvalidArgument("--metrics-interval must be between 0.05 and 3600 seconds")
        if self.metrics_listen:
            m_host, m_sep, m_port = self.metrics_listen.rpartition(":")
            if not m_sep or not m_host or not m_port.isdigit() or int(m_port) > 65535:
                raise InvalidArgument(
                    f"--metrics-listen {self.metrics_listen!r} must be HOST:PORT, e.g. 127.0.0.1:9464 (port 0 = any)"
                )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise InvalidArgument(f"--redis {self.redis_url!r} is not a Redis URL: use redis://HOST:PORT/DB")
        if is_postgres_url(self.store_url):
            parse_postgres_url(self.store_url)  # InvalidArgument now rather than at start
        elif self.store_url.strip() not in ("", "sqlite", "sqlite:"):
            raise InvalidArgument(
                f"--store {self.store_url.split('@')[-1]!r} is not a store: use sqlite (the default, in --data-dir) "
                "or postgresql://user@host:port/database"
            )

    @property
    def database_path(self) -> Path:
        return self.data_dir / "maos.db"

    @property
    def is_loopback(self) -> bool:
        host = self.listen.rpartition(":")[0].strip("[]")
        return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")

"""PostgreSQL store settings: the connection-pool knobs and the store URL.

The URL is a libpq-style `postgresql://user[:password]@host[:port]/database`;
one MAOS-specific query parameter, `schema=NAME`, keeps MAOS's tables in that
schema (created if missing), so several deployments or test runs can share a
database. Other query parameters pass through to asyncpg (e.g. `sslmode`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from maos.controlplane._urls import redacted
from maos.errors import InvalidArgument

POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """The guide's pool knobs. Defaults follow its "Connection Pool Optimization" example.

    asyncpg opens `pool_size` connections at start and grows to `pool_size +
    max_overflow` under load; a connection idle for `recycle_seconds`, or older
    than that when it is next handed out, is closed and replaced.
    """

    pool_size: int = 20
    max_overflow: int = 30
    acquire_timeout_seconds: float = 30.0
    recycle_seconds: float = 3600.0
    application_name: str = "maos-controlplane"
    connect_timeout_seconds: float = 10.0
    command_timeout_seconds: float = 60.0
    partitions_ahead: int = 2  # monthly task partitions created beyond the current month
    # How long writes wait for an unreachable PostgreSQL (kept, retried in order) before they fail
    # with Unavailable and the control plane stops, to restart from what PostgreSQL holds.
    outage_limit_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise InvalidArgument(f"--store-pool-size must be at least 1, not {self.pool_size}")
        if self.max_overflow < 0:
            raise InvalidArgument(f"--store-max-overflow must not be negative, not {self.max_overflow}")
        if self.acquire_timeout_seconds <= 0:
            raise InvalidArgument("--store-acquire-timeout must be above 0 seconds")
        if self.recycle_seconds <= 0:
            raise InvalidArgument("--store-recycle-seconds must be above 0 seconds")
        if not self.application_name or len(self.application_name) > 63 or not self.application_name.isprintable():
            raise InvalidArgument("--store-application-name must be 1 to 63 printable characters")
        if self.connect_timeout_seconds <= 0 or self.command_timeout_seconds <= 0:
            raise InvalidArgument("store connect and command timeouts must be above 0 seconds")
        if self.outage_limit_seconds <= 0:
            raise InvalidArgument("--store-outage-limit must be above 0 seconds")
        if not 0 <= self.partitions_ahead <= 24:
            raise InvalidArgument("partitions ahead must be between 0 and 24 months")

    @property
    def max_size(self) -> int:
        return self.pool_size + self.max_overflow


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    """Where the store lives: the DSN asyncpg gets, the schema, and a display form without the password."""

    dsn: str
    schema: str
    display: str

    @property
    def lock_key(self) -> int:
        """A 64-bit advisory-lock key for this schema: control planes on one schema compete,
        deployments in other schemas of the same database do not."""
        digest = hashlib.blake2b(f"maos-leader:{self.schema}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    @property
    def deployment(self) -> str:
        """database.schema: what the control planes of one deployment share (names its fan-out channels)."""
        database = urlsplit(self.dsn).path.lstrip("/") or "postgres"
        return f"{database}.{self.schema}"

    @property
    def migration_lock_key(self) -> int:
        digest = hashlib.blake2b(f"maos-migrate:{self.schema}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)


def is_postgres_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in POSTGRES_SCHEMES and "://" in url


def parse_postgres_url(url: str) -> PostgresTarget:
    """Split off `schema=`; InvalidArgument for a URL that cannot name a PostgreSQL database."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise InvalidArgument(f"--store {redacted(url)}: not a valid URL ({exc})") from None
    if parts.scheme.lower() not in POSTGRES_SCHEMES:
        raise InvalidArgument(f"--store {redacted(url)}: use postgresql://user@host:port/database")
    if not parts.hostname:
        raise InvalidArgument(f"--store {redacted(url)}: name the host, e.g. postgresql://maos@127.0.0.1:5432/maos")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = "public"
    rest: list[tuple[str, str]] = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            rest.append((key, value))
    if not _SCHEMA_NAME.match(schema):
        raise InvalidArgument(
            f"--store {redacted(url)}: schema {schema!r} must be lower-case letters, digits and _ (at most 63)"
        )
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    user = f"{parts.username}@" if parts.username else ""
    database = parts.path.lstrip("/") or (parts.username or "")
    display = f"postgresql://{user}{host}:{port or 5432}/{database}"
    if schema != "public":
        display += f"?schema={schema}"
    return PostgresTarget(dsn=dsn, schema=schema, display=display)

"""Shared state in Redis (`--state redis://host:port/db`), behind the same protocol.

Per namespace NS, under a key prefix P (default "maos:state:"), with NS as a
hash tag so that one namespace's keys live in one cluster slot:

    P{NS}:rev       the namespace's revision counter
    P{NS}:keys      sorted set of the keys (score 0: ordered by bytes, for prefix listing)
    P{NS}:e:<key>   hash: d (JSON value), v (version), r (revision), t (updated, epoch seconds)
    P{NS}:log       stream of the last `change_log_size` changes, entry id "<revision>-0"

Every write is one Lua script (EVALSHA) that checks the version, bumps it and
the revision, and appends to the log: atomic, one round trip. Listing values
pipelines one HMGET per key. Connections come from a bounded, blocking pool.

Watchers are fed by the control plane that made a change (see the servicer's
hub); with several control planes on one Redis, cross-process fan-out of
watch events is the message bus's job (issue 5) and not done here.

Redis going away: a call that cannot reach it fails with Unavailable naming
it, and from then on calls fail at once (no connect timeout each) while a probe
PINGs with backoff; once Redis answers, calls go through again, no restart
needed. A write whose connection broke mid-call may or may not have happened
(UNAVAILABLE says so, as gRPC means it); one that was acknowledged is in Redis.
With this backend Redis is the only copy of shared state, so it must persist
what it acknowledged: run it with `appendonly yes` (`appendfsync everysec`
loses at most the last second on power loss; `always` loses nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from maos.errors import Internal, ResourceExhausted, Unavailable
from redis.exceptions import ClusterDownError, MasterDownError, ReadOnlyError, RedisError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._model import DeleteOutcome, StaleVersion, StateChange, StateEntry, StateLimits
from ._validation import check_key, check_prefix, check_value, prefix_end

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "maos:state:"
DEFAULT_MAX_CONNECTIONS = 32
POOL_WAIT_SECONDS = 10.0
FIRST_PROBE_SECONDS = 0.1  # while Redis is unreachable, PING it this often at first,
MAX_PROBE_SECONDS = 1.0  # backing off to this
PROBE_TIMEOUT_SECONDS = 2.0
# Errors that mean "Redis cannot serve right now" (unreachable, loading, failing over), not "a bug".
_UNREACHABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
_NOT_NOW: tuple[type[BaseException], ...] = (TryAgainError, ReadOnlyError, MasterDownError, ClusterDownError)

# Shared by both scripts: the entry as it is, for a compare that failed.
_CONFLICT = """
local function conflict(cur)
  local e = redis.call('HMGET', KEYS[1], 'd', 'r', 't')
  return {0, cur, e[1] or '', tonumber(e[2] or '0'), e[3] or '0'}
end
"""

# KEYS: entry, index, revision counter, log. ARGV: key, value, expected version (-1: any), now, log size.
# Returns {1, version, revision} or {0, current version, value, revision, updated}.
_WRITE = (
    _CONFLICT
    + """
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local expected = tonumber(ARGV[3])
if expected >= 0 and cur ~= expected then return conflict(cur) end
local ver = cur + 1
local rev = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', ver, 'r', rev, 't', ARGV[4])
if cur == 0 then redis.call('ZADD', KEYS[2], 0, ARGV[1]) end
redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[5], rev .. '-0',
           'k', ARGV[1], 'v', ver, 'd', ARGV[2], 'x', '0', 't', ARGV[4])
return {1, ver, rev}
"""
)

# KEYS: entry, index, revision counter, log. ARGV: key, expected version (0: any), now, log size.
# Returns {1, revision} (deleted), {2, revision} (no such key) or a conflict.
_DELETE = (
    _CONFLICT
    + """
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local expected = tonumber(ARGV[2])
if expected > 0 and cur ~= expected then return conflict(cur) end
if cur == 0 then return {2, tonumber(redis.call('GET', KEYS[3]) or '0')} end
local rev = redis.call('INCR', KEYS[3])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[4], rev .. '-0',
           'k', ARGV[1], 'v', '0', 'd', '', 'x', '1', 't', ARGV[3])
return {1, rev}
"""
)

# KEYS: revision counter. ARGV: a revision. Raises the counter to it, never lowers it.
_RAISE_REVISION = """
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"""


def redacted(url: str) -> str:
    """The URL without a password, for logs and status."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisStateBackend:
    """StateBackend on Redis 6.2+ through redis.asyncio with a bounded connection pool."""

    def __init__(
        self,
        url: str,
        *,
        limits: StateLimits | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._url = url
        self._limits = limits or StateLimits()
        self._prefix = key_prefix.encode()
        self._pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=POOL_WAIT_SECONDS
        )
        self._redis = aioredis.Redis(connection_pool=self._pool)
        self._write_script = self._redis.register_script(_WRITE)
        self._delete_script = self._redis.register_script(_DELETE)
        self._pending = 0
        self._closed = False
        self._down: tuple[float, str] | None = None  # (monotonic since, why) while Redis is unreachable
        self._probe: asyncio.Task[None] | None = None

    @property
    def description(self) -> str:
        return redacted(self._url)

    @property
    def limits(self) -> StateLimits:
        return self._limits

    async def open(self) -> None:
        """Check that Redis answers, so a wrong URL fails at start, not on the first write."""
        with self._errors():
            await self._redis.ping()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.wait([self._probe])
        await self._redis.aclose()
        await self._pool.aclose()

    async def __aenter__(self) -> RedisStateBackend:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def outage(self) -> str | None:
        """Why state calls fail right now (one line), None while Redis answers."""
        if self._down is None:
            return None
        since, why = self._down
        return (
            f"the shared-state Redis at {self.description} cannot be reached ({why}) for "
            f"{time.monotonic() - since:.1f}s; the control plane reconnects by itself: retry shortly"
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        if self._down is not None:  # fail at once instead of waiting out a timeout per call
            raise Unavailable(self.outage or f"the shared-state Redis at {self.description} cannot be reached")
        try:
            yield
        except _UNREACHABLE as exc:
            self._unreachable(exc)
            raise Unavailable(f"the shared-state Redis at {self.description} cannot be reached: {exc}") from exc
        except _NOT_NOW as exc:
            raise Unavailable(f"the shared-state Redis at {self.description} cannot serve now: {exc}") from exc
        except RedisError as exc:
            raise Internal(f"the shared-state Redis at {self.description} answered an error: {exc}") from exc

    def _unreachable(self, exc: BaseException) -> None:
        if self._down is not None or self._closed:
            return
        why = str(exc).strip() or type(exc).__name__
        self._down = (time.monotonic(), why)
        log.warning("shared-state Redis at %s unreachable: %s", self.description, why)
        self._probe = asyncio.get_running_loop().create_task(self._reconnect(), name="maos-redis-probe")

    async def _reconnect(self) -> None:
        delay = FIRST_PROBE_SECONDS
        while self._down is not None and not self._closed:
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_PROBE_SECONDS)
            try:
                await asyncio.wait_for(self._redis.ping(), timeout=PROBE_TIMEOUT_SECONDS)
            except (*_UNREACHABLE, *_NOT_NOW):
                continue
            log.warning("shared-state Redis at %s reachable again after %.1fs", self.description, self._since())
            self._down = None

    def _since(self) -> float:
        return time.monotonic() - self._down[0] if self._down is not None else 0.0

    def _keys(self, namespace: str, raw_key: bytes) -> list[bytes]:
        """The four keys a write script touches, in the order the scripts expect."""
        base = self._base(namespace)
        return [base + b"e:" + raw_key, base + b"keys", base + b"rev", base + b"log"]

    def _base(self, namespace: str) -> bytes:
        return self._prefix + b"{" + namespace.encode() + b"}:"

    async def _run(self, script: Any, keys: list[bytes], args: list[bytes | int | str]) -> list[Any]:
        if self._closed:
            raise Unavailable("shared state is closed: the control plane is shutting down")
        if self._pending >= self._limits.max_pending_writes:
            raise ResourceExhausted(f"{self._pending} shared-state writes are waiting for Redis; retry in a moment")
        self._pending += 1
        try:
            with self._errors():
                result: list[Any] = await script(keys=keys, args=args)
                return result
        finally:
            self._pending -= 1

    # ------------------------------------------------------------------ writes

    async def put(self, namespace: str, key: str, value: bytes) -> StateChange:
        return await self._write(namespace, key, value, -1)

    async def cas(self, namespace: str, key: str, value: bytes, expected_version: int) -> StateChange:
        return await self._write(namespace, key, value, max(expected_version, 0))

    async def _write(self, namespace: str, key: str, value: bytes, expected: int) -> StateChange:
        raw = check_key(key, self._limits)
        check_value(key, value, self._limits)
        now = time.time()
        args: list[bytes | int | str] = [raw, value, expected, repr(now), self._limits.change_log_size]
        reply = await self._run(self._write_script, self._keys(namespace, raw), args)
        if reply[0] == 0:
            raise _stale(namespace, key, expected, reply)
        return StateChange(StateEntry(namespace, key, value, int(reply[1]), int(reply[2]), now))

    async def delete(self, namespace: str, key: str, expected_version: int = 0) -> DeleteOutcome:
        raw = check_key(key, self._limits)
        now = time.time()
        expected = max(expected_version, 0)
        args: list[bytes | int | str] = [raw, expected, repr(now), self._limits.change_log_size]
        reply = await self._run(self._delete_script, self._keys(namespace, raw), args)
        if reply[0] == 0:
            raise _stale(namespace, key, expected, reply)
        revision = int(reply[1])
        if reply[0] == 2:
            return DeleteOutcome(None, revision)
        return DeleteOutcome(StateChange(StateEntry(namespace, key, b"", 0, revision, now), deleted=True), revision)

    # ------------------------------------------------------------------- reads

    async def get(self, namespace: str, key: str) -> StateEntry | None:
        raw = check_key(key, self._limits)
        with self._errors():
            fields = await self._redis.hmget(self._base(namespace) + b"e:" + raw, [b"d", b"v", b"r", b"t"])
        return _entry(namespace, key, [_raw(f) for f in fields])

    async def list(
        self, namespace: str, prefix: str = "", *, after_key: str = "", limit: int = 100, keys_only: bool = False
    ) -> Sequence[StateEntry]:
        low = check_prefix(prefix, self._limits)
        after = after_key.encode("utf-8")
        start = b"(" + after if after >= low and after else b"[" + low
        base = self._base(namespace)
        with self._errors():
            found = await self._redis.zrangebylex(base + b"keys", start, b"(" + prefix_end(low), start=0, num=limit)
            keys = [_bytes(k) for k in found]
            if not keys:
                return []
            wanted = [b"v", b"r", b"t"] if keys_only else [b"d", b"v", b"r", b"t"]
            async with self._redis.pipeline(transaction=False) as pipe:
                for k in keys:
                    pipe.hmget(base + b"e:" + k, wanted)
                rows: list[list[bytes | None]] = await pipe.execute()
        out: list[StateEntry] = []
        for k, fields in zip(keys, rows, strict=True):
            entry = _entry(namespace, k.decode(), [b"", *fields] if keys_only else list(fields))
            if entry is not None:  # deleted between the two calls
                out.append(entry)
        return out

    async def changes(self, namespace: str, after_revision: int, limit: int) -> Sequence[StateChange]:
        with self._errors():
            rows = await self._redis.xrange(
                self._base(namespace) + b"log", min=f"{after_revision + 1}-0", max="+", count=limit
            )
        out: list[StateChange] = []
        for entry_id, fields in rows or ():
            f = {_bytes(k): _bytes(v) for k, v in (fields or {}).items()}
            revision = int(_bytes(entry_id).split(b"-", 1)[0])
            entry = StateEntry(namespace, f[b"k"].decode(), f[b"d"], int(f[b"v"]), revision, float(f[b"t"]))
            out.append(StateChange(entry, deleted=f[b"x"] == b"1"))
        return out

    async def namespaces(self) -> Sequence[str]:
        # A namespace's key index exists exactly while it holds a key (Redis drops empty sets).
        head, tail = self._prefix + b"{", b"}:keys"
        found: set[str] = set()
        with self._errors():
            async for name in self._redis.scan_iter(match=_glob_escape(head) + b"*" + tail, count=1000):
                raw = _bytes(name)
                found.add(raw[len(head) : -len(tail)].decode())
        return sorted(found)

    async def import_entries(self, entries: Sequence[StateEntry]) -> None:
        revisions: dict[str, int] = {}
        with self._errors():
            for i in range(0, len(entries), 1000):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for e in entries[i : i + 1000]:
                        raw, base = e.key.encode(), self._base(e.namespace)
                        fields = {b"d": e.value, b"v": e.version, b"r": e.revision, b"t": repr(e.updated_at)}
                        pipe.hset(base + b"e:" + raw, mapping=fields)  # type: ignore[arg-type]
                        pipe.zadd(base + b"keys", {raw: 0})
                        revisions[e.namespace] = max(revisions.get(e.namespace, 0), e.revision)
                    await pipe.execute()
            async with self._redis.pipeline(transaction=False) as pipe:
                for namespace, revision in revisions.items():
                    pipe.eval(_RAISE_REVISION, 1, self._base(namespace) + b"rev", revision)
                await pipe.execute()

    async def drop_namespace(self, namespace: str) -> None:
        """Delete every key of `namespace` (for tests and tools; not part of StateBackend)."""
        base = self._base(namespace)
        with self._errors():
            batch: list[bytes] = []
            async for name in self._redis.scan_iter(match=base.replace(b"*", b"\\*") + b"*", count=1000):
                batch.append(name)
                if len(batch) >= 500:
                    await self._redis.delete(*batch)
                    batch.clear()
            if batch:
                await self._redis.delete(*batch)


def _glob_escape(text: bytes) -> bytes:
    """`text` matched literally by a Redis SCAN pattern."""
    out = bytearray()
    for byte in text:
        if byte in b"*?[]\\":
            out += b"\\"
        out.append(byte)
    return bytes(out)


def _bytes(value: bytes | str | None) -> bytes:
    # The client is made without decode_responses, so replies are bytes; the types allow str.
    if isinstance(value, str):
        return value.encode()
    return value or b""


def _raw(value: bytes | str | None) -> bytes | None:
    return None if value is None else _bytes(value)


def _entry(namespace: str, key: str, fields: list[bytes | None]) -> StateEntry | None:
    value, version, revision, updated = fields
    if version is None:
        return None
    return StateEntry(namespace, key, value or b"", int(version), int(revision or 0), float(updated or 0))


def _stale(namespace: str, key: str, expected: int, reply: list[Any]) -> StaleVersion:
    _, version, value, revision, updated = reply
    current = StateEntry(namespace, key, value, int(version), int(revision), float(updated)) if version else None
    return StaleVersion(namespace, key, expected, current)

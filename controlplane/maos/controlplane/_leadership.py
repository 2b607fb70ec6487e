"""Active/standby on PostgreSQL: which of the control planes sharing one schema leads.

The leader holds a session-level advisory lock (keyed by the schema) on a
connection of its own, and on winning it bumps `leadership.epoch` and records
its endpoint there. The store checks that epoch in every write transaction
(`PostgresStore.fence`), so a deposed leader cannot write even if it has not
noticed yet. A standby polls for the lock and meanwhile tells clients where
the leader is.

Losing the lock's connection (or failing a health check on it) means another
control plane may lead soon. The leader stops serving at once (calls get
UNAVAILABLE saying why) and tries to re-take the lock: after a grace that gives a
standby the first chance, then with backoff while PostgreSQL is unreachable. If
it wins the lock and the epoch is still its own, nobody led in between (a winner
bumps the epoch first), so it serves again with its state intact: a lone control
plane rides out a network cut or a PostgreSQL restart without a restart of its
own. If the epoch moved, or it cannot get back within the store's
`outage_limit_seconds`, it stops and the process exits non-zero, so its
supervisor (systemd `Restart=always`) starts it again, as a standby. Writes stay
safe throughout: every one is fenced by the epoch, lock or no lock. The lock
connection asks PostgreSQL to end it after `LEASE_SECONDS` idle
(`idle_session_timeout`): a leader whose event loop or network hangs loses the
lock within that time, and its standby takes over.

`Campaign` is the pure part: observations in, decisions out.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
from maos.errors import MaosError, Unavailable

from .store import CONNECTION_ERRORS, PostgresStore

log = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 0.5  # a standby's attempts at the lock
CHECK_INTERVAL_SECONDS = 1.0  # the leader's health checks of its lock connection
LEASE_SECONDS = 10.0  # PostgreSQL ends a lock session idle this long
MAX_BACKOFF_SECONDS = 5.0  # a standby that cannot reach PostgreSQL retries at most this far apart
RETAKE_GRACE_SECONDS = 4 * POLL_INTERVAL_SECONDS  # a leader that lost its lock lets a standby try first
MAX_RETAKE_BACKOFF_SECONDS = 1.0  # then retries this often at most: the outage may end any moment
_POLL_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, MaosError)


class Role(enum.Enum):
    STANDBY = "standby"
    LEADER = "leader"
    RECONNECTING = "reconnecting"  # a leader that lost its lock's connection, trying to re-take it
    STOPPED = "stopped"


class Action(enum.Enum):
    WAIT = "wait"  # keep going as we are
    LEAD = "lead"  # we hold the lock: load state and serve
    STOP = "stop"  # stop serving and exit non-zero
    RETAKE = "retake"  # stop serving for now and try to re-take the lock
    RESUME = "resume"  # the lock is ours again at our epoch: serve again


@dataclass(slots=True)
class Campaign:
    """What a control plane does on each observation of the lock; no I/O."""

    poll_interval_seconds: float = POLL_INTERVAL_SECONDS
    max_backoff_seconds: float = MAX_BACKOFF_SECONDS
    role: Role = Role.STANDBY
    epoch: int = 0
    leader: str = ""  # the leader's endpoint, as last read
    errors: int = 0  # consecutive polls that could not reach PostgreSQL
    reason: str = ""  # why we stopped
    history: list[Role] = field(default_factory=list)

    def on_poll(self, won: bool, epoch: int, leader: str) -> Action:
        """A standby's attempt at the lock answered."""
        self.errors = 0
        if self.role is not Role.STANDBY:
            return Action.WAIT
        self.epoch, self.leader = epoch, leader
        if won:
            self._become(Role.LEADER)
            return Action.LEAD
        return Action.WAIT

    def on_poll_error(self) -> float:
        """A standby's attempt failed to reach PostgreSQL: seconds until the next one."""
        self.errors += 1
        return float(min(self.max_backoff_seconds, self.poll_interval_seconds * 2 ** min(self.errors, 16)))

    def on_check(self, ok: bool, detail: str = "") -> Action:
        """The leader's health check of its lock connection."""
        if self.role is not Role.LEADER or ok:
            return Action.WAIT
        self.reason = f"lost the leadership lock's connection to PostgreSQL ({detail or 'no answer'})"
        self.errors = 0
        self._become(Role.RECONNECTING)
        return Action.RETAKE

    def on_retake(self, won: bool, epoch: int, leader: str) -> Action:
        """A reconnecting leader's attempt at the lock answered."""
        self.errors = 0
        if self.role is not Role.RECONNECTING:
            return Action.WAIT
        if epoch != self.epoch:
            return self.stop(f"{self.reason}; meanwhile {leader or 'another control plane'} took over (epoch {epoch})")
        if won:
            self._become(Role.LEADER)
            return Action.RESUME
        return Action.WAIT  # our old session still holds it until PostgreSQL ends it (the lease)

    def on_retake_error(self, down_seconds: float, limit_seconds: float) -> float | None:
        """A reconnecting leader could not reach PostgreSQL: seconds until the next attempt,
        or None once it has tried for `limit_seconds` (then it has stopped)."""
        if down_seconds >= limit_seconds:
            self.stop(f"{self.reason}; PostgreSQL still unreachable after {down_seconds:.0f}s")
            return None
        self.errors += 1
        return float(min(MAX_RETAKE_BACKOFF_SECONDS, self.poll_interval_seconds * 2 ** min(self.errors - 2, 16)))

    def on_deposed(self, detail: str) -> Action:
        """A write found a newer epoch: another control plane leads."""
        if self.role is Role.STOPPED:
            return Action.WAIT
        return self.stop(detail)

    def stop(self, reason: str) -> Action:
        if self.role is Role.STOPPED:
            return Action.WAIT
        self.reason = reason
        self._become(Role.STOPPED)
        return Action.STOP

    def refusal(self) -> str | None:
        """What a client is told instead of an answer; None when we serve."""
        if self.role is Role.LEADER:
            return None
        if self.role is Role.STOPPED:
            return f"this control plane stopped leading ({self.reason}); connect to the current leader"
        if self.role is Role.RECONNECTING:
            return f"this control plane {self.reason} and is reconnecting by itself; retry shortly"
        if self.leader:
            return f"this control plane is a standby; the leader is {self.leader} (epoch {self.epoch})"
        return "this control plane is a standby and no leader has been elected yet; retry shortly"

    def _become(self, role: Role) -> None:
        self.role = role
        self.history.append(role)


class Leadership:
    """The I/O around `Campaign`: the lock connection, polling and health checks."""

    def __init__(
        self,
        store: PostgresStore,
        endpoint: str,
        *,
        on_lost: Callable[[str], None],
        poll_interval_seconds: float = POLL_INTERVAL_SECONDS,
        check_interval_seconds: float = CHECK_INTERVAL_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._store = store
        self._endpoint = endpoint
        self._on_lost = on_lost
        self._check_interval = check_interval_seconds
        self._lease_seconds = lease_seconds
        self.campaign = Campaign(poll_interval_seconds=poll_interval_seconds)
        self._conn: asyncpg.Connection | None = None
        self._watch: asyncio.Task[None] | None = None
        self._retake: asyncio.Task[None] | None = None
        self.retake_grace_seconds = RETAKE_GRACE_SECONDS
        self.acquired_at = 0.0  # monotonic time the lock was won (for failover measurements)

    @property
    def role(self) -> Role:
        return self.campaign.role

    @property
    def epoch(self) -> int:
        return self.campaign.epoch

    def refusal(self) -> str | None:
        """Why calls are refused: not the leader, reconnecting, or the store is unreachable."""
        if self.campaign.role is Role.RECONNECTING and self._store.outage:
            return self._store.outage  # the root cause, when the store lost PostgreSQL too
        return self.campaign.refusal() or self._store.outage

    async def try_acquire(self) -> bool:
        """One attempt at the lock; on winning, fence the store and start the health checks.
        Errors reaching PostgreSQL propagate (the caller decides whether to retry)."""
        conn = await self._connection()
        key = self._store.target.lock_key
        won = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
        if won:
            row = await conn.fetchrow(
                "UPDATE leadership SET epoch = epoch + 1, leader = $1, since = EXTRACT(EPOCH FROM clock_timestamp()) "
                "WHERE id = 1 RETURNING epoch, leader",
                self._endpoint,
            )
        else:
            row = await conn.fetchrow("SELECT epoch, leader FROM leadership WHERE id = 1")
        if row is None:
            raise Unavailable(f"{self._store.description} has no leadership row: its schema is damaged")
        action = self.campaign.on_poll(won, int(row["epoch"]), str(row["leader"]))
        if action is Action.LEAD:
            self.acquired_at = time.monotonic()
            self._store.fence(self.campaign.epoch, self.deposed)
            self._watch = asyncio.create_task(self._check_loop(), name="maos-leadership-check")
            log.info("leading %s at epoch %d", self._store.description, self.campaign.epoch)
        return won

    async def wait_until_leader(self) -> None:
        """Poll until the lock is ours (a standby's life). Cancel to give up."""
        while True:
            try:
                if await self.try_acquire():
                    return
                delay = self.campaign.poll_interval_seconds
            except _POLL_ERRORS as exc:
                await self._drop_connection()
                delay = self.campaign.on_poll_error()
                log.warning("standby: cannot reach %s (%s); retrying in %.1fs", self._store.description, exc, delay)
            await asyncio.sleep(delay)

    def deposed(self, detail: str) -> None:
        """Called by the store when a write finds a newer epoch."""
        if self.campaign.on_deposed(detail) is Action.STOP:
            self._on_lost(self.campaign.reason)

    async def close(self) -> None:
        """Stop checking and release the lock (by closing its connection). Idempotent."""
        for task in (self._watch, self._retake):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                await asyncio.wait([task])
        self._watch = self._retake = None
        await self._drop_connection()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._store.connect(
                application_name=f"{self._store.options.application_name}-leader",
                server_settings={
                    # The lock is a lease: a session that stops checking in loses it.
                    "idle_session_timeout": f"{int(self._lease_seconds * 1000)}",
                    "tcp_keepalives_idle": "5",
                    "tcp_keepalives_interval": "2",
                    "tcp_keepalives_count": "3",
                },
            )
            self._conn.add_termination_listener(self._terminated)
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.remove_termination_listener(self._terminated)  # closing it ourselves is no loss
        if not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except _POLL_ERRORS:
                conn.terminate()

    def _terminated(self, conn: object) -> None:
        self._lock_lost("the connection closed")

    def _lock_lost(self, detail: str) -> None:
        action = self.campaign.on_check(False, f"{self._where}: {detail}")
        if action is Action.RETAKE:
            log.warning("%s; re-taking it", self.campaign.reason)
            self._retake = asyncio.get_running_loop().create_task(self._retake_loop(), name="maos-leadership-retake")
        elif action is Action.STOP:
            self._on_lost(self.campaign.reason)

    async def _retake_loop(self) -> None:
        """Re-take the lock at our epoch, or stop: see the module docstring."""
        lost_at = time.monotonic()
        await self._drop_connection()
        await asyncio.sleep(self.retake_grace_seconds)
        limit = self._store.options.outage_limit_seconds
        while self.campaign.role is Role.RECONNECTING:
            try:
                conn = await self._connection()
                won = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._store.target.lock_key))
                row = await conn.fetchrow("SELECT epoch, leader FROM leadership WHERE id = 1")
            except _POLL_ERRORS as exc:
                await self._drop_connection()
                delay = self.campaign.on_retake_error(time.monotonic() - lost_at, limit)
                if delay is None:
                    break
                log.info("leader: cannot reach %s to re-take the lock (%s); retrying in %.1fs", self._where, exc, delay)
                await asyncio.sleep(delay)
                continue
            if row is None:
                self.campaign.stop(f"{self._where} has no leadership row: its schema is damaged")
                break
            action = self.campaign.on_retake(won, int(row["epoch"]), str(row["leader"]))
            if action is Action.RESUME:
                log.warning(
                    "re-took the leadership lock of %s at epoch %d after %.1fs",
                    self._where,
                    self.campaign.epoch,
                    time.monotonic() - lost_at,
                )
                self._watch = asyncio.create_task(self._check_loop(), name="maos-leadership-check")
                return
            if action is Action.WAIT:  # the lock is still held (by our old session, until its lease ends)
                await asyncio.sleep(self.campaign.poll_interval_seconds)
        if self.campaign.role is Role.STOPPED:
            await self._drop_connection()  # we may hold the lock at a stale epoch: let it go
            self._on_lost(self.campaign.reason)

    @property
    def _where(self) -> str:
        return self._store.description

    async def _check_loop(self) -> None:
        while self.campaign.role is Role.LEADER:
            await asyncio.sleep(self._check_interval)
            conn = self._conn
            ok, detail = conn is not None and not conn.is_closed(), "the connection closed"
            if ok and conn is not None:
                try:
                    await conn.fetchval("SELECT 1", timeout=max(self._check_interval, self._lease_seconds / 2))
                except CONNECTION_ERRORS as exc:
                    ok, detail = False, str(exc) or type(exc).__name__
            if not ok:
                self._lock_lost(detail)

"""The host's end of HostService.Connect: one bidirectional stream of batched envelopes, reconnecting forever.

Up: HostItems in envelopes; a sender coroutine takes the first queued item,
then whatever else is already queued (up to 100 items / ~4 MB) without
waiting, so a lone item is never held back and a burst rides in one batch.
Down: ControlItems, handed to the LinkHandler one envelope at a time.

Each session: Register first, wait for Registered, resend every result not
yet acknowledged, then pump both ways until the stream breaks. Then back off
(full jitter, doubling from reconnect_initial_seconds to reconnect_max_seconds)
and start over. Running tasks are untouched by all this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import grpc
import grpc.aio
from maos.client._endpoints import EndpointRotation, parse_endpoints
from maos.v1 import common_pb2, hosts_pb2, hosts_pb2_grpc
from maos.wire import decode_envelope, encode_envelope, encode_serialized, framed_item

from ._config import AgentHostConfig

if TYPE_CHECKING:
    from maos.v1.hosts_pb2_grpc import HostServiceAsyncStub

logger = logging.getLogger(__name__)

MAX_ITEMS_PER_BATCH = 100
# Batches stop growing past this many payload bytes, well under the 16 MB message limit.
MAX_BATCH_BYTES = 4 * 1024 * 1024
REGISTER_TIMEOUT_SECONDS = 15.0

SizedItem = tuple[hosts_pb2.HostItem, int]
_Call = grpc.aio.StreamStreamCall[common_pb2.Envelope, common_pb2.Envelope]


class LinkHandler(Protocol):
    """The daemon side of the link."""

    def register_item(self) -> hosts_pb2.HostItem:
        """The Register item for a new session (with every lease held now)."""

    def unacked_results(self) -> Sequence[SizedItem]:
        """Results not yet acknowledged, to resend after (re)connecting."""

    def on_control(self, items: hosts_pb2.ControlItems) -> None:
        """Everything in one envelope from the control plane."""

    def on_disconnected(self) -> None:
        """The session ended (the link will reconnect unless it is closing)."""


class ControlPlaneLink:
    """A self-healing stream to the control plane. `run()` until `close()`."""

    def __init__(self, config: AgentHostConfig, handler: LinkHandler) -> None:
        self._config = config
        self._handler = handler
        self._queue: asyncio.Queue[SizedItem] = asyncio.Queue(config.outbox_size)
        self._connected = False
        self._closing = False
        self._close_event = asyncio.Event()
        # Set whenever everything queued so far has been written to the stream.
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._call: _Call | None = None
        self._dropped = 0
        self._endpoints = EndpointRotation(parse_endpoints(config.controlplane))
        self.sessions = 0
        metadata = [("authorization", f"Bearer {config.token}")] if config.token else []
        self._metadata = tuple(metadata)

    @property
    def connected(self) -> bool:
        """Registered and pumping."""
        return self._connected

    def send(self, item: hosts_pb2.HostItem, size: int = 0) -> bool:
        """Queue an item for the control plane; never blocks.

        Dropped (False) while disconnected or when the bounded queue is full:
        results survive that (the daemon keeps them until acknowledged and
        the link resends them), progress and started events are advisory.
        """
        if not self._connected:
            return False
        try:
            self._queue.put_nowait((item, size))
            self._flushed.clear()
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 10000 == 0:
                logger.warning("control plane outbox full; dropped %d items so far", self._dropped)
            return False
        return True

    async def run(self) -> None:
        """Connect, pump, reconnect with backoff; returns once close() was called."""
        config = self._config
        failures = 0
        while not self._closing:
            target = self._endpoints.current
            logger.info("connecting to the control plane at %s (attempt %d)", target, failures + 1)
            registered_before = self.sessions
            try:
                await self._session()
                reason = "the control plane closed the stream"
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                reason = f"{exc.code().name}: {exc.details()}"
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if self._closing:
                break
            if self._endpoints.has_elsewhere(reason):
                # Active/standby: the leader a standby named, else the next address.
                self._endpoints.failed(reason)
            # A session that got as far as Registered resets the backoff.
            failures = 0 if self.sessions > registered_before else failures + 1
            cap = min(config.reconnect_max_seconds, config.reconnect_initial_seconds * 2 ** max(0, failures - 1))
            delay = random.uniform(0, cap)
            logger.info(
                "control plane at %s unreachable or lost (%s); trying %s in %.2fs",
                target,
                reason,
                self._endpoints.current,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._close_event.wait(), delay)

    async def close(self, flush_within: float = 2.0) -> None:
        """Send what is queued (for up to `flush_within` s), half-close the stream, stop reconnecting."""
        if self._closing:
            return
        if self._connected and not self._flushed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flushed.wait(), flush_within)
        self._closing = True
        self._close_event.set()
        call = self._call
        if call is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(call.done_writing(), 1.0)

    async def _session(self) -> None:
        config = self._config
        options = [
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.keepalive_time_ms", 20_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ]
        # Items queued in an earlier session are stale; results among them are resent from the handler.
        while not self._queue.empty():
            self._queue.get_nowait()
        async with grpc.aio.insecure_channel(self._endpoints.current, options=options) as channel:
            stub: HostServiceAsyncStub = hosts_pb2_grpc.HostServiceStub(channel)
            # No request iterator: this side writes with call.write() (grpc-stubs does not know that form).
            call: _Call = stub.Connect(metadata=self._metadata or None)  # type: ignore[call-arg]
            self._call = call
            try:
                await self._handshake(call)
                reader = asyncio.create_task(self._read_loop(call), name="maos-link-reader")
                writer = asyncio.create_task(self._write_loop(call), name="maos-link-writer")
                closer: asyncio.Task[Any] = asyncio.create_task(self._close_event.wait(), name="maos-link-closer")
                try:
                    done, _ = await asyncio.wait({reader, writer, closer}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for t in (reader, writer, closer):
                        t.cancel()
                    await asyncio.gather(reader, writer, closer, return_exceptions=True)
                for t in done:
                    exc = None if t is closer or t.cancelled() else t.exception()
                    if exc is not None:
                        raise exc
            finally:
                was_connected = self._connected
                self._connected = False
                self._call = None
                call.cancel()
                if was_connected:
                    self._handler.on_disconnected()

    async def _handshake(self, call: _Call) -> None:
        handler = self._handler
        register = handler.register_item()
        await call.write(encode_envelope(hosts_pb2.HostItems(items=[register]), 1))
        while True:
            envelope = await asyncio.wait_for(call.read(), REGISTER_TIMEOUT_SECONDS)
            if not isinstance(envelope, common_pb2.Envelope):  # grpc.aio.EOF
                raise ConnectionError("the control plane closed the stream before Registered")
            items = decode_envelope(envelope, hosts_pb2.ControlItems)
            registered = any(item.WhichOneof("item") == "registered" for item in items.items)
            handler.on_control(items)
            if registered:
                break
        # From here new items queue up; resend the unacknowledged results first.
        self._connected = True
        self.sessions += 1
        pending = list(handler.unacked_results())
        logger.info(
            "registered with the control plane at %s as %s; resending %d unacknowledged results",
            self._config.controlplane,
            register.register.host_id,
            len(pending),
        )
        for batch in _batches(pending):
            await call.write(encode_envelope(hosts_pb2.HostItems(items=batch), len(batch)))

    async def _read_loop(self, call: _Call) -> None:
        handler = self._handler
        while True:
            envelope = await call.read()
            if not isinstance(envelope, common_pb2.Envelope):  # grpc.aio.EOF
                return
            handler.on_control(decode_envelope(envelope, hosts_pb2.ControlItems))

    async def _write_loop(self, call: _Call) -> None:
        queue = self._queue
        carry: SizedItem | None = None
        while True:
            first = carry if carry is not None else await queue.get()
            carry = None
            items = [first[0]]
            size = first[1]
            while len(items) < MAX_ITEMS_PER_BATCH and not queue.empty():
                nxt = queue.get_nowait()
                if size + nxt[1] > MAX_BATCH_BYTES:
                    carry = nxt
                    break
                items.append(nxt[0])
                size += nxt[1]
            # Each item's own encoding, joined: what HostItems(items=items) encodes to, without
            # copying every item (a send batch of hundreds of messages) into it.
            await call.write(encode_serialized(b"".join(map(framed_item, items)), len(items)))
            if carry is None and queue.empty():
                self._flushed.set()


def _batches(sized: Sequence[SizedItem]) -> Iterator[list[hosts_pb2.HostItem]]:
    batch: list[hosts_pb2.HostItem] = []
    size = 0
    for item, item_size in sized:
        if batch and (len(batch) >= MAX_ITEMS_PER_BATCH or size + item_size > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch

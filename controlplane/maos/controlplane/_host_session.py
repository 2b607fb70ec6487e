"""One connected agent host: its outbound item queue and what it last reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from maos.v1 import common_pb2, hosts_pb2
from maos.wire import WireStats, encode_serialized, framed_item

MAX_ITEMS_PER_BATCH = 100
# Bounded by dispatch credit in practice; the bound catches a host that stopped reading.
OUTBOX_SIZE = 100_000

_CLOSE = object()


@dataclass(eq=False)
class HostSession:
    """The control plane's side of one HostService.Connect stream."""

    register: hosts_pb2.Register
    connected_at: float = field(default_factory=time.time)
    last_heartbeat: hosts_pb2.Heartbeat = field(default_factory=hosts_pb2.Heartbeat)
    sent: WireStats = field(default_factory=WireStats)
    received: WireStats = field(default_factory=WireStats)
    # Items, or items already framed as elements of a ControlItems batch (`framed_item`'s bytes).
    _outbox: asyncio.Queue[hosts_pb2.ControlItem | bytes | object] = field(
        default_factory=lambda: asyncio.Queue(OUTBOX_SIZE)
    )
    closed: bool = False

    @property
    def host_id(self) -> str:
        return self.register.host_id

    def send(self, item: hosts_pb2.ControlItem | bytes) -> bool:
        """Queue an item (or one framed already, as `framed_item` would) for the host; False
        when the host is not keeping up (it is then disconnected and its leases expire like
        any lost host's)."""
        if self.closed:
            return False
        try:
            self._outbox.put_nowait(item)
        except asyncio.QueueFull:
            self.close()
            return False
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            # Make room for the sentinel; whatever was queued is moot once we hang up.
            while self._outbox.full():
                self._outbox.get_nowait()
            self._outbox.put_nowait(_CLOSE)

    async def envelopes(self) -> AsyncIterator[common_pb2.Envelope]:
        """Outbound batches: wait for one item, then take what else is already queued.
        A lone item goes out at once; under load items ride together. Each item is encoded
        on its own and the encodings joined (what ControlItems(items=...) would encode to,
        without copying every item, deliveries of hundreds of messages, into it)."""
        while True:
            first = await self._outbox.get()
            if first is _CLOSE:
                return
            parts = [_framed(first)]
            closing = False
            while len(parts) < MAX_ITEMS_PER_BATCH and not self._outbox.empty():
                nxt = self._outbox.get_nowait()
                if nxt is _CLOSE:
                    closing = True
                    break
                parts.append(_framed(nxt))
            envelope = encode_serialized(b"".join(parts), len(parts))
            self.sent.record(envelope)
            yield envelope
            if closing:
                return


def _framed(item: object) -> bytes:
    if isinstance(item, bytes):
        return item
    assert isinstance(item, hosts_pb2.ControlItem)
    return framed_item(item)

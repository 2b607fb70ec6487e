"""A small TCP proxy for fault tests: put it between a service and PostgreSQL or Redis, then cut the wire.

`TcpProxy` runs on an asyncio loop: it listens on 127.0.0.1 (port 0 unless told) and
forwards every connection to the target. `cut()` closes every open connection and
either refuses new ones (the listener is closed: the client sees ECONNREFUSED, like
a server that is down) or, with `blackhole=True`, accepts them and forwards nothing
(like a network partition: the client only notices through its own timeouts).
`restore()` lets connections through again, on the same port.

`BackgroundProxy` runs one on a thread of its own, for the synchronous tests that
drive real control-plane processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

_T = TypeVar("_T")
_CHUNK = 64 * 1024


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` until cut."""

    def __init__(self, target_host: str, target_port: int, *, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = listen_port
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.cut_now = False
        self.blackhole = False
        self.accepted = 0  # connections accepted (forwarded or held), for tests

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def cut(self, *, blackhole: bool = False) -> None:
        """Close every open connection; refuse (or, with `blackhole`, swallow) new ones."""
        self.cut_now, self.blackhole = True, blackhole
        if not blackhole and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._close_all()

    async def restore(self) -> None:
        """Forward new connections again; connections held by a blackhole are closed."""
        self.cut_now = False
        await self._close_all()
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        self.cut_now = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._close_all()

    async def _close_all(self) -> None:
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()
        pipes = list(self._pipes)
        for pipe in pipes:
            pipe.cancel()
        if pipes:
            await asyncio.wait(pipes)
        await asyncio.sleep(0)  # let the aborted transports run connection_lost and close their sockets

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        if self.cut_now:  # a blackhole: hold the connection open and say nothing
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._writers.discard(writer)
            _abort(writer)
            return
        if self.cut_now:  # cut while connecting upstream
            _abort(up_writer)
            return
        self._writers.add(up_writer)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst, (writer, up_writer)))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, both: tuple[asyncio.StreamWriter, ...]
    ) -> None:
        try:
            while data := await src.read(_CHUNK):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # One side ended: end the other too, as a real hop would (no half-open pairs).
            for w in both:
                self._writers.discard(w)
                _abort(w)


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()  # RST, not FIN: the peer learns at once that the connection is gone


class BackgroundProxy:
    """A `TcpProxy` on a thread of its own; every method blocks until done. Use as a context manager."""

    def __init__(self, target_host: str, target_port: int, *, listen_port: int = 0) -> None:
        self.proxy = TcpProxy(target_host, target_port, listen_port=listen_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def address(self) -> str:
        return self.proxy.address

    def start(self) -> BackgroundProxy:
        self._thread.start()
        self._call(self.proxy.start())
        return self

    def cut(self, *, blackhole: bool = False) -> None:
        self._call(self.proxy.cut(blackhole=blackhole))

    def restore(self) -> None:
        self._call(self.proxy.restore())

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):
            self._call(self.proxy.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def __enter__(self) -> BackgroundProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

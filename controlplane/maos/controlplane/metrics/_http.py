"""A tiny HTTP/1.0 server for Prometheus: GET /metrics, 404 elsewhere, one response per connection.

No dependency beyond asyncio. Every request is bounded (line length, header
count, a deadline) and every failure is answered or dropped quietly: a bad
request must never reach the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from maos.errors import InvalidArgument

from ._prometheus import CONTENT_TYPE

log = logging.getLogger(__name__)

REQUEST_DEADLINE_SECONDS = 5.0
MAX_LINE_BYTES = 8192
MAX_HEADERS = 100
MAX_CONNECTIONS = 64

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


class _BadRequest(Exception):
    pass


def _split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InvalidArgument(f"--metrics-listen {listen!r} must be HOST:PORT, e.g. 127.0.0.1:9464 (port 0 = any)")
    return host.strip("[]"), int(port)


class MetricsHttpServer:
    """Serves `render()` at /metrics on `listen` (HOST:PORT)."""

    def __init__(self, listen: str, render: Callable[[], str]) -> None:
        self._host, self._port = _split_listen(listen)
        self._render = render
        self._server: asyncio.Server | None = None
        self._open = 0
        self.endpoint = ""

    async def start(self) -> str:
        try:
            self._server = await asyncio.start_server(self._serve, self._host, self._port, limit=MAX_LINE_BYTES)
        except OSError as exc:
            raise InvalidArgument(f"cannot serve metrics on {self._host}:{self._port}: {exc.strerror or exc}") from None
        port = self._server.sockets[0].getsockname()[1]
        self.endpoint = f"{self._host}:{port}"
        return self.endpoint

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open += 1
        try:
            if self._open > MAX_CONNECTIONS:
                return  # closed at once: scrapers retry
            try:
                async with asyncio.timeout(REQUEST_DEADLINE_SECONDS):
                    method, path = await self._read_request(reader)
                    status, body = self._answer(method, path)
                    await self._respond(writer, status, body, head_only=method == "HEAD")
            except _BadRequest as exc:
                await self._respond(writer, 400, f"{exc}\n")
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                pass
            except Exception:
                log.exception("metrics endpoint: request failed")
                with contextlib.suppress(Exception):
                    await self._respond(writer, 500, "internal error; see the control plane log\n")
        finally:
            self._open -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
        try:
            line = await reader.readuntil(b"\n")
            for _ in range(MAX_HEADERS + 1):
                header = await reader.readuntil(b"\n")
                if header in (b"\r\n", b"\n"):
                    break
            else:
                raise _BadRequest("too many headers")
        except asyncio.LimitOverrunError:
            raise _BadRequest("request line or header too long") from None
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise _BadRequest("malformed request line")
        return parts[0], parts[1]

    def _answer(self, method: str, target: str) -> tuple[int, str]:
        if method not in ("GET", "HEAD"):
            return 405, "only GET /metrics is served\n"
        if target.split("?", 1)[0] != "/metrics":
            return 404, "not found: metrics are at /metrics\n"
        return 200, self._render()

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, body: str, *, head_only: bool = False) -> None:
        data = body.encode()
        content_type = CONTENT_TYPE if status == 200 else "text/plain; charset=utf-8"
        head = (
            f"HTTP/1.0 {status} {_REASONS[status]}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(data)}\r\n"
            + ("Allow: GET, HEAD\r\n" if status == 405 else "")
            + "Connection: close\r\n\r\n"
        )
        writer.write(head.encode() + (b"" if head_only else data))
        await writer.drain()

"""The fault tests' TCP proxy: it forwards, it cuts (refusing or swallowing), it restores on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from tests.support.tcp_proxy import BackgroundProxy, TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxy = TcpProxy("127.0.0.1", int(server.sockets[0].getsockname()[1]))
    await proxy.start()
    yield proxy
    await proxy.close()
    server.close()
    await server.wait_closed()


async def _round_trip(port: int, payload: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), timeout=5)
    finally:
        await _close(writer)


async def test_forwards_both_ways(proxy: TcpProxy) -> None:
    assert await _round_trip(proxy.port, b"x" * 200_000) == b"x" * 200_000


async def test_cut_closes_open_connections_and_refuses_new_ones_until_restored(proxy: TcpProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"hello")
    assert await reader.readexactly(5) == b"hello"
    port = proxy.port

    await proxy.cut()
    try:  # the open connection is gone: a read ends (EOF or reset) instead of waiting
        assert await asyncio.wait_for(reader.read(10), timeout=5) == b""
    except ConnectionResetError:
        pass
    await _close(writer)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)

    await proxy.restore()
    assert proxy.port == port
    assert await _round_trip(port) == b"ping"


async def test_a_blackhole_accepts_but_answers_nothing(proxy: TcpProxy) -> None:
    await proxy.cut(blackhole=True)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"anyone?")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(10), timeout=0.3)
    await proxy.restore()
    # The held connection is dropped on restore; new ones go through.
    assert await asyncio.wait_for(reader.read(10), timeout=5) == b""
    await _close(writer)
    assert await _round_trip(proxy.port) == b"ping"


def test_background_proxy_serves_blocking_clients() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as upstream,
        BackgroundProxy("127.0.0.1", upstream.getsockname()[1]) as bg,
    ):
        client = socket.create_connection(("127.0.0.1", bg.port), timeout=5)
        served, _ = upstream.accept()
        with client, served:
            client.sendall(b"abc")
            assert served.recv(3) == b"abc"
            bg.cut()
            try:
                assert client.recv(3) == b""  # EOF, or a reset: the proxy dropped it
            except ConnectionResetError:
                pass
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", bg.port), timeout=5)
        bg.restore()
        with socket.create_connection(("127.0.0.1", bg.port), timeout=5):
            upstream.accept()[0].close()

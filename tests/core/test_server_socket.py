"""The socket ``segmently serve`` listens on: small writes leave at once on every event loop."""

from __future__ import annotations

import asyncio
import socket

from segmently.server import _socket


async def test_connections_accepted_on_the_servers_socket_have_nagle_off() -> None:
    # With Nagle's algorithm on, a response body written after its headers waits for the client's
    # delayed ACK (~40 ms on Linux). uvloop turns it off on every TCP connection; the stdlib loop
    # only when the listening socket says IPPROTO_TCP, which this checks.
    accepted: list[int] = []

    def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    sock = _socket("127.0.0.1", 0, reuse_port=False)
    server = await asyncio.start_server(on_connect, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection(*sock.getsockname())
        for _ in range(200):
            if accepted:
                break
            await asyncio.sleep(0.01)
        writer.close()
    assert accepted == [1]

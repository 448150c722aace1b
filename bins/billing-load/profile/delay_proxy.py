#!/usr/bin/env python3
"""A TCP proxy that delays every byte it forwards, in both directions, to put a database "farther
away" than loopback: what a round trip to Postgres costs when it runs on another host.

    delay_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS

Listens on 127.0.0.1:LISTEN_PORT and forwards each connection to 127.0.0.1:TARGET_PORT, each
chunk delivered DELAY_MS after it was read, in order. asyncio's timers wake on whole
milliseconds (epoll), so a delay below 1 ms becomes about 1 ms per direction: compare runs made
through the same proxy, not its delay with a real network's. Point the server's DATABASE_URL at
LISTEN_PORT (docs/benchmarks.md says how each measurement used it). Stop it with Ctrl-C.
"""
import asyncio
import socket
import sys
import time

LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000


def no_delay(writer: asyncio.StreamWriter) -> None:
    """Sends each chunk at once (no Nagle): the delay is the proxy's alone."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies reader to writer, each chunk DELAY after it arrived; closes writer at the end."""
    chunks: asyncio.Queue = asyncio.Queue()

    async def read() -> None:
        while True:
            data = await reader.read(65536)
            chunks.put_nowait((time.monotonic() + DELAY, data))
            if not data:
                return

    async def write() -> None:
        while True:
            due, data = await chunks.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, asyncio.IncompleteReadError):
        writer.close()


async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    server_reader, server_writer = await asyncio.open_connection("127.0.0.1", TARGET)
    no_delay(client_writer)
    no_delay(server_writer)
    await asyncio.gather(
        forward(client_reader, server_writer),
        forward(server_reader, client_writer),
        return_exceptions=True,
    )


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())

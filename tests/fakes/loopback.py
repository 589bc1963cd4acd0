"""What every fake stands on: loopback ports, an aiohttp app on its own thread, a server that goes down
and comes back on its port, and a recording proxy.

A fake never shares the test's event loop: the bot under test calls it from the bot's own thread,
and a test may block its thread (a Flyte run, a sync client) while the bot still talks to the fake.
Nothing here imports the project: a fake stands for the outside world and does not change when our
code does.
"""

from __future__ import annotations

import asyncio
import random
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

T = TypeVar("T")
Record = tuple[str, str, dict[str, list[str]]]  # method, path, query


def free_port() -> int:
    """A port free on 127.0.0.1 just now (for a server that must be told its port before it starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def steady_port() -> int:
    """A free port on 127.0.0.1 below the kernel's ephemeral range, for a server that goes down and comes
    back on it: while it is down, no outgoing connection on this busy machine gets it as its own port."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            ephemeral = int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):  # not Linux: any free port
        return free_port()
    for port in random.sample(range(10_000, ephemeral), 50):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def hold_port(port: int, seconds: float = 5) -> socket.socket:
    """Bind `port` without listening: connections are refused ("the service is down"), and no other
    socket takes the port before the service comes back to it (close, then rebind).

    Just after a server closes, the kernel may refuse the bind for some milliseconds while its last
    connections wind down: try again until `seconds` have passed.
    """
    deadline = time.monotonic() + seconds
    while True:
        held = socket.socket()
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            held.bind(("127.0.0.1", port))
            return held
        except OSError:
            held.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class Restartable:
    """A server (`make(port)`) on a steady loopback port, that goes down and comes back on that port.

    While down the port refuses connections, as a crashed service's does, and stays held for the
    server's return (unless stopped with `keep_port=False`).
    """

    def __init__(self, make: Callable[[int], socketserver.BaseServer], *, port: int = 0, name: str) -> None:
        self.port = port or steady_port()
        self._make = make
        self._name = name
        self._server: socketserver.BaseServer | None = None
        self._held: socket.socket | None = None

    def start(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None
        self._server = self._make(self.port)
        threading.Thread(target=self._server.serve_forever, name=self._name, daemon=True).start()

    def stop(self, *, keep_port: bool = True) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if keep_port and self._held is None:
            self._held = hold_port(self.port)
        elif not keep_port and self._held is not None:
            self._held.close()
            self._held = None


class Served:
    """`app` on 127.0.0.1 (`port`, or a free one), served by its own event loop in a daemon thread."""

    def __init__(
        self,
        app: web.Application,
        *,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        name: str = "fake",
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self._runner = web.AppRunner(app, access_log=None)
        self.port = self.call(self._start(port, tls))
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    async def _start(self, port: int, tls: ssl.SSLContext | None) -> int:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=tls).start()
        return int(self._runner.addresses[0][1])

    def call(self, work: Coroutine[Any, Any, T], seconds: float = 30) -> T:
        """Run `work` on the server's loop (from any other thread) and return its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(seconds)

    def stop(self) -> None:
        """Stop listening, finish the app's shutdown and cleanup hooks, end the thread."""
        self.call(self._runner.cleanup(), seconds=90)  # handlers in flight get aiohttp's 60 s grace
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class Proxy:
    """A server in front of `upstream` that records every request it gets (method, path, query).

    Subclasses say what a request becomes upstream (`_handle`); `_send` makes one upstream request
    and passes its answer back as it came.
    """

    _HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})
    _session: aiohttp.ClientSession  # opened on the server's loop as it starts

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[Record] = []
        self._lock = threading.Lock()
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._record)
        app.cleanup_ctx.append(self._client)
        self._served = Served(app, name=type(self).__name__)
        self.endpoint = self._served.url

    async def _client(self, _: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(auto_decompress=False) as self._session:
            yield

    async def _record(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.requests.append((request.method, request.path, parse_qs(urlsplit(request.path_qs).query)))
        return await self._handle(request)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def _send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> web.Response:
        """One upstream request, its answer passed back as it came."""
        async with self._session.request(
            method,
            url,
            headers=headers,
            data=body or None,
            skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent"),
            allow_redirects=False,
        ) as reply:
            data = await reply.read()
            hop = self._HOP if method != "HEAD" else self._HOP - {"content-length"}  # a HEAD's length is the object's
            out = {k: v for k, v in reply.headers.items() if k.lower() not in hop}
            return web.Response(status=reply.status, headers=out, body=data or None)

    def take(self) -> list[Record]:
        """The requests recorded since the last call: (method, path, query)."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def stop(self) -> None:
        self._served.stop()

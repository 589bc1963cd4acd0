"""Azure Blob emulator (Azurite) on loopback, and an HTTP proxy that counts what a client asks of it.

Azurite is Microsoft's own emulator (npm); `make install-test` puts it in `.cache/azurite`. The bot
reaches it through object_store's standard environment (`AZURE_STORAGE_USE_EMULATOR`,
`AZURITE_BLOB_STORAGE_URL`), exactly as it reaches an Azure account through `AZURE_STORAGE_*`.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from hitl_chatops.bot.server import free_port

AZURITE = Path(__file__).resolve().parent.parent / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, the same in every Azurite and in Microsoft's docs).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    """`azurite-blob` in memory on a free loopback port, for one test session."""

    def __init__(self, workdir: Path) -> None:
        if not AZURITE.exists():
            raise RuntimeError(f"{AZURITE} is missing: run `make install-test` (it installs Azurite with npm)")
        port = free_port("127.0.0.1")
        self.endpoint = f"http://127.0.0.1:{port}"
        options = ["--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"]
        self._process = subprocess.Popen(
            [str(AZURITE), *options, "--disableTelemetry", "--silent", "--skipApiVersionCheck"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait(port)

    def _wait(self, port: int) -> None:
        deadline = time.monotonic() + 60  # node starts in under a second, but the machine may be busy
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                assert self._process.stderr is not None
                raise RuntimeError(f"Azurite exited: {self._process.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("Azurite did not listen within 60 s")

    def create_container(self, name: str, endpoint: str | None = None) -> None:
        from azure.storage.blob import BlobServiceClient

        url = f"{endpoint or self.endpoint}/{AZURITE_ACCOUNT}"
        credential = {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
        with BlobServiceClient(url, credential=credential) as client:
            client.create_container(name)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def azure_env(endpoint: str) -> dict[str, str]:
    return {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": endpoint}


class CountingProxy:
    """A loopback HTTP proxy in front of `upstream` that records every request (method, path, query).

    Bodies and headers pass through untouched (Azure signs them: nothing may be added or dropped).
    """

    _HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        port = free_port("127.0.0.1")
        self.endpoint = f"http://127.0.0.1:{port}"
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(port), self._loop).result(timeout=30)

    async def _start(self, port: int) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.requests.append((request.method, request.path, parse_qs(urlsplit(request.path_qs).query)))
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self._HOP}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body or None,
            skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent"),
            allow_redirects=False,
        ) as reply:
            data = await reply.read()
            out = {k: v for k, v in reply.headers.items() if k.lower() not in self._HOP}
            return web.Response(status=reply.status, headers=out, body=data)

    def take(self) -> list[tuple[str, str, dict[str, list[str]]]]:
        """The requests recorded since the last call."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def count(self) -> Counter[str]:
        """`take()` as a count per kind: Azure's List Blobs (`comp=list`) as LIST, a batch as BATCH."""
        kinds: Counter[str] = Counter()
        for method, _, query in self.take():
            comp = query.get("comp", [""])[0]
            kinds["LIST" if comp == "list" else "BATCH" if comp == "batch" else method] += 1
        return kinds

    def stop(self) -> None:
        async def close() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            await self._session.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)

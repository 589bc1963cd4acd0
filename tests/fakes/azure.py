"""Azure Blob Storage, faked by Azurite (Microsoft's own emulator), and a proxy that counts what reaches it.

Azurite comes from npm (`make install-test` puts it in `.cache/azurite`). The bot reaches it through
object_store's `AZURE_STORAGE_USE_EMULATOR` and `AZURITE_BLOB_STORAGE_URL` (`azure_env`), exactly as it
reaches an Azure account through `AZURE_STORAGE_*`. Azurite keeps blobs in memory for the session.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

from tests.fakes.loopback import Proxy, free_port

AZURITE = Path(__file__).resolve().parents[2] / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, the same in every Azurite and in Microsoft's docs).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    """`azurite-blob` in memory on a free loopback port, for one test session."""

    def __init__(self, workdir: Path) -> None:
        if not AZURITE.exists():
            raise RuntimeError(f"{AZURITE} is missing: run `make install-test` (it installs Azurite with npm)")
        port = free_port()
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
    """object_store's standard Azure settings for the emulator at `endpoint`."""
    return {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": endpoint}


class CountingProxy(Proxy):
    """A proxy in front of Azurite that records every request (method, path, query).

    Bodies and headers pass through untouched (Azure signs them: nothing may be added or dropped).
    """

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self._HOP}
        return await self._send(request.method, self.upstream + request.path_qs, headers, await request.read())

    def count(self) -> Counter[str]:
        """`take()` as a count per kind: Azure's List Blobs (`comp=list`) as LIST, a batch as BATCH."""
        kinds: Counter[str] = Counter()
        for method, _, query in self.take():
            comp = query.get("comp", [""])[0]
            kinds["LIST" if comp == "list" else "BATCH" if comp == "batch" else method] += 1
        return kinds

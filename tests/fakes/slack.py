"""Slack, faked: the Web API, `response_url`s and the Socket Mode WebSocket, on loopback.

Like bolt's own `tests/mock_web_api_server/`: the real `AsyncWebClient` talks to it through
`SLACK_API_URL` (`{url}/api`). It records every call (`calls`, `of`, `wait_for`), every
`response_url` post (`responses`) and every Socket Mode ack (`socket_acks`); it can fail or hold
the next calls of a method, push Socket Mode envelopes, and check every Block Kit payload the bot
sent (`validate_all`). Slack's other side, the signature on the requests Slack sends, is
`signed_headers`. A bench runs it in another process and reads how many calls succeeded at
`GET /fake/calls/{method}`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.signature import SignatureVerifier

from tests.fakes.loopback import Served

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
SIGNING_SECRET = "slack-signing-secret-for-tests"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int
    peer: tuple[str, int]  # the client's address and port: which connection the call came over


@dataclass(frozen=True)
class Failure:
    """How the fake answers a call it fails: HTTP `status` with Slack's `error`, or an HTML page."""

    status: int
    error: str = "fatal_error"
    html: bool = False
    retry_after: int = 0  # a 429's Retry-After, in seconds


@dataclass
class FakeSlack:
    """The fake Web API in its own thread (the bot may call it while a test thread blocks)."""

    calls: list[Call] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # e-mail address -> user id (`users.lookupByEmail`)
    url: str = ""
    _failures: dict[str, list[Failure]] = field(default_factory=dict)
    _held: dict[str, tuple[threading.Event, float]] = field(default_factory=dict)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _served: Served | None = None
    _ts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Slack's per-channel limit on chat.postMessage when set (`limit_posts`): channel -> (tokens, at)
    _post_limit: tuple[float, int] | None = None
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    # -- control -----------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeSlack:
        self._served = Served(self._app(), port=port, name="fake-slack")
        self.url = self._served.url
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()

    def fail_next(
        self,
        method: str,
        status: int = 429,
        times: int = 1,
        *,
        error: str = "fatal_error",
        html: bool = False,
        retry_after: int = 0,
    ) -> None:
        """Answer the next `times` calls of `method` with HTTP `status` and Slack's `error` (`ok: false`,
        which Slack also sends with a 200), or with a proxy's HTML page; status 0 drops the connection.
        A 429 says `Retry-After: retry_after`."""
        self._failures.setdefault(method, []).extend([Failure(status, error, html, retry_after)] * times)

    def limit_posts(self, per_second: float = 1.0, burst: int = 4) -> None:
        """Hold `chat.postMessage` to Slack's per-channel limit: `burst` at once, then `per_second`;
        a post over it is answered 429 with `Retry-After: 1`, as Slack does."""
        self._post_limit = (per_second, burst)

    def stop_failing(self, method: str) -> None:
        self._failures.pop(method, None)

    def hold(self, method: str, seconds: float = 10) -> threading.Event:
        """Calls to `method` get no answer until the returned event is set (`seconds` at most)."""
        return self._held.setdefault(method, (threading.Event(), seconds))[0]

    def connections(self) -> set[tuple[str, int]]:
        """The client connections that Web API calls came over."""
        with self._lock:
            return {c.peer for c in self.calls}

    def of(self, method: str, *, ok_only: bool = True) -> list[dict[str, Any]]:
        with self._lock:
            return [c.params for c in self.calls if c.method == method and (c.status == 200 or not ok_only)]

    async def wait_for(self, method: str, count: int = 1, seconds: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while len(found := self.of(method)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method}: expected {count} calls, saw {len(found)}: {self.calls}")
            await asyncio.sleep(0.02)
        return found

    async def wait_for_responses(self, count: int = 1, seconds: float = 10) -> list[dict[str, Any]]:
        """What the bot sent to `response_url`s (slash command replies) once `count` arrived."""
        deadline = time.monotonic() + seconds
        while len(self.responses) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} response_url posts, saw {self.responses}")
            await asyncio.sleep(0.02)
        with self._lock:
            return list(self.responses)

    def push(self, envelope: dict[str, Any]) -> None:
        """Send a Socket Mode envelope to every connected client."""

        async def send() -> None:
            for socket in self._sockets:
                await socket.send_str(json.dumps(envelope))

        assert self._served is not None, "start() first"
        self._served.call(send(), seconds=10)

    def validate_all(self) -> int:
        """Re-validate every Block Kit payload the bot sent; returns how many were checked."""
        checked = 0
        with self._lock:
            sent = [c.params for c in self.calls] + list(self.responses)
        for params in sent:
            if isinstance(params.get("blocks"), list):
                validate_blocks(params["blocks"])
                checked += 1
            if isinstance(params.get("view"), dict):
                validate_view(params["view"])
                checked += 1
        return checked

    @property
    def sockets(self) -> int:
        return len(self._sockets)

    # -- the server --------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/fake/calls/{method}", self._count)
        app.on_shutdown.append(self._close_sockets)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update(await request.post())
        params["_authorization"] = request.headers.get("Authorization", "")
        peer = tuple(request.transport.get_extra_info("peername")) if request.transport else ("", 0)
        if (held := self._held.get(method)) is not None:
            await asyncio.get_running_loop().run_in_executor(None, held[0].wait, held[1])
        failures = self._failures.get(method)
        if (
            method == "chat.postMessage"
            and not params.get("thread_ts")
            and self._over_limit(str(params.get("channel")))
        ):
            failures = [Failure(429, "ratelimited", retry_after=1)]
        if failures:
            failure = failures.pop(0)
            with self._lock:
                self.calls.append(Call(method, params, failure.status, peer))
            return self._failed(request, failure)
        with self._lock:
            self.calls.append(Call(method, params, 200, peer))
        return web.json_response(self._answer(method, params))

    def _over_limit(self, channel: str) -> bool:
        """Whether a post to `channel` now goes over `limit_posts` (a token bucket per channel)."""
        if self._post_limit is None:
            return False
        per_second, burst = self._post_limit
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(channel, (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) * per_second)
            over = tokens < 1
            self._buckets[channel] = (tokens if over else tokens - 1, now)
        return over

    def rate_limited(self, method: str) -> int:
        """How many calls of `method` were answered 429."""
        with self._lock:
            return sum(1 for c in self.calls if c.method == method and c.status == 429)

    @staticmethod
    def _failed(request: web.Request, failure: Failure) -> web.Response:
        if failure.status == 0 and request.transport is not None:  # the connection drops without an answer
            request.transport.close()
            return web.Response()
        if failure.html:
            page = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
            return web.Response(text=page, status=failure.status, content_type="text/html")
        if failure.status == 429:
            headers = {"Retry-After": str(failure.retry_after)}
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
        return web.json_response({"ok": False, "error": failure.error}, status=failure.status)

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "team_id": "T0", "team": "test", "user_id": "UBOT", "bot_id": "BBOT", "user": "hitl"}
        if method == "chat.postMessage":
            with self._lock:
                self._ts += 1
                ts = f"1700000000.{self._ts:06d}"
            return {"ok": True, "channel": params["channel"], "ts": ts, "message": {"ts": ts}}
        if method == "chat.update":
            return {"ok": True, "channel": params["channel"], "ts": params["ts"]}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": "1700000001.000001"}
        if method in ("views.open", "views.update", "views.publish"):
            return {"ok": True, "view": {"id": params.get("view_id") or "V0001"}}
        if method == "usergroups.users.list":
            group = params.get("usergroup", "")
            if group not in self.groups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.groups[group]}
        if method == "users.lookupByEmail":
            found = self.users.get(str(params.get("email", "")).casefold())
            if found is None:
                return {"ok": False, "error": "users_not_found"}
            return {"ok": True, "user": {"id": found, "profile": {"email": params["email"]}}}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.url.replace("http://", "ws://") + "/ws"}
        return {"ok": False, "error": "unknown_method"}

    async def _response_url(self, request: web.Request) -> web.Response:
        with self._lock:
            self.responses.append(await request.json())
        return web.Response(text="ok")

    async def _count(self, request: web.Request) -> web.Response:
        return web.json_response(len(self.of(request.match_info["method"])))

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self._sockets.append(socket)
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                with self._lock:
                    self.socket_acks.append(json.loads(message.data))
        self._sockets.remove(socket)
        return socket

    async def _close_sockets(self, _: web.Application) -> None:
        for socket in list(self._sockets):
            await socket.close()


def signed_headers(body: str, *, secret: str = SIGNING_SECRET, age: float = 0) -> dict[str, str]:
    """The headers Slack sends with `body`: its timestamp (`age` seconds ago) and its signature with `secret`."""
    timestamp = str(int(time.time() - age))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature or "",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def validate_blocks(blocks: list[dict[str, Any]], limit: int = 50) -> None:
    """Parse a sent payload back into slack_sdk models and validate it again (Slack refuses what fails);
    slack_sdk does not check rich text, so `validate_rich_text` does."""
    assert len(blocks) <= limit
    for block in Block.parse_all(blocks):
        assert block is not None
        block.to_dict()
    for block in blocks:
        if block.get("type") == "rich_text":
            validate_rich_text(block)


def validate_view(view: dict[str, Any]) -> None:
    View(**view).to_dict()
    validate_blocks(view.get("blocks") or [], limit=100)


# Slack's rich text block reference (docs.slack.dev/reference/block-kit/blocks/rich-text-block and
# its element pages): the fields each element may have, and which of them are required.
_STYLES = {"bold", "italic", "strike", "code", "highlight", "client_highlight", "underline", "unlink"}
_INLINE: dict[str, tuple[dict[str, type | tuple[type, ...]], set[str]]] = {
    "text": ({"text": str, "style": dict}, {"text"}),
    "user": ({"user_id": str, "style": dict}, {"user_id"}),
    "usergroup": ({"usergroup_id": str, "style": dict}, {"usergroup_id"}),
    "channel": ({"channel_id": str, "style": dict}, {"channel_id"}),
    "team": ({"team_id": str, "style": dict}, {"team_id"}),
    "emoji": ({"name": str, "unicode": str, "skin_tone": int, "style": dict}, {"name"}),
    "link": ({"url": str, "text": str, "unsafe": bool, "style": dict}, {"url"}),
    "broadcast": ({"range": str, "style": dict}, {"range"}),
    "color": ({"value": str, "style": dict}, {"value"}),
    "date": (
        {"timestamp": int, "format": str, "timezone": str, "url": str, "fallback": str, "style": dict},
        {"timestamp", "format"},
    ),
}
_CONTAINERS = {
    "rich_text_section": {"elements"},
    "rich_text_preformatted": {"elements", "border"},
    "rich_text_quote": {"elements", "border"},
    "rich_text_list": {"elements", "style", "indent", "offset", "border"},
}


def validate_rich_text(block: dict[str, Any]) -> None:
    """A `rich_text` block as Slack's reference describes it: containers of known inline elements,
    each with its required fields, of the right types, and no others."""
    assert set(block) <= {"type", "elements", "block_id"}, block
    assert len(block.get("block_id") or "") <= 255
    assert isinstance(block["elements"], list) and block["elements"], block
    for container in block["elements"]:
        kind = container.get("type")
        assert kind in _CONTAINERS and set(container) - {"type"} <= _CONTAINERS[kind], container
        if kind == "rich_text_list":
            assert container.get("style") in ("bullet", "ordered"), container
            assert all(item.get("type") == "rich_text_section" for item in container["elements"]), container
            for item in container["elements"]:
                _inline_elements(item["elements"])
        else:
            _inline_elements(container["elements"])


def _inline_elements(elements: list[dict[str, Any]]) -> None:
    assert isinstance(elements, list) and elements, elements
    for element in elements:
        fields, required = _INLINE[element["type"]]
        given = set(element) - {"type"}
        assert required <= given <= set(fields), element
        assert all(isinstance(element[name], fields[name]) for name in given), element
        assert set(element.get("style") or {}) <= _STYLES, element
        if element["type"] == "broadcast":
            assert element["range"] in ("here", "channel", "everyone"), element
        if element["type"] == "text":
            assert element["text"], "an empty text element shows nothing: we never send one"

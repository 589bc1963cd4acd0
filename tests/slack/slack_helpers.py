"""A fake Slack Web API (and Socket Mode WebSocket) on loopback, signed-request builders, small steps.

Like bolt's own `tests/mock_web_api_server/`: the real `AsyncWebClient` talks to it through
`SLACK_API_URL`; it records every call and can answer 429 with Retry-After once.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.signature import SignatureVerifier

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.config import load_settings
from hitl_chatops.bot.protocol import Response
from hitl_chatops.bot.server import BotThread, free_port
from hitl_chatops.bot.store import Store

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
SIGNING_SECRET = "slack-signing-secret-for-tests"
CHANNEL = "C0DEPLOYS"


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


@dataclass
class FakeSlack:
    """The fake Web API in its own thread (the bot may call it while a test thread blocks)."""

    calls: list[Call] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    url: str = ""
    _failures: dict[str, list[Failure]] = field(default_factory=dict)
    _held: dict[str, tuple[threading.Event, float]] = field(default_factory=dict)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _runner: web.AppRunner | None = None
    _ts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- control -----------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        port = free_port("127.0.0.1")
        self.url = f"http://127.0.0.1:{port}"
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._runner = web.AppRunner(self._app(), access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", port).start())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, name="fake-slack", daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        async def close_sockets() -> None:
            for socket in list(self._sockets):
                await socket.close()

        asyncio.run_coroutine_threadsafe(close_sockets(), self._loop).result(10)
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def fail_next(
        self, method: str, status: int = 429, times: int = 1, *, error: str = "fatal_error", html: bool = False
    ) -> None:
        """Answer the next `times` calls of `method` with HTTP `status` and Slack's `error` (`ok: false`,
        which Slack also sends with a 200), or with a proxy's HTML page; status 0 drops the connection."""
        self._failures.setdefault(method, []).extend([Failure(status, error, html)] * times)

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

        asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)

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
        if failures:
            failure = failures.pop(0)
            with self._lock:
                self.calls.append(Call(method, params, failure.status, peer))
            return self._failed(request, failure)
        with self._lock:
            self.calls.append(Call(method, params, 200, peer))
        return web.json_response(self._answer(method, params))

    @staticmethod
    def _failed(request: web.Request, failure: Failure) -> web.Response:
        if failure.status == 0 and request.transport is not None:  # the connection drops without an answer
            request.transport.close()
            return web.Response()
        if failure.html:
            page = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
            return web.Response(text=page, status=failure.status, content_type="text/html")
        if failure.status == 429:
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "0"})
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
        if method in ("views.open", "views.update"):
            return {"ok": True, "view": {"id": params.get("view_id") or "V0001"}}
        if method == "usergroups.users.list":
            group = params.get("usergroup", "")
            if group not in self.groups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.groups[group]}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.url.replace("http://", "ws://") + "/ws"}
        return {"ok": False, "error": "unknown_method"}

    async def _response_url(self, request: web.Request) -> web.Response:
        with self._lock:
            self.responses.append(await request.json())
        return web.Response(text="ok")

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


# -- signed requests -------------------------------------------------------------------------


def signed_headers(body: str, *, secret: str = SIGNING_SECRET, age: float = 0) -> dict[str, str]:
    timestamp = str(int(time.time() - age))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature or "",
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def post_signed(
    bot_url: str,
    body: str,
    *,
    secret: str = SIGNING_SECRET,
    age: float = 0,
    session: aiohttp.ClientSession | None = None,
) -> tuple[int, str]:
    headers = signed_headers(body, secret=secret, age=age)
    if session is not None:
        async with session.post(f"{bot_url}/slack/events", data=body.encode(), headers=headers) as reply:
            return reply.status, await reply.text()
    async with (
        aiohttp.ClientSession() as own,
        own.post(f"{bot_url}/slack/events", data=body.encode(), headers=headers) as reply,
    ):
        return reply.status, await reply.text()


def user(user_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": "T0"}


def block_actions_payload(
    user_id: str,
    action: dict[str, Any],
    *,
    channel: str = CHANNEL,
    ts: str = "1700000000.000001",
    ephemeral: bool = False,
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": user(user_id),
        "api_app_id": "A0",
        "token": "legacy-verification-token",
        "team": {"id": "T0", "domain": "test"},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": ephemeral},
        "trigger_id": "1111.2222.trigger",
        "channel": {"id": channel, "name": "deploys"},
        "response_url": "https://hooks.invalid/actions/T0/1/xyz",
        "actions": [{"action_ts": "1700000002.000001", "block_id": "b", "type": "button", **action}],
    }


def block_actions(user_id: str, action: dict[str, Any], **kwargs: Any) -> str:
    return urlencode({"payload": json.dumps(block_actions_payload(user_id, action, **kwargs))})


def find_element(blocks: list[dict[str, Any]], action_prefix: str) -> list[dict[str, Any]]:
    """Interactive elements of a message whose action_id starts with `action_prefix`."""
    return [
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id", "").startswith(action_prefix)
    ]


def click(user_id: str, element: dict[str, Any]) -> str:
    return block_actions(user_id, {"action_id": element["action_id"], "value": element["value"]})


def view_submission(user_id: str, request_id: str, state: dict[str, Any]) -> str:
    view = {"private_metadata": request_id, "state": {"values": {"hitl_value": {"value": state}}}}
    return _submission(user_id, view)


def _submission(user_id: str, view: dict[str, Any]) -> str:
    payload = {
        "type": "view_submission",
        "user": user(user_id),
        "api_app_id": "A0",
        "team": {"id": "T0", "domain": "test"},
        "trigger_id": "3333.4444.trigger",
        "view": {"type": "modal", "callback_id": "hitl_submit", **view, "id": "V0001"},
    }
    return urlencode({"payload": json.dumps(payload)})


def modal_state(view: dict[str, Any], typed: dict[str, str]) -> dict[str, Any]:
    """`view.state.values` as Slack sends them for a modal the bot opened.

    Each input holds `typed[block_id]` (the text typed, or the visible text of the option picked);
    inputs not in `typed` keep what the bot pre-filled.
    """
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element, given = block["element"], typed.get(block["block_id"])
        state: dict[str, Any] = {"type": element["type"]}
        if "options" in element:
            picked = [o for o in element["options"] if o["text"]["text"] == given]
            state["selected_option"] = picked[0] if given is not None else element.get("initial_option")
        else:
            state["value"] = given if given is not None else element.get("initial_value")
        values[block["block_id"]] = {element["action_id"]: state}
    return values


def modal_submission(user_id: str, view: dict[str, Any], typed: dict[str, str]) -> str:
    """Submit a modal the bot opened (as `views.open` received it) with `typed` entered (see `modal_state`)."""
    return _submission(user_id, {**view, "state": {"values": modal_state(view, typed)}})


def slash_command(user_id: str, text: str, response_url: str, command: str = "/hitl") -> str:
    return urlencode(
        {
            "command": command,
            "text": text,
            "user_id": user_id,
            "user_name": user_id.lower(),
            "team_id": "T0",
            "channel_id": CHANNEL,
            "response_url": response_url,
            "trigger_id": "5555.6666.trigger",
            "api_app_id": "A0",
        }
    )


# -- steps ---------------------------------------------------------------------------------


async def create_event(name: str, data_type: type, **kwargs: Any) -> str:
    kwargs.setdefault("channels", [f"slack:{CHANNEL}"])
    kwargs.setdefault("prompt", f"Answer {name}")
    event = await hitl.new_event.aio(name, data_type, **kwargs)
    return str(event.request_id)


def store() -> Store:
    return Store(load_settings().store)


async def wait_response(request_id: str, seconds: float = 10) -> Response:
    deadline = time.monotonic() + seconds
    while (response := await store().get_response(request_id)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no response for {request_id}")
        await asyncio.sleep(0.02)
    return response


def validate_blocks(blocks: list[dict[str, Any]]) -> None:
    """Parse a sent payload back into slack_sdk models and validate it again."""
    assert len(blocks) <= 50
    for block in Block.parse_all(blocks):
        assert block is not None
        block.to_dict()


def validate_view(view: dict[str, Any]) -> None:
    View(**view).to_dict()


async def api_answer(bot: BotThread, request_id: str, body: dict[str, Any]) -> int:
    """Answer through the bot's JSON API (another surface than Slack); returns the HTTP status."""
    headers = {"Authorization": f"Bearer {os.environ['HITL_CHATOPS_SECRET']}"}
    url = f"{bot.url}/api/v1/events/{request_id}/response"
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as reply:
        return reply.status

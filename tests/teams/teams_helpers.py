"""A fake Bot Connector service and helpers that talk to a real bot over real sockets.

The fake runs aiohttp on 127.0.0.1 in its own thread (like the bot), records every call the
bot's Agents SDK connector client makes, and answers like the Bot Connector does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.server import BotThread, free_port
from hitl_chatops.bot.store import Store
from tests.conftest import AUTH
from tests.helpers import make_request

TENANT = "72f988bf-0000-4000-8000-000000000001"
APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
BOT = {"id": "28:hitl-bot", "name": "hitl"}
ALICE = {"id": "29:alice", "aadObjectId": "aad-alice", "name": "Alice Example"}
BOB = {"id": "29:bob", "aadObjectId": "aad-bob", "name": "Bob Example"}
CHANNEL = "19:ops-general@thread.tacv2"


TOKEN_ISSUER = "https://api.botframework.com"
# Teams refuses a message past about 28 KB with 413 (and the Bot Connector passes that on).
MESSAGE_LIMIT_BYTES = 28 * 1024


@dataclass(frozen=True)
class SigningKey:
    """An RSA key like the Bot Framework's token signing keys, published by the fake's JWKS."""

    kid: str
    private: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))

    def jwk(self, endorsements: list[str]) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        return public | {"kid": self.kid, "use": "sig", "endorsements": endorsements}

    def token(self, app_id: str, service_url: str, **claims: Any) -> str:
        """A channel token as the Bot Connector sends it; `claims` override (None drops a claim)."""
        now = int(time.time())
        payload = {"iss": TOKEN_ISSUER, "aud": app_id, "serviceurl": service_url, "nbf": now - 5, "exp": now + 3600}
        payload = {k: v for k, v in (payload | claims).items() if v is not None}
        return jwt.encode(payload, self.private, algorithm="RS256", headers={"kid": self.kid})


SIGNING_KEY = SigningKey("hitl-test-key")  # endorsed for msteams
SKYPE_KEY = SigningKey("hitl-skype-key")  # published, but endorsed for another channel only


@dataclass
class FakeAuthority:
    """The fake Microsoft login (the `authority` fixture): counts token requests, can hang them."""

    url: str
    token_requests: int = 0
    answering: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: token requests hang


@dataclass
class Call:
    method: str
    conversation_id: str
    activity_id: str | None
    body: dict[str, Any]
    headers: dict[str, str]
    connection: int  # which TCP connection it came over (the client's port)
    created_id: str | None = None


@dataclass
class FakeConnector:
    """`POST /v3/conversations/{id}/activities[/{activityId}]` and `PUT .../{activityId}`, recorded;
    a message past Teams' size limit is refused with 413, as Teams does."""

    calls: list[Call] = field(default_factory=list)
    key_fetches: int = 0  # GETs of the published signing keys
    failures: dict[str, list[int]] = field(default_factory=dict)  # HTTP method -> statuses to answer next
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _runner: web.AppRunner | None = None
    url: str = ""

    def start(self) -> FakeConnector:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, name="fake-bot-connector", daemon=True).start()
        ready.wait(10)
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._send)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        app.router.add_get("/openid/configuration", self._openid_configuration)
        app.router.add_get("/openid/keys", self._openid_keys)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port("127.0.0.1")
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/"

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _record(self, request: web.Request) -> Call:
        call = Call(
            method=request.method,
            conversation_id=request.match_info["conversation"],
            activity_id=request.match_info.get("activity"),
            body=await request.json(),
            headers=dict(request.headers),
            connection=request.transport.get_extra_info("peername")[1] if request.transport else 0,
        )
        with self._lock:
            self.calls.append(call)
        return call

    def fail_next(self, method: str, status: int, times: int = 1) -> None:
        """Answer the next `times` calls with `method` with `status`, as the Bot Connector's errors."""
        with self._lock:
            self.failures.setdefault(method, []).extend([status] * times)

    def _failure(self, request: web.Request) -> web.Response | None:
        if (request.content_length or 0) > MESSAGE_LIMIT_BYTES:
            body = {"error": {"code": "MessageSizeTooBig", "message": "Message size is too big."}}
            return web.json_response(body, status=413)
        with self._lock:
            statuses = self.failures.get(request.method)
            status = statuses.pop(0) if statuses else None
        if status is None:
            return None
        return web.json_response({"error": {"code": "BotNotInConversationRoster", "message": "refused"}}, status=status)

    async def _send(self, request: web.Request) -> web.Response:
        if failure := self._failure(request):
            return failure
        call = await self._record(request)
        with self._lock:
            call.created_id = f"1:activity-{next(self._ids)}"
        return web.json_response({"id": call.created_id}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        if failure := self._failure(request):
            return failure
        call = await self._record(request)
        return web.json_response({"id": call.activity_id})

    async def _openid_configuration(self, _: web.Request) -> web.Response:
        return web.json_response({"issuer": TOKEN_ISSUER, "jwks_uri": f"{self.url}openid/keys"})

    async def _openid_keys(self, _: web.Request) -> web.Response:
        self.key_fetches += 1
        return web.json_response({"keys": [SIGNING_KEY.jwk(["msteams"]), SKYPE_KEY.jwk(["skype"])]})

    @property
    def openid_url(self) -> str:
        """Bot Framework's OpenID metadata, as login.botframework.com serves it, with our keys
        (the bot reads it from `HITL_CHATOPS_TEAMS_OPENID_URL`)."""
        return f"{self.url}openid/configuration"

    # -- reading what the bot did ---------------------------------------------------------

    def sent(self, conversation_id: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == "POST" and conversation_id in (None, c.conversation_id)]

    def updates(self, activity_id: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == "PUT" and activity_id in (None, c.activity_id)]

    def cards(self, calls: list[Call]) -> list[dict[str, Any]]:
        return [card_of(c.body) for c in calls if c.body.get("attachments")]

    async def wait_for(self, predicate: Callable[[], Any], seconds: float = 10) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if result := predicate():
                return result
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting; calls so far: {[(c.method, c.conversation_id) for c in self.calls]}")


def answer(request_id: str, value: Any = None) -> dict[str, Any]:
    """The data of a card's answer action (`Action.Execute`), with the typed `value` if any."""
    return {"hitl.event": request_id} | (typed(value=value) if value is not None else {})


def typed(**values: Any) -> dict[str, Any]:
    """Values entered in a card's inputs, as Teams merges them into the action's data (by input id)."""
    return {f"hitl.field.{name}": value for name, value in values.items()}


def submission(card: dict[str, Any], title: str, typed: dict[str, Any]) -> dict[str, Any]:
    """What Teams sends when `title` is pressed on `card` with `typed` (input label → value) entered:
    the action's data with every input's value merged in under the input's id, the inputs winning."""
    action = next(a for a in card["actions"] if a["type"] == "Action.Execute" and a["title"] == title)
    values = {
        block["id"]: typed.get(block.get("label") or block.get("title"), block.get("value", ""))
        for block in card["body"]
        if block["type"].startswith("Input.")
    }
    return {**action["data"], **values}


def card_of(activity: dict[str, Any]) -> dict[str, Any]:
    [attachment] = activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return dict(attachment["content"])


def texts(card: dict[str, Any]) -> str:
    """Every text a person sees on a card, for loose assertions."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("text", "title", "value", "label"):
                if isinstance(node.get(key), str):
                    found.append(node[key])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(card)
    return "\n".join(found)


def title(card: dict[str, Any]) -> str:
    """The card's heading as shown: a `TextBlock`'s text, or a `RichTextBlock`'s runs."""
    first = card["body"][0]
    return str(first["text"]) if first["type"] == "TextBlock" else "".join(r["text"] for r in first["inlines"])


def rows(card: dict[str, Any]) -> dict[str, str]:
    """The label/value rows (facts, context, a structured answer), read from their TextRuns."""
    found = {}
    for block in card["body"]:
        if block["type"] == "ColumnSet":
            label, value = (column["items"][0]["inlines"][0]["text"] for column in block["columns"])
            found[label] = value
    return found


@dataclass
class Teams:
    """Sends Teams-shaped activities to a bot's `/api/messages`, with `serviceUrl` at the fake."""

    bot: BotThread
    connector: FakeConnector
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def activity(self, kind: str, conversation_id: str = CHANNEL, user: dict[str, str] | None = None, **extra: Any):
        conversation_type = "personal" if conversation_id.startswith("a:") else "channel"
        return {
            "type": kind,
            "id": f"incoming-{next(self._ids)}",
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "timestamp": "2025-01-01T00:00:00.000Z",
            "from": user or ALICE,
            "recipient": BOT,
            "conversation": {"id": conversation_id, "conversationType": conversation_type, "tenantId": TENANT},
            "channelData": {"tenant": {"id": TENANT}},
            **extra,
        }

    async def post(self, activity: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.bot.url}/api/messages", json=activity, headers=headers or {}) as reply,
        ):
            body = await reply.json() if reply.content_type == "application/json" else await reply.text()
            return reply.status, body

    async def install(self, conversation_id: str = CHANNEL) -> None:
        status, _ = await self.post(self.activity("conversationUpdate", conversation_id, membersAdded=[BOT]))
        assert status in (200, 201)

    async def invoke(
        self,
        data: dict[str, Any],
        user: dict[str, str] | None = None,
        conversation_id: str = CHANNEL,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        value = {"action": {"type": "Action.Execute", "verb": "hitl.answer", "data": data}, "trigger": "manual"}
        activity = self.activity("invoke", conversation_id, user, name="adaptiveCard/action", value=value)
        return await self.post(activity, headers)

    async def say(self, text: str, conversation_id: str = CHANNEL, user: dict[str, str] | None = None):
        return await self.post(self.activity("message", conversation_id, user, text=text))


async def make_event(bot: BotThread, *, timeout_seconds: float = 600, **fields: Any) -> Request:
    """Write a request the way the plugin does and ask the bot to post it (the notify API)."""
    store = Store(bot.settings.store)
    defaults = {"event_name": "deploy_size", "prompt": "How many replicas?", "data_type": "int"}
    request = make_request(store, timeout=timeout_seconds, **(defaults | fields))
    await store.put_request(request)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.url}/api/v1/events/{request.request_id}/notify", headers=AUTH) as reply,
    ):
        assert reply.status == 202, await reply.text()
    return request


async def keys_ready(teams: Teams, app_id: str) -> None:
    """Wait until the bot has the fake's signing keys: a signed card action stops being a 503."""
    value = {"action": {"type": "Action.Execute", "verb": "hitl.probe", "data": {}}}
    probe = teams.activity("invoke", name="adaptiveCard/action", value=value)  # answered in the reply alone
    headers = {"Authorization": f"Bearer {SIGNING_KEY.token(app_id, teams.connector.url)}"}
    await teams.connector.wait_for(lambda: teams.connector.key_fetches)
    for _ in range(100):
        status, _ = await teams.post(probe, headers)
        if status != 503:
            assert status == 200
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the bot never got the signing keys")


async def install(teams: Teams, app_id: str) -> None:
    """Install the app in CHANNEL (signed, as Teams sends it); the bot sends nothing back."""
    await keys_ready(teams, app_id)
    headers = {"Authorization": f"Bearer {SIGNING_KEY.token(app_id, teams.connector.url)}"}
    status, _ = await teams.post(teams.activity("installationUpdate", action="add"), headers)
    assert status == 201

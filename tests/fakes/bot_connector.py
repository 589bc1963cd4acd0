"""Microsoft's Bot Connector, faked: the service a Teams bot sends and updates messages through.

It answers `POST /v3/conversations/{id}/activities[/{activityId}]` (send, reply) and
`PUT .../{activityId}` (update) as the Bot Connector does, refuses a message past Teams' size limit
with 413, and can fail the next calls of a method. It also serves Bot Framework's OpenID metadata
and signing keys, as login.botframework.com does, so the bot checks channel tokens
(`SIGNING_KEY.token(...)`) against keys it fetched. It records every call (`calls`, `sent`,
`updates`) with its headers and connection, and how often the keys were fetched (`key_fetches`).
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

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.fakes.loopback import Served

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
    """The Bot Connector in its own thread; `url` is the `serviceUrl` activities name."""

    calls: list[Call] = field(default_factory=list)
    key_fetches: int = 0  # GETs of the published signing keys
    failures: dict[str, list[int]] = field(default_factory=dict)  # HTTP method -> statuses to answer next
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _served: Served | None = None
    url: str = ""

    def start(self) -> FakeConnector:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._send)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        app.router.add_get("/openid/configuration", self._openid_configuration)
        app.router.add_get("/openid/keys", self._openid_keys)
        self._served = Served(app, name="fake-bot-connector")
        self.url = f"{self._served.url}/"
        return self

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()

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


def card_of(activity: dict[str, Any]) -> dict[str, Any]:
    """The Adaptive Card an activity carries (exactly one, as the bot sends it)."""
    [attachment] = activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return dict(attachment["content"])

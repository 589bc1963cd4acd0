"""A chat platform that exists only in the tests: a fake chat API over a real socket, and its adapter.

The adapter is what a new platform adds under `adapters/` (settings, a `Platform`, an inbound route),
written against the public seam only (`bot.adapter`, `bot.platform`, `HitlService`'s operations). Registering it
(`registry.register(REGISTRATION)`) is the one step; no core file knows it exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings

from hitl_chatops.bot.adapter import Adapter
from hitl_chatops.bot.config import SETTINGS_CONFIG
from hitl_chatops.bot.errors import MembershipUnknown, PlatformError, UserError
from hitl_chatops.bot.platform import channel_targets
from hitl_chatops.bot.protocol import MessageRef, Request, Responder
from hitl_chatops.bot.registry import Registration
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.states import Line, Mention, text_of
from hitl_chatops.bot.team import Verdict
from hitl_chatops.bot.view import EventView
from tests.fakes.loopback import Served

NAME = "fakechat"
REGISTRATION = Registration(NAME, "Fake Chat", "<room>", "tests.fakechat:adapter")
T = TypeVar("T")

# -- the adapter -----------------------------------------------------------------------------


class FakeChatSettings(BaseSettings):
    """Read from the platform's own variables, as Slack's and Teams' are."""

    model_config = SETTINGS_CONFIG

    fakechat_api_url: str | None = Field(None, validation_alias=AliasChoices("FAKECHAT_API_URL"))
    fakechat_room: str | None = Field(None, validation_alias=AliasChoices("FAKECHAT_DEFAULT_ROOM"))


def outcome_text(view: EventView) -> str:
    """A copy as this platform shows it: how the event ended, or a team decision's progress."""
    request, outcome = view.request, view.outcome
    if view.open:
        return f"{request.event_name}: {text_of(view.words.status)}"
    if outcome is None:
        return f"{request.event_name}: expired"
    if outcome.cancelled:
        return f"{request.event_name}: cancelled ({outcome.reason})"
    if outcome.defaulted:
        return f"{request.event_name}: default {outcome.value!r} applied"
    return f"{request.event_name}: {outcome.value!r} by {outcome.responder_label}"


def mentioned(line: Line) -> list[str]:
    """The people a line notifies: its `Mention` parts, which this platform takes as `<platform>:<id>`."""
    return [part.text for part in line if isinstance(part, Mention)]


class FakeChat:
    """The `Platform`: one HTTP call per message, errors turned into `PlatformError`s."""

    name = NAME

    def __init__(self, api_url: str, default_room: str | None) -> None:
        self.api_url = api_url
        self.default_room = default_room
        self.session: aiohttp.ClientSession | None = None

    def targets(self, request: Request) -> list[str]:
        return channel_targets(request, NAME, self.default_room)

    async def send(self, request: Request, target: str) -> MessageRef:
        sent = await self._call(
            "POST", "/messages", {"room": target, "text": f"{request.prompt} [{request.event_name}]"}
        )
        return MessageRef(platform=NAME, key=str(sent["id"]), data={"room": target})

    async def rerender(self, view: EventView, ref: MessageRef) -> None:
        await self._call("PUT", f"/messages/{ref.key}", {"text": outcome_text(view)})

    async def remind(self, request: Request, ref: MessageRef, line: Line) -> None:
        body = {"text": text_of(line), "mentions": mentioned(line)}
        await self._call("POST", f"/messages/{ref.key}/replies", body)

    async def group_members(self, group: str) -> set[str] | None:
        found = await self._call("GET", f"/groups/{group}")
        return set(found["members"]) if found else None

    async def user_for_email(self, email: str) -> str | None:
        """`FindsPeople`: the account with that address, through the platform's user directory."""
        try:
            found = await self._call("GET", f"/users/by-email/{email}")
        except PlatformError as error:
            raise MembershipUnknown(email, what=f"whose account {email} is") from error
        return str(found["id"]) if found else None

    async def _call(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        assert self.session is not None, "mounted platforms have a session while the bot runs"
        try:
            async with self.session.request(method, f"{self.api_url}{path}", json=body) as reply:
                if reply.status == 404 and method == "GET":
                    return {}
                if reply.status >= 400:
                    raise PlatformError(f"the fake chat API answered {reply.status}")
                found: dict[str, Any] = await reply.json()
                return found
        except aiohttp.ClientError as error:
            raise PlatformError(f"the fake chat API could not be reached ({type(error).__name__})") from error


def mount(app: web.Application, service: HitlService, settings: FakeChatSettings) -> FakeChat:
    """The inbound route turns a person's answer into `respond` and the core's verdict into a reply."""
    assert settings.fakechat_api_url is not None
    platform = FakeChat(settings.fakechat_api_url, settings.fakechat_room)

    async def session(_: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as platform.session:
            yield

    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        who = Responder(platform=NAME, user_id=str(body["user"]))
        return await reply(service.answer(str(body["request_id"]), body["value"], who, NAME))

    async def act(request: web.Request) -> web.Response:
        """A team decision's buttons: approve, reject (with a reason), propose, delegate (a user picked)."""
        body = await request.json()
        request_id, who, action = (
            str(body["request_id"]),
            Responder(platform=NAME, user_id=str(body["user"])),
            body["action"],
        )
        if action == "delegate":
            to = Responder(platform=NAME, user_id=str(body["to"]))
            return await reply(service.delegate(request_id, who, to, NAME, note=body.get("note")))
        if action == "propose":
            return await reply(service.propose(request_id, body["value"], who, NAME))
        decide = service.approve if action == "approve" else service.reject
        return await reply(decide(request_id, who, NAME, reason=body.get("reason"), round_=body.get("round")))

    async def reply(acting: Awaitable[Verdict]) -> web.Response:
        """The core's verdict as the platform tells the person: saved (and decided, or how far), or why not."""
        try:
            verdict = await acting
        except UserError as refused:
            return web.json_response({"saved": False, "error": str(refused)}, status=200)
        value = verdict.outcome.value if verdict.outcome else None
        return web.json_response(
            {"saved": True, "value": value, "decided": verdict.decided, "note": text_of(verdict.note)}
        )

    app.cleanup_ctx.append(session)
    app.router.add_post("/fakechat/answers", answer)
    app.router.add_post("/fakechat/actions", act)
    return platform


adapter = Adapter(settings=FakeChatSettings, enabled=lambda settings: bool(settings.fakechat_api_url), mount=mount)


# -- the fake chat API -----------------------------------------------------------------------


@dataclass
class FakeChatApi:
    """The platform's web API on 127.0.0.1: records messages and edits; can fail the next call."""

    url: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)  # thread replies: reminders, escalations, hand-overs
    groups: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # e-mail address -> user id
    failing: dict[str, int] = field(default_factory=dict)  # method -> status of its next call
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, method: str, status: int = 503) -> None:
        self.failing[method] = status

    def _refused(self, method: str) -> web.Response | None:
        status = self.failing.pop(method, None)
        return None if status is None else web.json_response({"error": "unavailable"}, status=status)

    async def _post(self, request: web.Request) -> web.Response:
        if refused := self._refused("POST"):
            return refused
        message = await request.json() | {"id": f"m{next(self._ids)}"}
        self.posts.append(message)
        return web.json_response(message)

    async def _put(self, request: web.Request) -> web.Response:
        if refused := self._refused("PUT"):
            return refused
        self.updates.append({"id": request.match_info["id"], **await request.json()})
        return web.json_response({"ok": True})

    async def _reply(self, request: web.Request) -> web.Response:
        if refused := self._refused("REPLY"):
            return refused
        self.replies.append({"id": request.match_info["id"], **await request.json()})
        return web.json_response({"ok": True})

    async def _user(self, request: web.Request) -> web.Response:
        if refused := self._refused("USER"):
            return refused
        user = self.users.get(request.match_info["email"])
        return web.json_response({"id": user}) if user else web.json_response({}, status=404)

    async def _group(self, request: web.Request) -> web.Response:
        members = self.groups.get(request.match_info["group"])
        return web.json_response({"members": members}) if members is not None else web.json_response({}, status=404)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/messages", self._post)
        app.router.add_put("/messages/{id}", self._put)
        app.router.add_get("/groups/{group}", self._group)
        app.router.add_post("/messages/{id}/replies", self._reply)
        app.router.add_get("/users/by-email/{email}", self._user)
        return app

    @classmethod
    @contextlib.contextmanager
    def serving(cls) -> Iterator[FakeChatApi]:
        """The API on its own loop and thread, like the bot: it answers even while a test blocks."""
        fake = cls()
        served = Served(fake.app(), name="fake-chat-api")
        fake.url = served.url
        try:
            yield fake
        finally:
            served.stop()

    async def wait_for(self, found: Callable[[], T], seconds: float = 10) -> T:
        """`found()` once it is truthy: the bot posts and updates after its HTTP replies."""
        deadline = time.monotonic() + seconds
        while not (result := found()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; posts={self.posts} updates={self.updates}")
            await asyncio.sleep(0.02)
        return result

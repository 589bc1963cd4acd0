"""What Teams sends the bot (activities, card actions) and how to read the cards it sent back.

The fakes the bot calls are `tests/fakes/bot_connector.py` (with Bot Framework's signing keys),
`tests/fakes/microsoft_login.py` and `tests/fakes/graph.py`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import SecretStr

from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.conftest import AUTH
from tests.fakes.bot_connector import SIGNING_KEY, FakeConnector
from tests.fakes.events import make_request

TENANT = "72f988bf-0000-4000-8000-000000000001"
APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
BOT = {"id": "28:hitl-bot", "name": "hitl"}
ALICE = {"id": "29:alice", "aadObjectId": "aad-alice", "name": "Alice Example"}
BOB = {"id": "29:bob", "aadObjectId": "aad-bob", "name": "Bob Example"}
CHANNEL = "19:ops-general@thread.tacv2"


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


def with_credentials(connector: FakeConnector, authority_url: str, graph_url: str) -> dict[str, Any]:
    """A bot's settings as in production: the app `APP_ID` of `TENANT` (password "app-password"), its
    tokens from the fake Microsoft login, the channel's keys from the fake connector, Graph at `graph_url`."""
    return {
        "teams_app_id": APP_ID,
        "teams_app_password": SecretStr("app-password"),
        "teams_tenant_id": TENANT,
        "teams_authority": authority_url,
        "teams_openid_url": connector.openid_url,
        "teams_graph_url": graph_url,
    }


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

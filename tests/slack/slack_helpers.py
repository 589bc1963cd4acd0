"""What Slack sends the bot (signed requests: clicks, submissions, commands) and small steps of a Slack test.

The fake Slack the bot calls is `tests/fakes/slack.py`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.config import load_settings
from hitl_chatops.bot.protocol import Response
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.fakes.slack import SIGNING_SECRET, signed_headers

CHANNEL = "C0DEPLOYS"


# -- signed requests -------------------------------------------------------------------------


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


def home_click(user_id: str, element: dict[str, Any]) -> str:
    """A click on `element` in the person's Home tab: the view is the container; no channel, message or
    response_url."""
    payload = block_actions_payload(user_id, {"action_id": element["action_id"], "value": element["value"]})
    for key in ("channel", "response_url"):
        del payload[key]
    payload["container"] = {"type": "view", "view_id": "VHOME0001"}
    payload["view"] = {"id": "VHOME0001", "type": "home", "blocks": [], "private_metadata": "", "callback_id": ""}
    return urlencode({"payload": json.dumps(payload)})


def app_home_opened(user_id: str, tab: str = "home") -> str:
    """The Events API's `app_home_opened`, as Slack posts it (JSON) when a person opens the app's `tab`."""
    event = {"type": "app_home_opened", "user": user_id, "channel": "D0HOME", "tab": tab, "event_ts": "1700000003.1"}
    envelope = {"token": "legacy-verification-token", "team_id": "T0", "api_app_id": "A0", "event": event}
    return json.dumps(envelope | {"type": "event_callback", "event_id": "Ev0HOME", "event_time": 1700000003})


async def post_event(bot_url: str, body: str) -> int:
    """POST an Events API body, signed, with the JSON content type Slack sends events with."""
    headers = signed_headers(body) | {"Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot_url}/slack/events", data=body.encode(), headers=headers) as reply,
    ):
        return reply.status


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

    Each input holds `typed[block_id]` (the text typed, the visible text of the option picked, or the
    user id picked in a `users_select`); inputs not in `typed` keep what the bot pre-filled.
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
        elif element["type"] == "users_select":
            state["selected_user"] = given  # the user id picked
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


async def api_answer(bot: BotThread, request_id: str, body: dict[str, Any]) -> int:
    """Answer through the bot's JSON API (another surface than Slack); returns the HTTP status."""
    headers = {"Authorization": f"Bearer {os.environ['HITL_CHATOPS_SECRET']}"}
    url = f"{bot.url}/api/v1/events/{request_id}/response"
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as reply:
        return reply.status


# -- reading what the bot sent -----------------------------------------------------------------


def rich_elements(node: Any) -> list[dict[str, Any]]:
    """Every inline element of every rich text block in a payload (blocks, a view, a whole call), in order."""
    return [
        element
        for block in rich_blocks(node)
        for container in block["elements"]
        for inner in (container["elements"] if container["type"] == "rich_text_list" else [container])
        for element in inner["elements"]
    ]


def rich_blocks(node: Any) -> list[dict[str, Any]]:
    """Every rich text block in a payload, in order."""
    if isinstance(node, list):
        return [block for item in node for block in rich_blocks(item)]
    if not isinstance(node, dict):
        return []
    if node.get("type") == "rich_text":
        return [node]
    return [block for value in node.values() for block in rich_blocks(value)]


def rich_text(node: Any) -> str:
    """What the rich text in a payload shows, as text: text as written, users and groups as `@id`,
    dates as `{date}`."""
    shown = {
        "user": "@{user_id}",
        "usergroup": "@{usergroup_id}",
        "date": "{{date}}",
        "emoji": ":{name}:",
        "link": "{text}",
    }
    return "".join(
        element["text"] if element["type"] == "text" else shown.get(element["type"], "").format(**element)
        for element in rich_elements(node)
    )


def bold_texts(node: Any) -> list[str]:
    """The rich text a payload shows in bold."""
    return [e["text"] for e in rich_elements(node) if e["type"] == "text" and (e.get("style") or {}).get("bold")]


def rich_lines(node: Any) -> list[str]:
    """The lines the rich text blocks in a payload show (a labelled row is "Label value")."""
    return [line for block in rich_blocks(node) for line in rich_text(block).split("\n")]


def marked(node: Any) -> str:
    """The rich text in a payload with its structure marked, for a test to read in one string: bold
    text as `*…*`, users as `<@U…>`, groups as `<!subteam^S…>`, dates as `{date}`, text as written."""
    shown = {"user": "<@{user_id}>", "usergroup": "<!subteam^{usergroup_id}>", "date": "{{date}}"}
    shown |= {"emoji": ":{name}:", "link": "{text}"}
    return "".join(
        (f"*{e['text']}*" if (e.get("style") or {}).get("bold") else e["text"])
        if e["type"] == "text"
        else shown.get(e["type"], "").format(**e)
        for e in rich_elements(node)
    )

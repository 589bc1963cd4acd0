"""Text from a task or a person never pings anyone or hides a link in Slack (issue 21, defect 4).

In agent workflows the title, prompt, details, context, choices and answers come from a model or
from user data. Every payload the bot sends is read back from the fake Web API and searched for
Slack's control sequences (`<!channel>`, `<@U…>`, `<url|label>`, …) wherever Slack parses them:
a message's `text` and every `mrkdwn` text object. `plain_text` objects are shown as written
(Slack's text-object reference: markup applies to `mrkdwn` only), so hostile text may stand there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from pydantic import BaseModel, Field

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.server import BotThread
from tests.conftest import AUTH
from tests.fakes.slack import FakeSlack
from tests.slack.slack_helpers import (
    CHANNEL,
    block_actions_payload,
    create_event,
    find_element,
    modal_submission,
    post_signed,
    slash_command,
    wait_response,
)

pytestmark = pytest.mark.asyncio
BotFactory = Callable[..., BotThread]

HOSTILE = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123>",
    "<!subteam^S1|@sre>",
    "&lt;!channel&gt;",
    "*bold*",
    "<https://evil.example|Approve here>",
]
TITLE = "<!channel> <https://evil.example|Approve here>"
EVERYTHING = " ".join(HOSTILE)
_SEQUENCE = re.compile(r"<([^<>]*)>")


def markup(payload: dict[str, Any]) -> Iterator[str]:
    """Every string in a Slack payload that Slack reads as mrkdwn: its `text` and `mrkdwn` text objects."""
    if isinstance(payload.get("text"), str):
        yield payload["text"]
    yield from _mrkdwn_objects(payload)


def _mrkdwn_objects(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            yield str(node["text"])
        for value in node.values():
            yield from _mrkdwn_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _mrkdwn_objects(item)


def sent(fake: FakeSlack) -> list[Any]:
    methods = ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "views.update")
    return [call for method in methods for call in fake.of(method)] + list(fake.responses)


def assert_no_mention_or_masked_link(fake: FakeSlack, bot_url: str, clickers: set[str]) -> int:
    """Only our own sequences: date tokens, the Slack users who clicked (ids Slack gave), our own links."""
    checked = 0
    for payload in sent(fake):
        for text in markup(payload):
            checked += 1
            for sequence in _SEQUENCE.findall(text):
                ours = sequence.startswith(("!date^", bot_url)) or sequence.lstrip("@") in clickers
                assert ours, f"{sequence!r} in {text!r}"
    return checked


def hostile_user(user_id: str, name: str) -> dict[str, str]:
    return {"id": user_id, "username": name, "name": name, "team_id": "T0"}


def click_as(user: dict[str, str], element: dict[str, Any]) -> str:
    payload = block_actions_payload(user["id"], {"action_id": element["action_id"], "value": element["value"]})
    return urlencode({"payload": json.dumps(payload | {"user": user})})


def select_as(user: dict[str, str], select: dict[str, Any], option: dict[str, Any]) -> str:
    action = {"action_id": select["action_id"], "type": "static_select", "selected_option": option}
    return urlencode({"payload": json.dumps(block_actions_payload(user["id"], action) | {"user": user})})


class Hostile(BaseModel):
    """An answer model whose labels and hints come from a model, too."""

    verdict: str = Field(title="<!here> verdict", description="<https://evil.example|read this> first")
    score: int = Field(default=1, title="<@U123>")


# -- "text": shown literally, never a mention or a masked link -------------------------------


async def test_hostile_text_in_every_field_pings_nobody_and_links_nowhere(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    context = {key: value for key, value in zip(HOSTILE, reversed(HOSTILE), strict=True)}
    chosen = await create_event(
        "<!here>", str, title=TITLE, prompt=EVERYTHING, details=EVERYTHING, context=context, choices=HOSTILE
    )
    typed = await create_event("typed", Hostile, title=TITLE, prompt=EVERYTHING, context=context)
    cancelled = await create_event("cancelled", bool, title=TITLE, prompt=EVERYTHING)
    gated = await create_event("gated", bool, prompt=EVERYTHING, responders=["U0BOSS", "<!channel>"])
    posts = await fake_slack.wait_for("chat.postMessage", 4)
    first = next(p for p in posts if chosen in json.dumps(p))
    for block, text in zip(first["blocks"], [TITLE, EVERYTHING, EVERYTHING], strict=False):
        assert (block["text"]["type"], block["text"]["text"]) == ("plain_text", text), "shown literally"

    alice = hostile_user("U0ALICE", "<!everyone> alice")
    [select] = find_element(first["blocks"], "hitl_select")
    option = next(o for o in select["options"] if o["text"]["text"] == "<!channel>")
    await post_signed(bot.url, select_as(alice, select, option))
    assert (await wait_response(chosen)).value == "<!channel>"
    await post_signed(bot.url, select_as(hostile_user("U0BOB", "<@U123>"), select, option))
    await fake_slack.wait_for("chat.postEphemeral")  # "Already answered: <!channel> by …"

    second = next(p for p in posts if typed in json.dumps(p))
    await post_signed(bot.url, click_as(alice, find_element(second["blocks"], "hitl_modal")[0]))
    [opened] = await fake_slack.wait_for("views.open")
    typed_values = {"verdict": "<!subteam^S1|@sre> <https://evil.example|ok>", "score": "2"}
    assert (await post_signed(bot.url, modal_submission("U0ALICE", opened["view"], typed_values)))[1] == ""
    await wait_response(typed)

    async with aiohttp.ClientSession() as session:
        url = f"{bot.url}/api/v1/events/{cancelled}/cancel"
        async with session.post(url, json={"reason": EVERYTHING, "responder": "<!here>"}, headers=AUTH) as reply:
            assert reply.status == 200
    gate = next(p for p in posts if gated in json.dumps(p))
    await post_signed(bot.url, click_as(alice, find_element(gate["blocks"], "hitl_answer")[0]))  # not theirs
    await post_signed(bot.url, slash_command("U0ALICE", "", f"{fake_slack.url}/response/1"))
    await fake_slack.wait_for_responses()
    updates = await fake_slack.wait_for("chat.update", 3)
    await fake_slack.wait_for("chat.postEphemeral", 2)

    assert assert_no_mention_or_masked_link(fake_slack, bot.url, {"U0ALICE", "U0BOB", "U0BOSS"}) > 50
    update_texts = " ".join(u["text"] for u in updates)
    assert "answered &lt;!channel&gt; by &lt;!everyone&gt; alice" in update_texts
    assert "cancelled by &lt;!here&gt;" in update_texts and "&amp;lt;!channel&amp;gt;" in update_texts


async def test_answer_values_are_verbatim_fields(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    """`verbatim`: a bare URL or #channel in an answer stays text, like context values."""
    bot = slack_bot()
    request_id = await create_event("note", str)
    [posted] = await fake_slack.wait_for("chat.postMessage")
    await post_signed(
        bot.url, click_as(hostile_user("U0ALICE", "alice"), find_element(posted["blocks"], "hitl_modal")[0])
    )
    [opened] = await fake_slack.wait_for("views.open")
    answer = {"hitl_value": "see https://evil.example and #general"}
    assert (await post_signed(bot.url, modal_submission("U0ALICE", opened["view"], answer)))[1] == ""
    await wait_response(request_id)
    [update] = await fake_slack.wait_for("chat.update")
    fields = [f for b in update["blocks"] if b["type"] == "section" for f in b.get("fields") or []]
    answer_field = next(f for f in fields if "evil.example" in f["text"])
    assert answer_field["verbatim"] is True and all(f["verbatim"] is True for f in fields)


# -- "markdown": the author's emphasis and http(s) links, still nobody pinged ---------------


async def test_markdown_prompt_renders_emphasis_and_http_links_only(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    slack_bot()
    prompt = (
        "**Deploy** _now_? See [the runbook](https://runbook.example/deploy?a=1&b=2), not "
        "[this](javascript:alert(1)) or [that](data:text/html,x). `kubectl <apply>` <!channel> <@U123>"
    )
    await hitl.new_event.aio(
        "deploy", bool, prompt=prompt, title="**Deploy** to _prod_", details="- one\n- two",
        channels=[f"slack:{CHANNEL}"], prompt_type="markdown",
    )  # fmt: skip
    [posted] = await fake_slack.wait_for("chat.postMessage")
    header, said, details = posted["blocks"][:3]
    assert header["text"]["text"] == "Deploy to prod"
    text = said["text"]["text"]
    assert said["text"]["type"] == "mrkdwn" and said["text"]["verbatim"] is True
    assert text.startswith("*Deploy* _now_? See <https://runbook.example/deploy?a=1&amp;b=2|the runbook>, not ")
    assert "[this](javascript:alert(1)) or [that](data:text/html,x)" in text, "not links: shown as written"
    assert "`kubectl &lt;apply&gt;`" in text and "&lt;!channel&gt; &lt;@U123&gt;" in text
    assert details["text"]["text"] == "• one\n• two"
    assert posted["text"] == "Input needed: Deploy to prod: Deploy now? See the runbook, not " + (
        "[this](javascript:alert(1)) or [that](data:text/html,x). kubectl &lt;apply&gt; &lt;!channel&gt; &lt;@U123&gt;"
    )
    sequences = _SEQUENCE.findall(text)
    assert sequences == ["https://runbook.example/deploy?a=1&amp;b=2|the runbook"]

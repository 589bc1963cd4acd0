"""Text from a task or a person never pings anyone or hides a link in Slack (issue 21, defect 4).

In agent workflows the title, prompt, details, context, choices and answers come from a model or
from user data. Every payload the bot sends is read back from the fake Web API and searched for
Slack's control sequences (`<!channel>`, `<@U…>`, `<url|label>`, …) wherever Slack parses them:
a message's `text` and every `mrkdwn` text object. `plain_text` objects are shown as written
(Slack's text-object reference: markup applies to `mrkdwn` only), so hostile text may stand there.
"""

from __future__ import annotations

import asyncio
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
    app_home_opened,
    block_actions_payload,
    bold_texts,
    create_event,
    find_element,
    modal_submission,
    post_event,
    post_signed,
    rich_elements,
    rich_lines,
    rich_text,
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
    methods = ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "views.update", "views.publish")
    return [call for method in methods for call in fake.of(method)] + list(fake.responses)


def assert_no_mention_or_masked_link(fake: FakeSlack, bot_url: str, clickers: set[str]) -> int:
    """Only our own sequences: date tokens, the Slack users who clicked (ids Slack gave), our own links;
    in rich text, only those users as user elements, our own links, and no broadcast."""
    checked = 0
    for payload in sent(fake):
        for text in markup(payload):
            checked += 1
            for sequence in _SEQUENCE.findall(text):
                ours = sequence.startswith(("!date^", bot_url)) or sequence.lstrip("@") in clickers
                assert ours, f"{sequence!r} in {text!r}"
        for element in rich_elements(payload):
            checked += 1
            kind = element["type"]
            assert kind in ("text", "date", "emoji", "user", "link"), element
            assert kind != "user" or element["user_id"] in clickers, element
            assert kind != "link" or element["url"].startswith(bot_url), element
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


# -- shown as written: no mrkdwn formatting either (rich text) -------------------------------

MARKS = "*b* _i_ ~s~ `c` <@U0X> <!here> <https://x|y> :smile:"


def assert_literal(payload: dict[str, Any]) -> None:
    """`MARKS` arrives whole in a rich text `text` element (never parsed: no bold, italic, strike, code,
    mention, link or emoji), and inside no `mrkdwn` object, where Slack would format it."""
    assert any(MARKS in e["text"] for e in rich_elements(payload) if e["type"] == "text"), payload
    mrkdwn = list(_mrkdwn_objects(payload))
    assert not [text for text in mrkdwn for mark in ("*b*", "_i_", "~s~", "`c`", ":smile:") if mark in text]


async def test_a_context_value_an_answer_and_a_refusal_are_shown_as_written(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("literal", str, context={"file": MARKS})
    [posted] = await fake_slack.wait_for("chat.postMessage")
    assert_literal(posted)
    assert bold_texts(posted["blocks"]) == ["file"], "our label in bold, the value as written"

    alice, bob = hostile_user("U0ALICE", "alice"), hostile_user("U0BOB", "bob")
    respond = find_element(posted["blocks"], "hitl_modal")[0]
    await post_signed(bot.url, click_as(alice, respond))
    [opened] = await fake_slack.wait_for("views.open")
    assert_literal(opened["view"])
    assert (await post_signed(bot.url, modal_submission("U0ALICE", opened["view"], {"hitl_value": MARKS})))[1] == ""
    assert (await wait_response(request_id)).value == MARKS
    [update] = await fake_slack.wait_for("chat.update")
    assert_literal(update)
    assert f"Answer {MARKS}" in rich_lines(update["blocks"]) and "Answer" in bold_texts(update["blocks"])

    await post_signed(bot.url, click_as(bob, respond))  # too late: told what was answered
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert_literal(note)
    assert rich_text(note["blocks"]).startswith(f"Already answered: {MARKS} by @U0ALICE at {{date}}")

    await create_event("waiting", bool, context={"file": MARKS}, responders=["U0ALICE"])
    await fake_slack.wait_for("chat.postMessage", 2)
    assert await post_event(bot.url, app_home_opened("U0ALICE")) == 200
    [home] = await fake_slack.wait_for("views.publish")
    assert_literal(home["view"])
    assert "file:" in bold_texts(home["view"])
    assert assert_no_mention_or_masked_link(fake_slack, bot.url, {"U0ALICE"}) > 10


async def test_a_reason_and_a_hand_over_note_are_shown_as_written(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    bot = slack_bot()
    await create_event("team", bool, approvals=2, responders=["U0ANN", "U0BOB", "U0CAT"])
    [posted] = await fake_slack.wait_for("chat.postMessage")
    delegate = next(e for e in find_element(posted["blocks"], "hitl_delegate"))
    await post_signed(bot.url, click_as(hostile_user("U0ANN", "ann"), delegate))
    [handing] = await fake_slack.wait_for("views.open")
    typed = {"hitl_delegate_to": "U0CAT", "hitl_note": MARKS}
    assert (await post_signed(bot.url, modal_submission("U0ANN", handing["view"], typed)))[0] == 200
    reply = next(p for p in await fake_slack.wait_for("chat.postMessage", 2) if p.get("thread_ts"))
    assert_literal(reply)
    assert rich_text(reply["blocks"]) == f"u0ann handed this to @U0CAT. Their note: {MARKS}"

    reject = next(e for e in find_element(posted["blocks"], "hitl_reject"))
    await post_signed(bot.url, click_as(hostile_user("U0BOB", "bob"), reject))
    dialog = (await fake_slack.wait_for("views.open", 2))[1]
    assert (await post_signed(bot.url, modal_submission("U0BOB", dialog["view"], {"hitl_reason": MARKS})))[0] == 200
    deadline = asyncio.get_running_loop().time() + 10
    while not (vetoed := [u for u in fake_slack.of("chat.update") if f"Reason {MARKS}" in rich_lines(u["blocks"])]):
        assert asyncio.get_running_loop().time() < deadline, "no copy shows the reason"
        await asyncio.sleep(0.02)
    assert_literal(vetoed[-1])
    assert {"Rejected by", "Reason"} <= set(bold_texts(vetoed[-1]["blocks"]))
    assert assert_no_mention_or_masked_link(fake_slack, bot.url, {"U0ANN", "U0BOB", "U0CAT"}) > 10


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

"""Slack's limits, met by design (issue 21, defect 2): every event is answerable somewhere.

A modal holds 100 blocks, a select 100 options, a section 3,000 characters, a message 50 blocks,
a text input 3,000 characters, a block id 255. Past each, the bot does something the person can
see (the web form link, a typed choice, a pointer to the form, a count of what is not shown),
never a payload Slack refuses. The fake Web API re-validates every payload sent (conftest).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, create_model

from hitl_chatops.bot.server import BotThread
from tests.fakes.slack import FakeSlack
from tests.slack.slack_helpers import (
    CHANNEL,
    api_answer,
    bold_texts,
    click,
    create_event,
    find_element,
    modal_submission,
    post_signed,
    rich_elements,
    rich_text,
    store,
    wait_response,
)

pytestmark = pytest.mark.asyncio
BotFactory = Callable[..., BotThread]


def wide_model(fields: int, name: str = "f") -> type[BaseModel]:
    """A model of `fields` optional text fields (`f000`, `f001`, …)."""
    definitions: dict[str, Any] = {f"{name}{n:03d}": (str | None, None) for n in range(fields)}
    return create_model(f"Wide{fields}", **definitions)


async def open_respond(bot: BotThread, fake_slack: FakeSlack, user: str = "U0ALICE") -> dict[str, Any]:
    [posted] = await fake_slack.wait_for("chat.postMessage")
    await post_signed(bot.url, click(user, find_element(posted["blocks"], "hitl_modal")[0]))
    return posted


# -- 100 blocks in a modal -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "said"),
    [
        (wide_model(120), "This event asks for 120 values, more than a Slack dialog can hold."),
        (wide_model(2, name="x" * 300), "A field name of this event is longer than Slack allows (255 characters)."),
    ],
    ids=["120-fields", "300-character-name"],
)
async def test_an_event_a_modal_cannot_hold_sends_the_person_to_the_web_form(
    slack_bot: BotFactory, fake_slack: FakeSlack, model: type[BaseModel], said: str
) -> None:
    bot = slack_bot()
    request_id = await create_event("wide", model)
    await open_respond(bot, fake_slack)

    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert (note["user"], note["channel"]) == ("U0ALICE", CHANNEL)
    assert note["text"].startswith(said + " Answer it in the web form instead: <http://127.0.0.1:")
    assert f"/form/{request_id}?as=slack%3AU0ALICE&amp;name=u0alice&amp;sig=" in note["text"]
    assert "|open the form> (until " in note["text"] and "This link is yours alone" in note["text"]
    [link] = [e for e in rich_elements(note["blocks"]) if e["type"] == "link"]
    assert f"/form/{request_id}?as=slack%3AU0ALICE&name=u0alice&sig=" in link["url"] and link["text"] == "open the form"
    assert rich_text(note["blocks"]).endswith(
        "Answer it in the web form instead: open the form (until {date}). This link is yours alone: it answers "
        "as you, so do not share it."
    )
    assert fake_slack.of("views.open", ok_only=False) == []


async def test_ninety_fields_still_open_a_modal(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    bot = slack_bot()
    await create_event("wide", wide_model(90), context={f"k{n}": n for n in range(30)})
    await open_respond(bot, fake_slack)
    [shown] = await fake_slack.wait_for("views.open")
    assert len(shown["view"]["blocks"]) <= 100 and fake_slack.of("chat.postEphemeral") == []


# -- 100 options in a select -----------------------------------------------------------------


async def test_more_choices_than_a_select_holds_are_typed_with_a_hint(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    choices = [f"region-{n:03d}" for n in range(150)]
    request_id = await create_event("region", str, choices=choices)
    await open_respond(bot, fake_slack)
    [shown] = await fake_slack.wait_for("views.open")
    [field] = [b for b in shown["view"]["blocks"] if b["type"] == "input"]
    assert field["element"]["type"] == "plain_text_input"
    assert field["hint"]["text"] == "Type one of the 150 choices as it is written."

    _, body = await post_signed(bot.url, modal_submission("U0ALICE", shown["view"], {"hitl_value": "mars"}))
    assert json.loads(body)["errors"]["hitl_value"].startswith("Choose one of: region-000, region-001")
    assert (await post_signed(bot.url, modal_submission("U0ALICE", shown["view"], {"hitl_value": "REGION-120"})))[
        1
    ] == ""
    assert (await wait_response(request_id)).value == "region-120"


# -- 3,000 characters in a section -----------------------------------------------------------


@pytest.mark.parametrize("prompt_type", ["text", "markdown"])
async def test_a_long_prompt_is_cut_with_a_pointer_to_the_form(
    slack_bot: BotFactory, fake_slack: FakeSlack, prompt_type: str
) -> None:
    """Escaping can make text four times longer (`<` → `&lt;`): the cut happens after it."""
    slack_bot()
    request_id = await create_event("long", bool, prompt="<" * 5000, details="d" * 3000, prompt_type=prompt_type)
    [posted] = await fake_slack.wait_for("chat.postMessage")
    said, pointer = posted["blocks"][1:3]
    assert len(said["text"]["text"]) <= 3000 and said["text"]["text"].endswith("…")
    line = pointer["elements"][0]["text"]
    assert line.startswith("Slack shows the first 3,000 characters; <http://127.0.0.1:")
    assert f"/form/{request_id}?sig=" in line and line.endswith("|the web form> shows all of it.")
    assert posted["blocks"][3]["text"]["text"] == "d" * 3000, "exactly 3,000: no pointer"
    assert posted["blocks"][4]["type"] == "context" and "Slack shows" not in json.dumps(posted["blocks"][4])
    assert len(posted["text"]) <= 3000


# -- 50 blocks in a message ------------------------------------------------------------------


async def test_an_answer_of_six_hundred_fields_updates_the_message_within_fifty_blocks(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("wide", wide_model(600), context={f"k{n}": n for n in range(40)})
    await fake_slack.wait_for("chat.postMessage")
    answer = {f"f{n:03d}": "v" * 1500 for n in range(100)}  # one row a block: 50 blocks are not enough
    assert await api_answer(bot, request_id, {"value": answer, "responder": "ci"}) == 201
    [update] = await fake_slack.wait_for("chat.update")
    blocks = update["blocks"]
    assert len(blocks) == 50
    shown = sum(bool(re.fullmatch(r"F\d{3}", label)) for label in bold_texts(blocks[:-1]))
    assert 0 < shown < 600 and rich_text(blocks[-1]) == f"…and {603 - shown} more, not shown here."
    assert (await store().get_response(request_id)) is not None

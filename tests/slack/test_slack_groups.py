"""Slack user groups as responders when Slack is slow or answers oddly (issue 21, defects 5 and 6).

Only Slack saying the group does not exist means "nobody gets in through it"; anything else it
or a proxy answers is "could not check, try again". A lookup that takes longer than Slack's 3 s
never holds a modal submission's ack: the modal turns into "Saving…" and shows the outcome.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from hitl_chatops.bot.server import BotThread
from tests.fakes.slack import FakeSlack
from tests.slack.slack_helpers import (
    bold_texts,
    click,
    create_event,
    find_element,
    post_signed,
    rich_text,
    store,
    view_submission,
    wait_response,
)

pytestmark = pytest.mark.asyncio
BotFactory = Callable[..., BotThread]
RETRY = "Could not check who is in S0ONCALL just now. Please try again in a moment."


async def approve_as_carol(bot: BotThread, fake_slack: FakeSlack) -> str:
    """Click Approve on the event as U0CAROL, a member of S0ONCALL; the ephemeral note she gets."""
    approve = find_element((await fake_slack.wait_for("chat.postMessage"))[0]["blocks"], "hitl_answer")[0]
    await post_signed(bot.url, click("U0CAROL", approve))
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    return str(note["text"])


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (200, {"error": "fatal_error"}),
        (200, {"error": "service_unavailable"}),
        (200, {"error": "request_timeout"}),
        (200, {"error": "missing_scope"}),
        (200, {"html": True}),
        (502, {"html": True}),
    ],
    ids=["fatal_error", "service_unavailable", "request_timeout", "missing_scope", "html-200", "html-502"],
)
async def test_a_group_slack_cannot_read_now_asks_a_member_to_try_again(
    slack_bot: BotFactory, fake_slack: FakeSlack, status: int, failure: dict[str, Any]
) -> None:
    fake_slack.groups["S0ONCALL"] = ["U0CAROL"]
    bot = slack_bot()
    request_id = await create_event("failover", bool, responders=["S0ONCALL"])
    fake_slack.fail_next("usergroups.users.list", status, times=10, **failure)

    assert await approve_as_carol(bot, fake_slack) == RETRY
    assert await store().get_response(request_id) is None


@pytest.mark.parametrize("error", ["no_such_subteam", "subteam_not_found"])
async def test_a_group_slack_says_does_not_exist_refuses(
    slack_bot: BotFactory, fake_slack: FakeSlack, error: str
) -> None:
    bot = slack_bot()
    request_id = await create_event("failover", bool, responders=["S0ONCALL"])
    fake_slack.fail_next("usergroups.users.list", 200, error=error)

    assert await approve_as_carol(bot, fake_slack) == "Only S0ONCALL may answer this event."
    assert await store().get_response(request_id) is None


# -- a slow lookup and a modal's 3 s ---------------------------------------------------------


async def submit_in_time(bot: BotThread, body: str) -> dict[str, Any]:
    """Submit as Slack does: Slack gives up on an ack after 3 s, so this client does too."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        status, text = await post_signed(bot.url, body, session=session)
    assert status == 200
    return dict(json.loads(text))


def saying(view: dict[str, Any]) -> str:
    return rich_text(view["blocks"][0])


async def test_a_twenty_second_group_lookup_still_acks_the_modal_and_shows_the_answer_saved(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.groups["S0ONCALL"] = ["U0CAROL"]
    bot = slack_bot()
    request_id = await create_event("replicas", int, responders=["S0ONCALL"])
    await fake_slack.wait_for("chat.postMessage")
    lookup = fake_slack.hold("usergroups.users.list", seconds=20)

    state = {"type": "number_input", "value": "42"}
    ack = await submit_in_time(bot, view_submission("U0CAROL", request_id, state))
    assert ack["response_action"] == "update" and saying(ack["view"]).startswith("Saving your answer…")
    assert "submit" not in ack["view"], "nothing to submit twice"

    lookup.set()  # Slack answers at last
    [update] = await fake_slack.wait_for("views.update")
    assert update["view_id"] == "V0001"
    assert saying(update["view"]).startswith("Saved: 42 by @U0CAROL at {date}")
    assert bold_texts(update["view"]) == ["42"]
    assert (await wait_response(request_id)).value == 42


async def test_a_slow_lookup_that_then_fails_says_try_again_in_the_modal(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("replicas", int, responders=["S0ONCALL"])
    await fake_slack.wait_for("chat.postMessage")
    lookup = fake_slack.hold("usergroups.users.list", seconds=20)
    fake_slack.fail_next("usergroups.users.list", 200, times=3, error="fatal_error")

    ack = await submit_in_time(bot, view_submission("U0CAROL", request_id, {"type": "number_input", "value": "7"}))
    assert ack["response_action"] == "update"
    lookup.set()
    [update] = await fake_slack.wait_for("views.update")
    assert saying(update["view"]) == f"Not saved: {RETRY}"
    assert await store().get_response(request_id) is None


async def test_a_quick_verdict_still_comes_inline(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    """Nothing changes when the group is read in time: the refusal is on the input, typing kept."""
    bot = slack_bot()
    request_id = await create_event("replicas", int, responders=["S0ONCALL"])
    await fake_slack.wait_for("chat.postMessage")
    ack = await submit_in_time(bot, view_submission("U0EVE", request_id, {"type": "number_input", "value": "7"}))
    assert ack == {"response_action": "errors", "errors": {"hitl_value": "Only S0ONCALL may answer this event."}}
    assert fake_slack.of("views.update") == []


async def test_a_slow_group_lookup_does_not_keep_the_respond_modal_from_opening(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    """A click's trigger_id lasts 3 s: the modal opens while the lookup still runs, and a refusal
    that comes later is told to the person (the submission is checked again anyway)."""
    fake_slack.groups["S0ONCALL"] = ["U0CAROL"]
    bot = slack_bot()
    await create_event("replicas", int, responders=["S0ONCALL"])
    [posted] = await fake_slack.wait_for("chat.postMessage")
    lookup = fake_slack.hold("usergroups.users.list", seconds=20)

    await post_signed(bot.url, click("U0EVE", find_element(posted["blocks"], "hitl_modal")[0]))
    [shown] = await fake_slack.wait_for("views.open")  # the lookup is still held here
    assert shown["trigger_id"] == "1111.2222.trigger" and fake_slack.of("usergroups.users.list") == []

    lookup.set()
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert (note["user"], note["text"]) == ("U0EVE", "Only S0ONCALL may answer this event.")

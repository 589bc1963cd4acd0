"""End to end: real Flyte local runs ask in (fake) Slack and resume with the answer given there."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import flyte
import pytest

from hitl_chatops.bot.server import BotThread
from tests import workflows as shared
from tests.fakes.flyte import Run
from tests.fakes.slack import FakeSlack
from tests.slack import slack_workflows as workflows
from tests.slack.slack_helpers import (
    CHANNEL,
    block_actions,
    click,
    find_element,
    post_signed,
    rich_lines,
    view_submission,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


async def test_bool_event_approved_in_slack_resumes_the_run_with_true(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    run = Run(workflows.deploy_gate)
    [posted] = await fake_slack.wait_for("chat.postMessage", seconds=30)
    assert posted["channel"] == CHANNEL and len(find_element(posted["blocks"], "hitl_answer")) == 2

    status, _ = await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_answer")[0]))
    assert status == 200
    assert await run.finish() is True
    [update] = await fake_slack.wait_for("chat.update")
    assert "Answered by @U0ALICE" in rich_lines(update["blocks"])


async def test_int_event_modal_refuses_then_resumes(slack_bot: Callable[..., BotThread], fake_slack: FakeSlack) -> None:
    bot = slack_bot()
    run = Run(shared.pick_replicas, workflows.CHANNELS[0])
    [posted] = await fake_slack.wait_for("chat.postMessage", seconds=30)
    await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_modal")[0]))
    [opened] = await fake_slack.wait_for("views.open")
    request_id = opened["view"]["private_metadata"]

    _, body = await post_signed(bot.url, view_submission("U0ALICE", request_id, {"value": "11"}))
    assert json.loads(body)["errors"] == {"hitl_value": "Enter a whole number from 1 to 10."}
    await asyncio.sleep(5 * workflows.POLL)
    assert run.running, "a refused value leaves the run waiting"

    assert (await post_signed(bot.url, view_submission("U0ALICE", request_id, {"value": "3"})))[1] == ""
    assert await run.finish() == 3


async def test_str_choices_select_resumes_with_the_choice(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    run = Run(workflows.pick_region)
    [posted] = await fake_slack.wait_for("chat.postMessage", seconds=30)
    [select] = find_element(posted["blocks"], "hitl_select")
    option = next(o for o in select["options"] if o["text"]["text"] == "us-east")
    await post_signed(bot.url, block_actions("U0BOB", {"action_id": "hitl_select", "selected_option": option}))
    assert await run.finish() == "us-east"

"""Cancel and the deadline default reach every chat copy, with Slack as the visible surface.

How a cancelled or defaulted message reads is the Slack renderer's business; these tests hold the
core to its part: the outcome is written once and every copy is re-rendered through `answered`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.reconciler import Reconciler
from hitl_chatops.bot.server import BotThread
from tests.fakes.slack import FakeSlack
from tests.slack.slack_helpers import CHANNEL, click, create_event, find_element, post_signed, store

BotFactory = Callable[..., BotThread]


async def test_a_plugin_cancel_rewrites_the_message_and_later_clicks_write_nothing(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0)
    event = await hitl.new_event.aio("gate", bool, prompt="Deploy?", channels=[f"slack:{CHANNEL}"])
    (posted,) = await fake_slack.wait_for("chat.postMessage")
    await event.cancel.aio("the release was rolled back")
    (update,) = await fake_slack.wait_for("chat.update")
    assert all(block["type"] != "actions" for block in update["blocks"]), "no live controls after a cancel"
    outcome = await store().get_response(event.request_id)
    assert outcome is not None and (outcome.status, outcome.via) == ("cancelled", "flyte")
    assert outcome.reason == "the release was rolled back"
    await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_answer")[0]))
    await fake_slack.wait_for("chat.postEphemeral")
    assert await store().get_response(event.request_id) == outcome


async def test_the_reconciler_applies_the_default_and_rewrites_the_message(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0)
    request_id = await create_event("fallback", int, timeout_seconds=1, on_timeout=3)
    await fake_slack.wait_for("chat.postMessage")
    await asyncio.sleep(1.1)
    report = await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert report.expired == 1
    await asyncio.to_thread(bot.call, bot.service.background.drain())
    (update,) = await fake_slack.wait_for("chat.update")
    assert all(block["type"] != "actions" for block in update["blocks"])
    outcome = await store().get_response(request_id)
    assert outcome is not None and (outcome.value, outcome.via) == (3, "timeout")


async def test_a_default_the_plugin_applied_reaches_the_message_through_the_outbox(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0)
    event = await hitl.new_event.aio(
        "fallback", int, channels=[f"slack:{CHANNEL}"], timeout_seconds=1, on_timeout=3, poll_interval_seconds=0.05
    )
    await fake_slack.wait_for("chat.postMessage")
    assert await event.wait.aio() == 3
    assert await store().outbox_ids() == [event.request_id]
    report = await asyncio.to_thread(bot.call, Reconciler(bot.service, 1).step())
    assert report.updated == 1 and report.expired == 0
    (update,) = await fake_slack.wait_for("chat.update")
    assert all(block["type"] != "actions" for block in update["blocks"])

"""Expiry, configuration errors and the Slack platform used directly by a core service in this loop."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from hitl_chatops.adapters.slack._app import web_client
from hitl_chatops.adapters.slack._platform import SlackPlatform
from hitl_chatops.bot.adapter import load_bot_settings
from hitl_chatops.bot.errors import ConfigError
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.store import Store
from tests.fakes.slack import BOT_TOKEN, FakeSlack
from tests.slack.slack_helpers import click, create_event, find_element, post_signed, store


async def test_expired_event_refuses_clicks_and_its_messages_say_expired(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("short", bool, timeout_seconds=1)
    [posted] = await fake_slack.wait_for("chat.postMessage")
    await asyncio.sleep(1.1)

    await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_answer")[0]))
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert "expired" in note["text"]
    assert await store().get_response(request_id) is None

    # The reconciler drives expiry; here a core service in this loop does, with the real Slack platform.
    settings = load_bot_settings(slack_bot_token=SecretStr(BOT_TOKEN), slack_api_url=f"{fake_slack.url}/api")
    service = HitlService(Store(settings.store), secret=os.environ["HITL_CHATOPS_SECRET"], form_base_url=bot.url)
    service.delivery.add_platform(SlackPlatform(web_client(settings), service, default_channel=None))
    # ... unless the bot's own reconciler passed first (a loaded machine): either way once.
    await service.expire(request_id)
    await service.background.drain()
    [update] = await fake_slack.wait_for("chat.update")
    assert "Expired" in json.dumps(update["blocks"]) and update["text"].startswith("short: expired at")
    assert all(block["type"] != "actions" for block in update["blocks"])


def test_http_mode_without_signing_secret_names_the_variable(
    start_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        start_bot(slack_bot_token=SecretStr(BOT_TOKEN), slack_api_url=f"{fake_slack.url}/api")

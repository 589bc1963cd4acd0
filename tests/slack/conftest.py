"""Fixtures for the Slack tests: the fake Slack and a bot wired to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr

from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack

if TYPE_CHECKING:
    from hitl_chatops.bot.server import BotThread
    from tests.fakes.flyte import FakeFlyte


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()
    fake.validate_all()  # every Block Kit payload any test made the bot send


@pytest.fixture
def slack_bot(fake_slack: FakeSlack, start_bot: Callable[..., BotThread]) -> Callable[..., BotThread]:
    """Start a bot wired to the fake Slack (HTTP mode unless `slack_app_token` is given)."""

    def start(**overrides: Any) -> BotThread:
        settings: dict[str, Any] = {
            "slack_bot_token": SecretStr(BOT_TOKEN),
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "slack_api_url": f"{fake_slack.url}/api",
        }
        return start_bot(**(settings | overrides))

    return start


@pytest.fixture
def flyte_bot(slack_bot: Callable[..., BotThread], fake_flyte: FakeFlyte) -> Callable[..., BotThread]:
    def start(**overrides: Any) -> BotThread:
        settings = {"flyte_endpoint": fake_flyte.endpoint, "flyte_insecure": True, "reconcile_seconds": 0}
        return slack_bot(**(settings | overrides))

    return start

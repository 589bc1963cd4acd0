"""What the bot logs while it works with Slack, as the JSON lines an operator reads."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from hitl_chatops.bot.logs import JsonFormatter
from hitl_chatops.bot.server import BotThread
from tests.fakes.slack import FakeSlack
from tests.helpers import recorded_messages
from tests.slack.slack_helpers import create_event, store

pytestmark = pytest.mark.asyncio


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, object]]]]:
    """Every record logged while the test runs, formatted by the bot's own JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)  # setLevel, not `.level =`: loggers cache what was enabled
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


async def test_posted_message_line_keeps_the_log_time_and_the_message_ts(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack, json_lines: Callable[[], list[dict[str, object]]]
) -> None:
    slack_bot()
    before = datetime.now(UTC)
    request_id = await create_event("deploy", bool)
    (posted,) = await fake_slack.wait_for("chat.postMessage")

    await recorded_messages(store(), request_id)
    (line,) = [line for line in json_lines() if line["msg"] == "slack message posted"]
    logged_at = datetime.fromisoformat(str(line["ts"]))
    assert before - timedelta(seconds=1) <= logged_at <= datetime.now(UTC), line
    assert line["level"] == "info" and line["request_id"] == request_id and line["channel"] == posted["channel"]
    (message,) = await recorded_messages(store(), request_id)
    assert line["message_ts"] == message.data["ts"], line

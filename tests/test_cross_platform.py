"""One event in Slack and Teams at once: an answer on either platform updates the other's message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from hitl_chatops.bot.protocol import RunInfo
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.store import Store
from tests.conftest import AUTH
from tests.fakes.bot_connector import FakeConnector, card_of
from tests.fakes.events import make_request
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.slack.slack_helpers import CHANNEL as SLACK_CHANNEL
from tests.slack.slack_helpers import click, find_element, post_signed
from tests.teams.teams_helpers import ALICE, Teams, make_event, texts
from tests.teams.teams_helpers import CHANNEL as TEAMS_CHANNEL

TARGETS = [f"slack:{SLACK_CHANNEL}", f"teams:{TEAMS_CHANNEL}"]


@pytest.fixture
def both(start_bot: Callable[..., BotThread]) -> Iterator[tuple[Teams, FakeSlack]]:
    slack, connector = FakeSlack().start(), FakeConnector().start()
    bot = start_bot(
        teams_emulator=True,
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=f"{slack.url}/api",
    )
    yield Teams(bot, connector), slack
    bot.stop()  # finish card updates before the fakes go away
    connector.stop()
    slack.stop()
    slack.validate_all()  # every Block Kit payload the bot sent


async def posted_everywhere(teams: Teams, slack: FakeSlack, data_type: str) -> tuple[str, dict, dict]:
    await teams.install()
    event = await make_event(teams.bot, channels=TARGETS, data_type=data_type)
    [message] = await slack.wait_for("chat.postMessage")
    [call] = await teams.connector.wait_for(lambda: [c for c in teams.connector.sent() if c.body.get("attachments")])
    assert message["channel"] == SLACK_CHANNEL
    return event.request_id, message, {"activity_id": call.created_id, "card": card_of(call.body)}


async def test_answered_in_teams_updates_the_slack_message(both: tuple[Teams, FakeSlack]) -> None:
    teams, slack = both
    request_id, _, posted = await posted_everywhere(teams, slack, "bool")
    approve = next(a for a in posted["card"]["actions"] if a["title"] == "Approve")
    assert approve["data"]["hitl.event"] == request_id

    _, body = await teams.invoke(approve["data"], user=ALICE)
    assert "Alice Example" in texts(body["value"])

    [update] = await slack.wait_for("chat.update")
    assert update["channel"] == SLACK_CHANNEL
    assert "Alice Example" in json.dumps(update["blocks"])
    assert find_element(update["blocks"], "hitl_") == [], "the Slack buttons are gone"
    await teams.connector.wait_for(lambda: teams.connector.updates(posted["activity_id"]))


async def test_answered_in_slack_updates_the_teams_card(both: tuple[Teams, FakeSlack]) -> None:
    teams, slack = both
    _, message, posted = await posted_everywhere(teams, slack, "bool")
    reject = next(e for e in find_element(message["blocks"], "hitl_answer") if "false" in json.dumps(e).lower())

    status, _ = await post_signed(teams.bot.url, click("U0BOB", reject))
    assert status == 200

    [update] = await teams.connector.wait_for(lambda: teams.connector.updates(posted["activity_id"]))
    shown = texts(card_of(update.body))
    assert "Reject" in shown and "Slack" in shown
    assert "actions" not in card_of(update.body), "the Teams buttons are gone"
    await slack.wait_for("chat.update")


HOSTILE_RUN_LINKS = ["javascript:alert(document.domain)", " JavaScript:alert(1)", "data:text/html,<b>x</b>"]


@pytest.mark.parametrize("url", HOSTILE_RUN_LINKS)
async def test_run_link_that_is_not_http_is_shown_as_text_on_every_surface(
    both: tuple[Teams, FakeSlack], url: str
) -> None:
    """A request.json from another writer may carry any `run.url`; only http(s) ever becomes a link."""
    teams, slack = both
    await teams.install()
    store = Store(teams.bot.settings.store)
    event = make_request(store, channels=TARGETS, run={"run_name": "r-42"})
    stored = event.model_dump(mode="json") | {"run": {"run_name": "r-42", "url": url}}
    path = Path(store.request_url(event.request_id))
    await asyncio.to_thread(path.parent.mkdir, parents=True)
    await asyncio.to_thread(path.write_text, json.dumps(stored))
    async with aiohttp.ClientSession() as http:
        notify = f"{teams.bot.url}/api/v1/events/{event.request_id}/notify"
        async with http.post(notify, headers=AUTH) as reply:
            assert reply.status == 202
        async with http.get(teams.bot.service.form_url(event.request_id)) as reply:
            page = await reply.text()

    [message] = await slack.wait_for("chat.postMessage")
    [call] = await teams.connector.wait_for(lambda: [c for c in teams.connector.sent() if c.body.get("attachments")])
    card = json.dumps(card_of(call.body))
    scheme = url.strip().split(":")[0].lower()
    for shown in (json.dumps(message["blocks"]), card, page):
        assert "r-42" in shown and f"{scheme}:" not in shown.lower(), shown
    assert "Run: r-42" in json.dumps(message["blocks"])
    assert "<a href" not in page


def test_run_url_keeps_only_web_links_made_safe_to_embed() -> None:
    def kept(url: str) -> str | None:
        return RunInfo(url=url).url

    for hostile in [*HOSTILE_RUN_LINKS, "java\tscript:alert(1)", "vbscript:x", "file:///etc/passwd", "//evil.example"]:
        assert kept(hostile) is None, hostile
    assert kept("http://[::1") is None  # unparseable: dropped, the request stays readable
    assert kept("https:///no-host") is None
    assert kept(" https://flyte.example/runs/r-42?tab=logs#top ") == "https://flyte.example/runs/r-42?tab=logs#top"
    assert kept("HTTP://Flyte.example/a") == "http://Flyte.example/a"
    # Nothing in the URL can end a link in HTML, Slack's <url|text> or Markdown's [text](url).
    assert kept('https://x.example/a b"<c>|d)[e](javascript:f)') == (
        "https://x.example/a%20b%22%3Cc%3E%7Cd%29[e]%28javascript:f%29"
    )

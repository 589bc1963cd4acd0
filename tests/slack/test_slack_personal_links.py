"""Personal form links from Slack: an event no Slack dialog can hold, that only U0ANN may answer, is
answered in the web form through the link sent to her alone, and the real Flyte run resumes.

Slack sends the link in the ephemeral note of her click; the form answers as her (`HitlService.answer`),
and refuses a link with a tampered identity, Bob's own link, and her link on another event.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import aiohttp
import flyte
import pytest

from hitl_chatops.bot.protocol import Responder
from hitl_chatops.bot.server import BotThread
from tests.fakes.flyte import Run
from tests.fakes.slack import FakeSlack
from tests.slack import slack_workflows as workflows
from tests.slack.slack_helpers import (
    click,
    create_event,
    find_element,
    post_signed,
    rich_lines,
    rich_text,
    store,
    wait_response,
)

pytestmark = pytest.mark.e2e
ANN = Responder(platform="slack", user_id="U0ANN", user_name="u0ann")  # as Slack names her in a click
BOB = Responder(platform="slack", user_id="U0BOB", user_name="u0bob")


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


def slack_link(text: str) -> str:
    """The URL of the `<url|label>` link in a Slack mrkdwn text, as a person's browser follows it."""
    found = re.search(r"<(https?://[^|>]+)\|", text)
    assert found, text
    return html.unescape(found.group(1))


async def fetch(method: str, url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.request(method, url, data=form) as reply:
        return reply.status, await reply.text()


async def test_a_wide_event_only_ann_may_answer_is_answered_through_her_personal_link(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    run = Run(workflows.ann_inspection)
    [posted] = await fake_slack.wait_for("chat.postMessage", seconds=30)
    respond = find_element(posted["blocks"], "hitl_modal")[0]

    await post_signed(bot.url, click("U0BOB", respond))
    [refused] = await fake_slack.wait_for("chat.postEphemeral")
    assert refused["user"] == "U0BOB" and refused["text"] == "Only slack:U0ANN may answer this event."

    await post_signed(bot.url, click("U0ANN", respond))
    [_, note] = await fake_slack.wait_for("chat.postEphemeral", count=2)
    assert note["user"] == "U0ANN" and fake_slack.of("views.open", ok_only=False) == []
    assert note["text"].startswith("This event asks for 120 values, more than a Slack dialog can hold.")
    assert "This link is yours alone: it answers as you" in note["text"]
    link = slack_link(note["text"])
    parts = urlsplit(link)
    assert parse_qs(parts.query)["as"] == ["slack:U0ANN"] and parse_qs(parts.query)["name"] == ["u0ann"]
    request_id = parts.path.rsplit("/", 1)[1]

    status, page = await fetch("GET", link)
    assert status == 200 and 'name="f119"' in page and "<dt>Answering as</dt><dd>u0ann</dd>" in page

    # Nothing else answers as her, or as anyone.
    tampered = link.replace("as=slack%3AU0ANN", "as=slack%3AU0BOB")
    assert tampered != link
    for url in (tampered, link.replace("name=u0ann", "name=Ann")):
        status, page = await fetch("POST", url, {"f000": "forged"})
        assert status == 403 and "This link is not valid" in page
    bobs = bot.service.form_url(request_id, BOB)
    for method in ("GET", "POST"):
        status, page = await fetch(method, bobs, {"f000": "bob"})
        assert status == 403 and "Only slack:U0ANN may answer this event." in page
    other = await create_event("other", bool)
    status, page = await fetch("POST", link.replace(request_id, other), {"value": "true"})
    assert status == 403 and "This link is not valid" in page
    assert await store().get_response(request_id) is None and await store().get_response(other) is None
    assert run.running

    status, page = await fetch("POST", link, {"f000": "cabled", "f119": "labelled"})
    assert status == 200 and "Thanks, your answer is in" in page
    assert await run.finish() == {"f000": "cabled", "f119": "labelled"}
    response = await wait_response(request_id)
    assert (response.via, response.responder) == ("web", ANN)
    [update] = await fake_slack.wait_for("chat.update")
    assert "Answered by @U0ANN" in rich_lines(update["blocks"]) and "the web form" in rich_text(update["blocks"])

    status, page = await fetch("POST", link, {"f000": "again"})
    assert status == 200 and "Already answered" in page

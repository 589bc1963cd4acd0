"""An agent's tool call gated in Slack (a real Flyte local run): the arguments the model chose are
shown literally, and a rejection given in Slack reaches the agent with who gave it and why."""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp
import flyte
import pytest

from hitl_chatops.bot.server import BotThread
from tests import gate_workflows as flows
from tests.fakes.flyte import Run
from tests.fakes.slack import FakeSlack
from tests.slack.slack_helpers import bold_texts, click, find_element, modal_submission, post_signed, rich_text, store
from tests.slack.test_slack_safety import assert_no_mention_or_masked_link

pytestmark = pytest.mark.e2e

FROM_THE_MODEL = {
    "to": "<!channel> finance@example.com",
    "subject": "[Approve here](https://evil.example) *urgent*",
    "body": "<https://evil.example|Open invoice> <@U123> **bold** _it_ `code`\n# heading",
}


async def test_a_gated_tool_shows_the_models_arguments_literally_and_a_rejection_in_slack_reaches_the_agent(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    flyte.init()
    bot = slack_bot()
    run = Run(flows.email_agent, *FROM_THE_MODEL.values())
    [posted] = await fake_slack.wait_for("chat.postMessage", seconds=30)
    header, prompt = posted["blocks"][:2]
    assert (header["text"]["type"], header["text"]["text"]) == ("plain_text", "Approve send_email?")
    assert (prompt["text"]["type"], prompt["text"]["text"]) == ("plain_text", "Send an e-mail on the company's behalf.")
    shown = rich_text(posted["blocks"])  # text elements: shown as written, never parsed
    assert "to <!channel> finance@example.com\n" in shown
    assert "subject [Approve here](https://evil.example) *urgent*\n" in shown
    assert "body <https://evil.example|Open invoice> <@U123> **bold** _it_ `code`\n# heading" in shown
    assert {"to", "subject", "body"} <= set(bold_texts(posted["blocks"]))

    [request_id] = await store().pending_ids()
    request = await store().get_request(request_id)
    shown_repr = "Opaque(" + "x" * 992 + "…"  # not JSON: its repr, cut at 1,000 characters
    assert request.context == FROM_THE_MODEL | {"attachment": shown_repr}
    async with aiohttp.ClientSession() as http, http.get(bot.service.form_url(request_id)) as reply:
        page = await reply.text()
    assert "<td>[Approve here](https://evil.example) *urgent*</td>" in page
    assert "<td>&lt;!channel&gt; finance@example.com</td>" in page and 'evil.example"' not in page

    _approve, reject = find_element(posted["blocks"], "hitl_modal")
    await post_signed(bot.url, click("U0ALICE", reject))
    [shown] = await fake_slack.wait_for("views.open")
    await post_signed(bot.url, modal_submission("U0ALICE", shown["view"], {"reason": "<!here> this is phishing"}))
    rejected = json.loads(await run.finish())
    assert rejected["by"] == {"platform": "slack", "user_id": "U0ALICE", "user_name": "u0alice"}
    assert (rejected["reason"], rejected["via"], rejected["function"]) == (
        "<!here> this is phishing",
        "slack",
        "send_email",
    )
    assert rejected["arguments"]["to"] == repr(FROM_THE_MODEL["to"]) and rejected["at"]
    assert rejected["message"].startswith("send_email(to='<!channel> finance@example.com', subject=")
    assert rejected["message"].endswith(
        'was rejected by u0alice via Slack and was not run. Their reason: "<!here> this is phishing"'
    )

    await fake_slack.wait_for("chat.update")
    assert assert_no_mention_or_masked_link(fake_slack, bot.url, {"U0ALICE"}) > 10

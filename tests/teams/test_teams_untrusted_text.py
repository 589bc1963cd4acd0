"""Text from a task or a person never becomes a link, a mention or markdown in Teams (issue 21).

In agent workflows the title, prompt, details, context, choices and answers come from a model or
from user data, and names and reasons are typed by people. In `prompt_type="text"` (the default)
Teams must show all of them literally: only in `TextRun`s (never read as markdown), or as the
value of an input or of a drop-down. Checked on every activity the real bot sends or updates
(recorded by the fake Bot Connector) and on every card it answers a card action with.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from hitl_chatops.adapters.teams._markdown import teams_markdown
from tests.conftest import AUTH
from tests.fakes.bot_connector import card_of
from tests.teams.teams_helpers import ALICE, CHANNEL, Teams, answer, make_event, rows, texts, title
from tests.teams.test_teams_bot import PERSONAL

HOSTILE = {
    "a masked link": "[click](https://evil.example)",
    "a Teams mention": "<at>Everyone</at>",
    "emphasis": "**bold** and _under_",
    "a Slack broadcast and link": "<!channel> <https://evil.example|Approve here>",
    "a script link": "[js](javascript:alert(1))",
}
# What gives any of them away, escaped or not.
MARKERS = ("evil.example", "<at>", "**bold**", "_under_", "<!channel>", "javascript:")
# Who an activity is from and to: Teams' own records of people, never shown as the message.
ENVELOPE = {"from", "recipient", "conversation"}


def hostile(text: str) -> bool:
    return any(marker in text.replace("\\", "") for marker in MARKERS)


def misplaced(node: Any, parent: dict[str, Any] | None = None, path: str = "") -> list[str]:
    """Where hostile text sits anywhere but a TextRun, an input's value or a drop-down's choice."""
    found: list[str] = []
    if isinstance(node, list):
        for i, child in enumerate(node):
            found += misplaced(child, parent, f"{path}/{i}")
    elif isinstance(node, dict):
        shown = {k: v for k, v in node.items() if node.get("type") != "message" or k not in ENVELOPE}
        for key, value in shown.items():
            if isinstance(value, str) and hostile(value) and not literal_place(node, key, parent):
                found.append(f"{path}/{key} = {value!r}")
            elif not isinstance(value, str):
                found += misplaced(value, node if "type" in node else parent, f"{path}/{key}")
    return found


def literal_place(node: dict[str, Any], key: str, parent: dict[str, Any] | None) -> bool:
    kind = node.get("type")
    if kind == "TextRun":
        return key == "text"
    if kind in ("Input.Text", "Input.Number"):
        return key == "value"  # what was typed, kept in the box
    if kind is None and parent is not None and parent.get("type") == "Input.ChoiceSet":
        return key == "value" or parent.get("style") == "compact"  # radio buttons' titles are markdown
    return False


def person(name: str) -> dict[str, str]:
    return ALICE | {"name": name}


async def cancel(teams: Teams, request_id: str, reason: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{teams.bot.url}/api/v1/events/{request_id}/cancel", json={"reason": reason}, headers=AUTH
        ) as reply,
    ):
        assert reply.status == 200, await reply.text()


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
async def test_task_and_people_text_reaches_teams_only_as_literal_text(teams: Teams, text: str) -> None:
    await teams.install()
    await teams.install(PERSONAL)
    where = [f"teams:{CHANNEL}"]
    context = {text: text, "note": text}
    picked = await make_event(
        teams.bot,
        title=text,
        prompt=text,
        details=text,
        context=context,
        data_type="str",
        choices=[text, "plain"],
        channels=where,
    )
    typed = await make_event(teams.bot, title=text, prompt=text, data_type="str", channels=where)
    refused = await make_event(teams.bot, title=text, prompt=text, data_type="int", channels=where)
    restricted = await make_event(teams.bot, title=text, data_type="bool", channels=where, responders=[text])
    cancelled = await make_event(teams.bot, prompt=text, data_type="bool", channels=where)
    await teams.connector.wait_for(lambda: len(teams.connector.cards(teams.connector.sent(CHANNEL))) == 5)

    answered: list[dict[str, Any]] = []
    for request_id, value in (
        (picked.request_id, text),
        (typed.request_id, text),
        (refused.request_id, text),
        (restricted.request_id, "true"),
    ):
        status, body = await teams.invoke(answer(request_id, value), user=person(text))
        assert status == 200, body
        answered.append(body)
    await cancel(teams, cancelled.request_id, text)
    await teams.say("pending", PERSONAL, user=person(text))
    await teams.connector.wait_for(lambda: len(teams.connector.updates()) == 3)  # picked, typed, cancelled
    await teams.connector.wait_for(lambda: teams.connector.cards(teams.connector.sent(PERSONAL)))  # the pending list

    for call in teams.connector.calls:
        assert misplaced(call.body) == [], call.method
    for body in answered:
        assert misplaced(body) == []
    # Shown, not dropped: as given, in TextRuns.
    first = teams.connector.cards(teams.connector.sent(CHANNEL))[0]
    assert title(first) == text and rows(first)[text] == text
    assert rows(answered[0]["value"])["Answer"] == text and rows(answered[0]["value"])["Answered by"] == text
    assert "is not a whole number" in texts(answered[2]["value"])
    assert f"Only {text} may answer this event." in texts(answered[3]["value"])
    cancelled_card = card_of(teams.connector.updates()[-1].body)
    assert f"{text}" in texts(cancelled_card) and "Cancelled by " in texts(cancelled_card)


def test_the_check_catches_markdown_and_mentions() -> None:
    """The checker itself: hostile text in a TextBlock, a FactSet, a radio button or a message's text."""
    text = HOSTILE["a masked link"]
    assert misplaced({"type": "TextBlock", "text": text})
    assert misplaced({"type": "FactSet", "facts": [{"title": "By", "value": "\\[click\\](https://evil.example)"}]})
    assert misplaced({"type": "Input.ChoiceSet", "style": "expanded", "choices": [{"title": text, "value": text}]})
    assert misplaced({"type": "message", "text": "<at>Everyone</at> answered"})
    assert not misplaced({"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text}]})
    assert not misplaced({"type": "Input.ChoiceSet", "style": "compact", "choices": [{"title": text, "value": text}]})


# -- prompt_type="markdown" ------------------------------------------------------------------

MARKDOWN = {
    "emphasis and a web link": (
        "**Ship** build _42_? See [notes](https://docs.example/notes).",
        "**Ship** build _42_? See [notes](https://docs.example/notes).",
    ),
    "a script link is text": ("[js](javascript:alert(1))", "\\[js\\]\\(javascript:alert\\(1\\)\\)"),
    "a mention is text": ("<at>Everyone</at> look", "\\<at\\>Everyone\\</at\\> look"),
    "a Slack broadcast is text": ("<!channel> now", "\\<!channel\\> now"),
    "an autolink to a web page": ("<https://docs.example/a>", "[https://docs.example/a](https://docs.example/a)"),
    "parentheses in a link are encoded": ("[a](https://x.example/a_(b))", "[a](https://x.example/a_%28b%29)"),
    "a link CommonMark does not see stays text": ("[a] (https://evil.example)", "\\[a\\] \\(https://evil.example\\)"),
    "a reference to a script": (
        "[a][1]\n\n[1]: javascript:alert(1)",
        "\\[a\\]\\[1\\]\n\n\\[1\\]: javascript:alert\\(1\\)",
    ),
    "an image is its description": ("![diagram](https://x.example/d.png)", "diagram"),
    "lists and a heading": ("# Plan\n\n- one\n- **two**\n\n1. a\n2. b", "**Plan**\n\n- one\n- **two**\n\n1. a\n2. b"),
    "literal characters are escaped": ("snake_case 3 * 4", "snake\\_case 3 \\* 4"),
}


@pytest.mark.parametrize(("source", "shown"), MARKDOWN.values(), ids=MARKDOWN.keys())
def test_markdown_keeps_emphasis_lists_and_web_links_only(source: str, shown: str) -> None:
    assert teams_markdown(source) == shown


async def test_a_markdown_event_shows_the_authors_emphasis_and_links_and_nothing_else(teams: Teams) -> None:
    await teams.install()
    prompt = "**Ship** build 42? See [notes](https://docs.example/notes), not [this](javascript:alert(1)) <at>x</at>."
    await make_event(
        teams.bot,
        prompt_type="markdown",
        title="Deploy _api_",
        prompt=prompt,
        details="Owner: [ops](https://ops.example)",
        context={"summary": "**not markdown** [click](https://evil.example)"},
        channels=[f"teams:{CHANNEL}"],
    )
    [posted] = await teams.connector.wait_for(lambda: teams.connector.cards(teams.connector.sent(CHANNEL)))
    heading, question, details = posted["body"][:3]

    assert (heading["type"], heading["text"]) == ("TextBlock", "Deploy _api_")
    assert question == {
        "type": "TextBlock",
        "wrap": True,
        "text": "**Ship** build 42? See [notes](https://docs.example/notes), not "
        "\\[this\\]\\(javascript:alert\\(1\\)\\) \\<at\\>x\\</at\\>.",
    }
    assert details["text"] == "Owner: [ops](https://ops.example)" and details["isSubtle"] is True
    assert rows(posted)["summary"] == "**not markdown** [click](https://evil.example)", "context stays literal"
    assert "evil.example" not in json.dumps([b for b in posted["body"] if b["type"] == "TextBlock"])

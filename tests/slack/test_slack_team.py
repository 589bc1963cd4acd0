"""Team decisions in Slack, end to end: real Flyte local runs wait on them, people click and submit
dialogs as Slack sends them (signed requests to the real bolt app), the bot talks to the fake Web API,
and every copy shows how far the decision is."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import flyte
import pytest

from hitl_chatops.bot.protocol import utcnow
from hitl_chatops.bot.server import BotThread
from tests.fakes.events import make_request
from tests.fakes.flyte import Run
from tests.fakes.slack import FakeSlack
from tests.helpers import recorded_messages
from tests.slack import slack_team_workflows as workflows
from tests.slack.slack_helpers import (
    block_actions,
    click,
    find_element,
    marked,
    modal_submission,
    post_signed,
    rich_elements,
    rich_text,
    slash_command,
    store,
)
from tests.test_platform_seam import api_call, step

pytestmark = pytest.mark.e2e
CHANNEL, ONCALL = workflows.CHANNEL, workflows.ONCALL


@pytest.fixture(scope="module", autouse=True)
def flyte_local() -> None:
    flyte.init()


@pytest.fixture
def team_bot(slack_bot: Callable[..., BotThread]) -> BotThread:
    """A Slack bot whose reconciler the tests step (`step`): reminders and escalations come when asked."""
    return slack_bot(reconcile_seconds=0)


# -- what Slack shows --------------------------------------------------------------------------


def facts(blocks: list[dict[str, Any]]) -> dict[str, str]:
    """A copy's labelled rows: label (bold) -> the rest of the row, `marked`."""
    return dict(labelled(blocks))


def labelled(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """A copy's labelled rows in order, as (label, the rest of the row `marked`)."""
    found = []
    newline = {"type": "text", "text": "\n"}
    for block in blocks:
        row: list[dict[str, Any]] = []
        for element in [*rich_elements(block), newline]:
            if element != newline:
                row.append(element)
                continue
            if len(row) > 2 and row[0].get("style") == {"bold": True} and row[1]["text"] == " ":
                rest = {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": row[2:]}]}
                found.append((row[0]["text"], marked(rest)))
            row = []
    return found


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def button(blocks: list[dict[str, Any]], text: str) -> dict[str, Any]:
    return next(e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["text"]["text"] == text)


async def posted(fake_slack: FakeSlack, channel: str = CHANNEL) -> dict[str, Any]:
    """The event's message in `channel`, as the bot posted it."""
    deadline = time.monotonic() + 30
    while not (found := [p for p in fake_slack.of("chat.postMessage") if p["channel"] == channel]):
        assert time.monotonic() < deadline, f"nothing posted to {channel}"
        await asyncio.sleep(0.02)
    return found[0]


async def copy_shows(
    fake_slack: FakeSlack, check: Callable[[list[dict[str, Any]]], bool], ts: str | None = None
) -> list[dict[str, Any]]:
    """The blocks of the latest `chat.update` (of the copy `ts`) once they pass `check`."""
    deadline = time.monotonic() + 10
    while True:
        updates = [u for u in fake_slack.of("chat.update") if ts is None or u["ts"] == ts]
        if updates and check(updates[-1]["blocks"]):
            return list(updates[-1]["blocks"])
        assert time.monotonic() < deadline, f"no copy passed the check; last: {updates[-1:]}"
        await asyncio.sleep(0.02)


async def told(fake_slack: FakeSlack, user: str, count: int = 1) -> list[str]:
    """What `user` was told ephemerally so far, once `count` notes came."""
    deadline = time.monotonic() + 10
    while len(found := [marked(e["blocks"]) for e in fake_slack.of("chat.postEphemeral") if e["user"] == user]) < count:
        assert time.monotonic() < deadline, f"{user} was told {found}"
        await asyncio.sleep(0.02)
    return found


async def opened(fake_slack: FakeSlack, count: int) -> dict[str, Any]:
    """The `count`-th dialog the bot opened."""
    return dict((await fake_slack.wait_for("views.open", count))[count - 1]["view"])


async def submit(bot: BotThread, user: str, view: dict[str, Any], typed: dict[str, str]) -> dict[str, Any]:
    """Submit a dialog the bot opened; the bot's ack (an update, inline errors, or {} when it closes)."""
    status, body = await post_signed(bot.url, modal_submission(user, view, typed))
    assert status == 200, body
    return dict(json.loads(body)) if body else {}


def shown_note(ack: dict[str, Any]) -> str:
    """The note a dialog shows after its submission was saved."""
    assert ack["response_action"] == "update", ack
    return marked(ack["view"]["blocks"][0])


# -- the tests -----------------------------------------------------------------------------------


async def test_two_approvals_show_progress_on_the_copy_then_decide_and_resume_the_run(
    team_bot: BotThread, fake_slack: FakeSlack
) -> None:
    run = Run(workflows.slack_gate, 2, [])
    message = await posted(fake_slack)
    assert buttons(message["blocks"]) == ["Approve", "Reject…", "Delegate…"]
    assert facts(message["blocks"])["Approvals"] == "0 of 2 approvals"
    assert "Open web form" not in buttons(message["blocks"]), "the form has no identity: it cannot vote"

    await post_signed(team_bot.url, click("U0ANN", button(message["blocks"], "Approve")))
    assert await told(fake_slack, "U0ANN") == ["Counted your approval: *1 of 2 approvals*."]
    copy = await copy_shows(fake_slack, lambda blocks: facts(blocks).get("Approvals") == "1 of 2 approvals")
    assert facts(copy)["Approved by"].startswith("<@U0ANN> at {date}")
    assert buttons(copy) == ["Approve", "Reject…", "Delegate…"]

    await post_signed(team_bot.url, click("U0ANN", button(copy, "Approve")))
    assert (await told(fake_slack, "U0ANN", 2))[1].startswith("You already approved this at ")

    await post_signed(team_bot.url, click("U0BOB", button(copy, "Approve")))
    assert await run.finish() == {
        "value": True,
        "by": "U0BOB",
        "votes": [["U0ANN", "approve", None], ["U0BOB", "approve", None]],
        "history": ["vote", "vote"],
    }
    ended = await copy_shows(fake_slack, lambda blocks: "Approved by" in facts(blocks) and not buttons(blocks))
    assert facts(ended)["Approved by"] == "<@U0ANN> and <@U0BOB>" and facts(ended)["Answer"] == "Approve"
    assert fake_slack.of("chat.update")[-1]["text"].startswith(
        "slack_gate: decided Approve: approved by u0ann and u0bob"
    )

    await post_signed(team_bot.url, click("U0CAT", button(copy, "Approve")))  # a copy still on someone's screen
    [late] = await told(fake_slack, "U0CAT")
    assert late.startswith("Already decided: *Approve*, approved by <@U0ANN> and <@U0BOB> at ")


async def test_a_reject_asks_why_and_vetoes_with_the_reason(team_bot: BotThread, fake_slack: FakeSlack) -> None:
    run = Run(workflows.slack_gate, 3, [])
    message = await posted(fake_slack)
    await post_signed(team_bot.url, click("U0ANN", button(message["blocks"], "Approve")))
    await told(fake_slack, "U0ANN")

    await post_signed(team_bot.url, click("U0BOB", button(message["blocks"], "Reject…")))
    dialog = await opened(fake_slack, 1)
    assert (dialog["callback_id"], dialog["title"]["text"]) == ("hitl_reason", "Reject")
    assert "One rejection decides it" in marked(dialog["blocks"][0])
    too_long = await submit(team_bot, "U0BOB", dialog, {"hitl_reason": "x" * 501})
    assert too_long == {
        "response_action": "errors",
        "errors": {"hitl_reason": "Keep the reason to 500 characters (this one has 501)."},
    }, "the core's limit, said beside the input; nothing counted"
    ack = await submit(team_bot, "U0BOB", dialog, {"hitl_reason": "the error budget is <!here> spent"})
    assert shown_note(ack).startswith("Decided: *Reject* by <@U0BOB> at ")

    result = await run.finish()
    assert (result["value"], result["by"]) == (False, "U0BOB")
    assert result["votes"] == [["U0ANN", "approve", None], ["U0BOB", "reject", "the error budget is <!here> spent"]]
    ended = await copy_shows(fake_slack, lambda blocks: "Rejected by" in facts(blocks))
    shown = facts(ended)
    assert (shown["Rejected by"], shown["Approved before"]) == ("<@U0BOB>", "<@U0ANN>")
    assert shown["Reason"] == "the error budget is <!here> spent", "a reason is text, never a mention"
    assert "the error budget is <!here> spent" in rich_text(ended)
    assert not buttons(ended)


async def test_the_requester_is_refused_by_id(team_bot: BotThread, fake_slack: FakeSlack) -> None:
    run = Run(workflows.slack_gate, 1, [], "slack:U0ERIN")
    message = await posted(fake_slack)
    for control in ("Approve", "Reject…", "Delegate…"):
        await post_signed(team_bot.url, click("U0ERIN", button(message["blocks"], control)))
    assert await told(fake_slack, "U0ERIN", 3) == ["You asked for this decision, so someone else must approve it."] * 3
    assert not fake_slack.of("views.open"), "no dialog for someone who may not act"
    await post_signed(team_bot.url, click("U0ANN", button(message["blocks"], "Approve")))
    assert (await run.finish())["by"] == "U0ANN"


async def test_the_requester_given_by_e_mail_is_found_through_users_lookup_by_email(
    team_bot: BotThread, fake_slack: FakeSlack
) -> None:
    fake_slack.users["erin@example.com"] = "U0ERIN"
    run = Run(workflows.slack_gate, 1, [], "erin@example.com")
    message = await posted(fake_slack)

    fake_slack.fail_next("users.lookupByEmail", 200, error="fatal_error")  # Slack fails once: nobody slips past
    await post_signed(team_bot.url, click("U0ERIN", button(message["blocks"], "Approve")))
    assert await told(fake_slack, "U0ERIN") == [
        "Could not check whose Slack account erin@example.com is just now. Please try again in a moment."
    ]
    await post_signed(team_bot.url, click("U0ERIN", button(message["blocks"], "Approve")))
    assert (await told(fake_slack, "U0ERIN", 2))[1] == "You asked for this decision, so someone else must approve it."
    assert [call["email"] for call in fake_slack.of("users.lookupByEmail")] == ["erin@example.com"] * 2

    await post_signed(team_bot.url, click("U0ANN", button(message["blocks"], "Delegate…")))
    handing = await submit(team_bot, "U0ANN", await opened(fake_slack, 1), {"hitl_delegate_to": "U0ERIN"})
    assert handing == {
        "response_action": "errors",
        "errors": {
            "hitl_delegate_to": "U0ERIN asked for this decision, so they cannot approve it; choose someone else."
        },
    }
    await post_signed(team_bot.url, click("U0ANN", button(message["blocks"], "Approve")))
    assert (await run.finish())["by"] == "U0ANN"
    assert len(fake_slack.of("users.lookupByEmail")) == 2, "an address, once found, is kept for a while"


async def test_a_value_proposed_rejected_with_a_reason_proposed_again_and_confirmed(
    team_bot: BotThread, fake_slack: FakeSlack
) -> None:
    run = Run(workflows.slack_batch_size)
    message = await posted(fake_slack)
    assert buttons(message["blocks"]) == ["Respond…", "Delegate…"]
    assert facts(message["blocks"])["Waiting for"] == "anyone"

    await post_signed(team_bot.url, click("U0ANN", find_element(message["blocks"], "hitl_modal")[0]))
    ack = await submit(team_bot, "U0ANN", await opened(fake_slack, 1), {"hitl_value": "40"})
    assert shown_note(ack) == "Proposed *40*: *1 of 2 approvals*; others confirm or reject it."
    first = await copy_shows(fake_slack, lambda blocks: "Proposed" in facts(blocks))
    assert facts(first)["Proposed"].startswith("*40* by <@U0ANN> at {date}")
    assert buttons(first) == ["Confirm", "Reject…", "Delegate…"]
    assert button(first, "Confirm")["value"].endswith("|r1"), "a Confirm names the round it was shown in"

    await post_signed(team_bot.url, click("U0ANN", button(first, "Confirm")))
    assert await told(fake_slack, "U0ANN") == [
        "You proposed this value, which counts as your approval; others confirm it."
    ]
    await post_signed(team_bot.url, click("U0BOB", button(first, "Reject…")))
    dialog = await opened(fake_slack, 2)
    assert dialog["private_metadata"].endswith("|r1") and "proposed" in marked(dialog["blocks"][0])
    ack = await submit(team_bot, "U0BOB", dialog, {"hitl_reason": "too many for one GPU"})
    assert shown_note(ack) == "Rejected the proposal; a new value may be proposed now."
    reopened = await copy_shows(
        fake_slack, lambda blocks: "Rejected" in facts(blocks) and "Proposed" not in facts(blocks)
    )
    assert facts(reopened)["Rejected"].startswith("*40* by <@U0BOB> at ")
    assert facts(reopened)["Rejected"].endswith(": too many for one GPU")
    assert buttons(reopened) == ["Respond…", "Delegate…"]

    await post_signed(team_bot.url, click("U0BOB", find_element(reopened, "hitl_modal")[0]))
    ack = await submit(team_bot, "U0BOB", await opened(fake_slack, 3), {"hitl_value": "30"})
    assert shown_note(ack).startswith("Proposed *30*")
    second = await copy_shows(fake_slack, lambda blocks: facts(blocks).get("Proposed", "").startswith("*30*"))

    await post_signed(team_bot.url, click("U0CAT", button(first, "Confirm")))  # an old copy's Confirm: round 1
    assert await told(fake_slack, "U0CAT") == ["That proposal was rejected; the one to answer now is 30 by u0bob."]
    await post_signed(team_bot.url, click("U0CAT", button(second, "Confirm")))
    assert await run.finish() == {
        "value": 30,
        "by": "U0CAT",
        "votes": [["U0BOB", "approve", None], ["U0CAT", "approve", None]],
        "history": ["proposal", "vote", "proposal", "vote"],
    }
    ended = await copy_shows(fake_slack, lambda blocks: not buttons(blocks))
    assert facts(ended)["Answer"] == "30" and facts(ended)["Approved by"] == "<@U0BOB> and <@U0CAT>"


async def test_reminders_reply_in_the_thread_mentioning_who_is_waiting_and_stop_at_the_decision(
    team_bot: BotThread, fake_slack: FakeSlack
) -> None:
    events = store()
    # Asked 70 s ago with a reminder a minute (the plugin's minimum): the first one is due.
    request = make_request(
        events,
        now=utcnow() - timedelta(seconds=70),
        channels=[f"slack:{CHANNEL}"],
        approvals=2,
        responders=["slack:U0ANN", "slack:U0BOB", "S0SRE"],
        remind_every=60,
    )
    await events.put_request(request)
    await api_call(team_bot, f"/api/v1/events/{request.request_id}/notify", {})
    [copy] = await recorded_messages(events, request.request_id)
    message = await posted(fake_slack)
    await post_signed(team_bot.url, click("U0ANN", button(message["blocks"], "Approve")))
    await told(fake_slack, "U0ANN")

    await step(team_bot)
    await step(team_bot)
    [reminder] = [p for p in fake_slack.of("chat.postMessage") if p.get("thread_ts")]
    assert (reminder["channel"], reminder["thread_ts"]) == (CHANNEL, copy.data["ts"])
    assert reminder["text"] == "Reminder: 1 of 2 approvals so far; waiting for <@U0BOB>, <!subteam^S0SRE>."
    assert marked(reminder["blocks"]) == "*Reminder*: 1 of 2 approvals so far; waiting for <@U0BOB>, <!subteam^S0SRE>."
    await copy_shows(fake_slack, lambda blocks: "Reminded" in json.dumps(blocks)), "the copy shows it too"
    await post_signed(team_bot.url, click("U0BOB", button(message["blocks"], "Approve")))
    await copy_shows(fake_slack, lambda blocks: not buttons(blocks))
    await step(team_bot)
    assert len([p for p in fake_slack.of("chat.postMessage") if p.get("thread_ts")]) == 1, "none after the decision"


async def test_an_escalation_posts_to_the_on_call_channel_and_lets_its_people_answer(
    team_bot: BotThread, fake_slack: FakeSlack
) -> None:
    fake_slack.groups["S0ONCALL"] = ["U0OLGA"]
    run = Run(workflows.slack_escalated)
    message = await posted(fake_slack)
    await post_signed(team_bot.url, click("U0OLGA", button(message["blocks"], "Approve")))
    assert await told(fake_slack, "U0OLGA") == ["Only slack:U0ANN may answer this event."]

    events = store()
    request_id = button(message["blocks"], "Approve")["value"].split("|")[0]
    request = await events.get_request(request_id)
    await asyncio.sleep(max((request.created_at + timedelta(seconds=1) - utcnow()).total_seconds(), 0))
    await step(team_bot)
    oncall = await posted(fake_slack, ONCALL)
    replies = [p for p in fake_slack.of("chat.postMessage") if p.get("thread_ts")]
    escalated = "*Escalated*: <!subteam^S0ONCALL> may answer this too now."
    assert sorted((r["channel"], marked(r["blocks"])) for r in replies) == [(CHANNEL, escalated), (ONCALL, escalated)]
    assert {r["text"] for r in replies} == {"Escalated: <!subteam^S0ONCALL> may answer this too now."}
    copies = await recorded_messages(events, request_id, 2)
    assert {(r["channel"], r["thread_ts"]) for r in replies} == {(c.data["channel"], c.data["ts"]) for c in copies}
    copy = await copy_shows(fake_slack, lambda blocks: "Escalated" in facts(blocks))
    assert "<!subteam^S0ONCALL>" in facts(copy)["Escalated"]

    await post_signed(team_bot.url, click("U0OLGA", button(oncall["blocks"], "Approve")))
    result = await run.finish()
    assert (result["value"], result["by"], result["history"]) == (True, "U0OLGA", ["escalation", "vote"])


async def test_a_delegation_through_the_users_select_lets_the_delegate_answer_and_not_the_delegator(
    team_bot: BotThread, fake_slack: FakeSlack
) -> None:
    run = Run(workflows.slack_gate, 2, ["slack:U0ANN", "slack:U0BOB"])
    message = await posted(fake_slack)
    await post_signed(team_bot.url, click("U0CAT", button(message["blocks"], "Approve")))
    assert await told(fake_slack, "U0CAT") == ["Only slack:U0ANN, slack:U0BOB may answer this event."]

    await post_signed(team_bot.url, click("U0ANN", button(message["blocks"], "Delegate…")))
    dialog = await opened(fake_slack, 1)
    assert [b["element"]["type"] for b in dialog["blocks"] if b["type"] == "input"] == [
        "users_select",
        "plain_text_input",
    ]
    nobody = await submit(team_bot, "U0ANN", dialog, {})
    assert nobody["errors"] == {"hitl_delegate_to": "Choose the person to hand this to."}
    ack = await submit(
        team_bot, "U0ANN", dialog, {"hitl_delegate_to": "U0CAT", "hitl_note": "on holiday <!channel> until Monday"}
    )
    assert shown_note(ack) == "Handed to <@U0CAT>: they answer in your place now."
    deadline = time.monotonic() + 10
    while not (replies := [p for p in fake_slack.of("chat.postMessage") if p.get("thread_ts")]):
        assert time.monotonic() < deadline, "no hand-over in the thread"
        await asyncio.sleep(0.02)
    assert [r["text"] for r in replies] == [
        "u0ann handed this to <@U0CAT>. Their note: on holiday &lt;!channel&gt; until Monday"
    ], "the delegate is mentioned; the delegator is named, not pinged; the note is text"
    assert [marked(r["blocks"]) for r in replies] == [
        "u0ann handed this to <@U0CAT>. Their note: on holiday <!channel> until Monday"
    ]
    copy = await copy_shows(fake_slack, lambda blocks: "Handed over" in facts(blocks))
    assert facts(copy)["Handed over"].startswith("<@U0ANN> to <@U0CAT> at ")

    await post_signed(team_bot.url, click("U0ANN", button(message["blocks"], "Approve")))
    assert await told(fake_slack, "U0ANN") == ["You handed this to U0CAT, so they answer it now."]
    await post_signed(team_bot.url, click("U0CAT", button(message["blocks"], "Approve")))
    assert (await told(fake_slack, "U0CAT", 2))[1] == "Counted your approval: *1 of 2 approvals*."
    await post_signed(team_bot.url, click("U0BOB", button(message["blocks"], "Approve")))
    result = await run.finish()
    assert (result["votes"], result["history"]) == (
        [["U0CAT", "approve", None], ["U0BOB", "approve", None]],
        ["delegation", "vote", "vote"],
    )


async def test_the_hitl_list_shows_a_team_decision_with_its_buttons_and_confirms_a_vote_there(
    team_bot: BotThread, fake_slack: FakeSlack
) -> None:
    run = Run(workflows.slack_gate, 2, [])
    await posted(fake_slack)
    await post_signed(team_bot.url, slash_command("U0ANN", "", f"{fake_slack.url}/response/1"))
    [listing] = await fake_slack.wait_for_responses()
    assert listing["text"] == "1 event waits for your answer"
    assert buttons(listing["blocks"]) == ["Approve", "Reject…", "Delegate…"]

    def from_the_list(user: str) -> str:
        approve = button(listing["blocks"], "Approve")
        return block_actions(user, {"action_id": approve["action_id"], "value": approve["value"]}, ephemeral=True)

    await post_signed(team_bot.url, from_the_list("U0ANN"))
    assert await told(fake_slack, "U0ANN") == ["Counted your approval: *1 of 2 approvals*."]
    await post_signed(team_bot.url, from_the_list("U0BOB"))
    [note] = await told(fake_slack, "U0BOB")
    assert note.startswith("Decided: *Approve*, approved by <@U0ANN> and <@U0BOB> at "), "the list is no copy"
    assert (await run.finish())["by"] == "U0BOB"
    await copy_shows(fake_slack, lambda blocks: not buttons(blocks))  # the channel's copy is decided too

"""A team decision's copy within Slack's limits by design: 50 blocks a message, 3,000 characters a
block of rows, whatever the number of votes, rounds, hand-overs, reminders and escalations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import create_model

from hitl_chatops.adapters.slack import _team
from hitl_chatops.adapters.slack._platform import as_dicts
from hitl_chatops.bot.decision import Entry, evaluate
from hitl_chatops.bot.protocol import Delegation, Nudge, Proposal, Request, Responder, Vote, utcnow
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.view import event_view
from tests.fakes.events import make_request
from tests.fakes.slack import FakeSlack, validate_blocks
from tests.slack.slack_helpers import CHANNEL, block_actions, post_signed, rich_text, store
from tests.slack.test_slack_team import buttons, copy_shows, facts, labelled, posted, told
from tests.test_platform_seam import api_call

NOW = utcnow()


def person(n: int, prefix: str = "U0P") -> Responder:
    return Responder(platform="slack", user_id=f"{prefix}{n:03d}", user_name=f"person {n} " + "x" * 60)


def long_history(request: Request, *, rounds: int = 30, confirmations: int = 48) -> list[Entry]:
    """`rounds` proposals rejected with long reasons, a proposal now with `confirmations`, 20 hand-overs,
    12 reminders and 4 escalations naming many people: what a month-long decision might gather."""
    at = NOW - timedelta(hours=1)
    log: list[Entry] = []
    for r in range(1, rounds + 1):
        log.append(Proposal(proposer=person(r), round=r, value=r, at=at + timedelta(seconds=2 * r), via="slack"))
        reason = f"round {r}: " + "not like this " * 30
        rejecter = person(r + 100)
        log.append(
            Vote(
                voter=rejecter, round=r, vote="reject", reason=reason, at=at + timedelta(seconds=2 * r + 1), via="slack"
            )
        )
    now = rounds + 1
    log.append(Proposal(proposer=person(200), round=now, value=999, at=at + timedelta(minutes=5), via="slack"))
    for i in range(confirmations):
        voter = person(300 + i)
        log.append(Vote(voter=voter, round=now, vote="approve", at=at + timedelta(minutes=6, seconds=i), via="slack"))
    for i in range(20):
        log.append(
            Delegation(
                delegator=person(500 + i),
                delegate=person(600 + i),
                note="away " * 90,
                at=at + timedelta(minutes=7, seconds=i),
                via="slack",
            )
        )
    log += [Nudge(kind="reminder", index=k, at=at + timedelta(minutes=10 + k)) for k in range(1, 13)]
    crowd = [f"slack:U0Q{i:03d}" for i in range(100)]
    log += [Nudge(kind="escalation", index=i, at=at + timedelta(minutes=30 + i), waiting=crowd) for i in range(4)]
    return log


def rows(blocks: list[dict[str, Any]], label: str) -> list[str]:
    """Every row of a copy labelled `label`, in order (a fact repeated round after round)."""
    return [text for one, text in labelled(blocks) if one == label]


def check_limits(blocks: list[dict[str, Any]]) -> None:
    """What Slack enforces (and slack_sdk does not check): 50 blocks, 3,000 characters a section; and
    our own 3,000 a block of rows."""
    validate_blocks(blocks)
    assert len(blocks) <= 50
    for block in blocks:
        assert len(rich_text(block)) <= 3000
        assert len((block.get("text") or {}).get("text", "")) <= 3000
    assert blocks[-1]["type"] == "actions", "the controls are never what is cut"


def test_a_decision_with_many_votes_and_a_long_history_fits_a_message() -> None:
    request = make_request(store(), data_type="int", approvals=50, responders=["*"])
    view = event_view(request, tally=evaluate(request, long_history(request), approval=False, now=NOW))
    blocks = as_dicts(_team.decision_blocks(view, "https://bot.example/form/x?sig=s"))
    check_limits(blocks)

    shown = facts(blocks)
    assert shown["Approvals"] == "49 of 50 approvals"
    assert shown["Approved by"].endswith("more") and "…and " in shown["Approved by"]
    rejected = rows(blocks, "Rejected")
    assert len(rejected) == 4 and rejected[0] == "…and 27 earlier, not shown here", "the latest three rounds"
    assert rejected[-1].startswith("*30* by <@U0P130> at ") and rejected[-1].endswith("not like …")
    assert rows(blocks, "Handed over")[0] == "…and 17 earlier, not shown here"
    assert shown["Reminded"].startswith("12 times, last at {date}")
    assert "…and " in shown["Escalated"]
    assert buttons(blocks) == ["Confirm", "Reject…", "Delegate…"]


def test_a_proposal_of_many_fields_under_a_long_question_keeps_its_facts_and_controls() -> None:
    fields: dict[str, Any] = {f"field_{n:03d}": (str, "") for n in range(120)}
    wide = create_model("Wide", **fields)
    request = make_request(
        store(),
        data_type="object",
        answer_schema=wide.model_json_schema(),
        approvals=3,
        prompt="p" * 5000,
        details="d" * 5000,
        context={f"k{n}": "v" * 400 for n in range(40)},
    )
    value = {f"field_{n:03d}": "y" * 1500 for n in range(120)}
    log: list[Entry] = [Proposal(proposer=person(1), value=value, at=NOW, via="slack")]
    view = event_view(request, tally=evaluate(request, log, approval=False, now=NOW))
    blocks = as_dicts(_team.decision_blocks(view, "https://bot.example/form/x?sig=s"))
    check_limits(blocks)
    assert {"Approvals", "Proposed", "Waiting for", "Field 000"} <= set(facts(blocks))
    assert rich_text(blocks[-2]).startswith("…and ") and rich_text(blocks[-2]).endswith(" more, not shown here.")


@pytest.mark.e2e
async def test_a_long_decision_is_re_rendered_in_slack_within_its_limits(
    slack_bot: Callable[..., BotThread], fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0)
    events = store()
    request = make_request(events, data_type="int", approvals=50, channels=[f"slack:{CHANNEL}"])
    await events.put_request(request)
    for entry in long_history(request, confirmations=47):
        assert await events.add_to_log(request.request_id, entry)
    await api_call(bot, f"/api/v1/events/{request.request_id}/notify", {})
    check_limits((await posted(fake_slack))["blocks"])

    confirm = {"action_id": "hitl_confirm", "value": f"{request.request_id}|r31"}  # the proposal of round 31
    await post_signed(bot.url, block_actions("U0NEW", confirm))
    assert await told(fake_slack, "U0NEW") == ["Counted your approval: *49 of 50 approvals*."]
    copy = await copy_shows(fake_slack, lambda blocks: facts(blocks).get("Approvals") == "49 of 50 approvals")
    check_limits(copy)
    assert rows(copy, "Rejected")[0] == "…and 27 earlier, not shown here"
    assert buttons(copy) == ["Confirm", "Reject…", "Delegate…"]


def test_a_decision_by_rules_says_who_may_answer_rather_than_anyone() -> None:
    request = make_request(
        store(), rules=[{"name": "sre", "responders": ["slack:S0SRE"]}, {"responders": ["slack:U0SEC"]}]
    )
    [about] = [b for b in as_dicts(_team.decision_blocks(event_view(request), None)) if b["type"] == "context"]
    assert about["elements"][0]["text"].endswith("Who may answer: <!subteam^S0SRE>, <@U0SEC>")

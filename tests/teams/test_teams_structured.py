"""Structured answers, context, proposals, cancel and defaults in Teams (issue 14).

Cards are checked as sent, against the official 1.5 schema and the Teams validator; behaviour
through the real bot over HTTP (`/api/messages`) with the fake Bot Connector recording every card.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import flyte
import pytest
from adaptive_cards.card import AdaptiveCard
from adaptive_cards.validation import CardValidatorFactory
from jsonschema import Draft6Validator
from pydantic import BaseModel

import hitl_chatops.plugin as hitl
from hitl_chatops.adapters.teams._cards import answer_payload, ended_card, event_card
from hitl_chatops.bot.protocol import Request, Responder, Response, utcnow
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.view import event_view
from tests import lifecycle_workflows as flows
from tests.fakes.bot_connector import FakeConnector, card_of
from tests.fakes.flyte import Run
from tests.lifecycle_workflows import ExpenseDecision
from tests.slack.test_slack_structured import EveryKind
from tests.teams.teams_helpers import ALICE, BOB, CHANNEL, Teams, rows, submission, texts, title, typed
from tests.teams.test_teams_bot import PERSONAL
from tests.teams.test_teams_cards import FORM, SCHEMA, request, strip_msteams

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:adaptive_cards")


def structured(model: type[Any], **fields: Any) -> Request:
    return request(data_type="object", answer_schema=model.model_json_schema(), **fields)


def valid(card: dict[str, Any], *, teams_validator: bool = True) -> dict[str, Any]:
    """`card`, after both validators passed it (adaptive-cards-py's Number min/max are int-only)."""
    errors = sorted(Draft6Validator(SCHEMA).iter_errors(strip_msteams(card)), key=str)
    assert not errors, [e.message for e in errors]
    if teams_validator:
        validator = CardValidatorFactory.create_validator_microsoft_teams()
        result = validator.validate(AdaptiveCard.model_validate(strip_msteams(card)), debug=False)
        assert result.is_ok(), [f.message_additional for f in validator.details()]
    return card


def inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["id"].removeprefix("hitl.field."): b for b in card["body"] if b["type"].startswith("Input.")}


def after(card: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The blocks between the input of field `name` and the next input."""
    body = card["body"]
    start = next(i for i, b in enumerate(body) if b.get("id") == f"hitl.field.{name}") + 1
    end = next((i for i in range(start, len(body)) if body[i]["type"].startswith("Input.")), len(body))
    return body[start:end]


# -- rendering -------------------------------------------------------------------------------


def test_one_input_per_field_with_ids_labels_and_the_proposal() -> None:
    request = structured(EveryKind, initial={"replicas": 3, "ticket": "OPS-1"})
    card = valid(event_card(request, FORM), teams_validator=False)  # its ratio holds 0.5
    fields = inputs(card)
    assert list(fields) == ["ship", "replicas", "ratio", "ticket", "notes", "region", "size"]
    assert {k: v["type"] for k, v in fields.items()} == {
        "ship": "Input.Toggle",
        "replicas": "Input.Number",
        "ratio": "Input.Number",
        "ticket": "Input.Text",
        "notes": "Input.Text",
        "region": "Input.ChoiceSet",
        "size": "Input.ChoiceSet",
    }
    assert (fields["ship"]["title"], fields["ship"]["value"], fields["ship"]["valueOn"]) == ("Ship", "false", "true")
    assert after(card, "ship")[0]["inlines"][0]["text"] == "Ship it now?"  # the description, literal
    replicas = fields["replicas"]
    assert (replicas["min"], replicas["max"], replicas["value"]) == (1, 10, 3)
    assert replicas["errorMessage"] == "Enter a whole number from 1 to 10."
    assert fields["ratio"]["value"] == 0.5
    assert (fields["ticket"]["value"], fields["ticket"]["maxLength"], fields["ticket"]["isMultiline"]) == (
        "OPS-1",
        40,
        False,
    )
    assert fields["notes"]["isMultiline"] is True and fields["notes"]["isRequired"] is False
    assert (fields["region"]["style"], fields["region"]["value"]) == ("expanded", "eu")
    assert (fields["size"]["style"], fields["size"]["value"]) == ("compact", "m")
    [submit] = [a for a in card["actions"] if a["type"] == "Action.Execute"]
    assert submit["title"] == "Submit" and answer_payload({**submit["data"], **typed(replicas="4")}) == (
        structured(EveryKind).request_id,
        {"replicas": "4"},
    )


def test_context_rows_are_literal_and_clipped_past_twenty_a_count() -> None:
    context = {"purpose": "GPU *hours* [x](http://evil)", "memo": "m" * 500, "tags": ["a"]}
    card = valid(event_card(structured(ExpenseDecision, context=context), FORM))
    shown = rows(card)
    assert shown["purpose"] == "GPU *hours* [x](http://evil)", "a TextRun is never markdown: no escapes needed"
    assert shown["memo"] == "m" * 299 + "…" and shown["tags"] == '["a"]'
    many = valid(event_card(structured(ExpenseDecision, context={f"k{n:02d}": n for n in range(25)}), FORM))
    assert len([k for k in rows(many) if k.startswith("k")]) == 20 and "…and 5 more context fields" in texts(many)


def test_errors_sit_next_to_each_field_and_typed_values_are_kept() -> None:
    kept = {"approved": "true", "approved_amount": "20000", "notes": "only 80 has receipts"}
    errors = {"approved_amount": "Enter a number from 0 to 10000."}
    card = valid(event_card(structured(ExpenseDecision), FORM, errors=errors, typed=kept), teams_validator=False)
    fields = inputs(card)
    assert fields["approved_amount"]["value"] == 20000 and fields["notes"]["value"] == "only 80 has receipts"
    assert fields["approved"]["value"] == "true"
    assert after(card, "approved_amount")[-1] == {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": "Enter a number from 0 to 10000.", "color": "attention"}],
    }
    assert "attention" not in json.dumps(after(card, "notes")), "no error where the field was fine"


def test_approve_with_a_reason_keeps_the_buttons_and_asks_the_reason_on_the_card() -> None:
    review = structured(flows.Review)
    card = valid(event_card(review, FORM))
    assert list(inputs(card)) == ["reason"]
    approve, reject = (a for a in card["actions"] if a["type"] == "Action.Execute")
    assert (approve["title"], approve["data"]["hitl.field.approved"]) == ("Approve", True)
    assert (reject["title"], reject["data"]["hitl.field.approved"]) == ("Reject", False)
    assert answer_payload({**reject["data"], **typed(reason="flaky")}) == (
        review.request_id,
        {"approved": False, "reason": "flaky"},
    )
    refused = valid(event_card(review, FORM, errors={"reason": "Keep it short."}, typed={"reason": "x"}))
    assert inputs(refused)["reason"]["value"] == "x" and texts(after(refused, "reason")[-1]) == "Keep it short."


def outcome(**fields: Any) -> Response:
    base: dict[str, Any] = {"request_id": request().request_id, "data_type": "object", "responded_at": utcnow()}
    return Response(**(base | fields))


def test_outcome_cards_show_each_field_the_cancellation_or_the_default() -> None:
    decision = structured(ExpenseDecision, context={"purpose": "GPU hours"})
    who = Responder(platform="slack", user_id="U1", user_name="dana_[ops]")
    value = {"approved": True, "approved_amount": 80.0, "notes": "*receipts*"}
    card = valid(ended_card(event_view(decision, outcome(value=value, responder=who, via="slack"))))
    assert "actions" not in card and title(card).endswith("· Answered")
    shown = rows(card)
    assert (
        shown.items()
        >= {"purpose": "GPU hours", "Approved": "Yes", "Approved amount": "80", "Notes": "*receipts*"}.items()
    )
    assert (shown["Answered by"], shown["Via"]) == ("dana_[ops]", "Slack")

    by = Responder(platform="flyte", user_name="run-42")
    cancelled = valid(
        ended_card(event_view(decision, outcome(status="cancelled", reason="budget *frozen*", responder=by)))
    )
    assert "actions" not in cancelled and title(cancelled).endswith("· Cancelled")
    line = next(b for b in cancelled["body"] if b["type"] == "RichTextBlock" and "Cancelled by" in texts(b))
    assert line["inlines"][0]["text"].startswith("Cancelled by run-42 at ")
    assert line["inlines"][0]["text"].endswith(": budget *frozen*")

    told = valid(
        ended_card(event_view(decision, outcome(status="cancelled", reason="x")), notice="cancelled: *not* [me]")
    )
    assert told["body"][-1] == {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": "cancelled: *not* [me]", "color": "attention"}],
    }, "the core's refusal, with a reason someone typed, is shown literally"

    default = {"approved": False, "approved_amount": 0.0, "notes": ""}
    expired = valid(
        ended_card(event_view(decision, outcome(value=default, via="timeout", responded_at=decision.deadline)))
    )
    assert "actions" not in expired and "Expired: default applied" in title(expired)
    assert "default Approved: No · Approved amount: 0 · Notes: — applied." in texts(expired)


# -- behaviour over HTTP ---------------------------------------------------------------------


async def posted(teams: Teams, count: int = 1) -> list[Any]:
    return list(
        await teams.connector.wait_for(
            lambda: len(calls := [c for c in teams.connector.sent() if c.body.get("attachments")]) >= count and calls,
            seconds=30,
        )
    )


async def test_reject_with_a_reason_answers_and_every_copy_shows_both(teams: Teams) -> None:
    await teams.install()
    event = await hitl.new_event.aio("review", flows.Review, prompt="Merge?", channels=[f"teams:{CHANNEL}"])
    [post] = await posted(teams)
    card = card_of(post.body)
    reject = next(a for a in card["actions"] if a.get("title") == "Reject")

    _, refused = await teams.invoke({**reject["data"], **typed(reason="x" * 301)}, user=BOB)
    assert texts(after(refused["value"], "reason")[-1]) == "Keep the answer under 300 characters (it has 301)."
    assert inputs(refused["value"])["reason"]["value"] == "x" * 301

    _, accepted = await teams.invoke({**reject["data"], **typed(reason="flaky tests")}, user=ALICE)
    assert rows(accepted["value"]).items() >= {"Approved": "No", "Reason": "flaky tests"}.items()
    assert await event.wait.aio() == flows.Review(approved=False, reason="flaky tests")
    [update] = await teams.connector.wait_for(lambda: teams.connector.updates(post.created_id))
    assert rows(card_of(update.body))["Reason"] == "flaky tests"


async def test_cancel_rewrites_the_card_and_a_late_click_is_told_why(teams: Teams) -> None:
    await teams.install()
    await teams.install(PERSONAL)
    channels = [f"teams:{CHANNEL}", f"teams:{PERSONAL}"]
    event = await hitl.new_event.aio("expense", ExpenseDecision, prompt="Pay?", channels=channels)
    post, other = await posted(teams, 2)
    await event.cancel.aio("superseded by build 43")
    for copy in (post, other):
        [update] = await teams.connector.wait_for(lambda copy=copy: teams.connector.updates(copy.created_id))
        card = card_of(update.body)
        assert "actions" not in card and "superseded by build 43" in texts(card) and "Cancelled by " in texts(card)

    submit = next(a for a in card_of(post.body)["actions"] if a["type"] == "Action.Execute")
    _, late = await teams.invoke({**submit["data"], **typed(approved="true", approved_amount="5")})
    assert "actions" not in late["value"]
    assert "This event was cancelled by " in texts(late["value"]) and "superseded by build 43" in texts(late["value"])


async def test_a_default_at_the_deadline_rewrites_the_card_and_refuses_a_late_answer(
    connector: FakeConnector, start_bot: Callable[..., BotThread]
) -> None:
    teams = Teams(start_bot(teams_emulator=True, reconcile_seconds=0.2), connector)
    await teams.install()
    event = await hitl.new_event.aio(
        "replicas", int, prompt="How many?", channels=[f"teams:{CHANNEL}"], timeout_seconds=1, on_timeout=3
    )
    [post] = await posted(teams)
    [update] = await teams.connector.wait_for(lambda: teams.connector.updates(post.created_id), seconds=15)
    assert "Expired at " in texts(card_of(update.body)) and "default 3 applied." in texts(card_of(update.body))
    submit = next(a for a in card_of(post.body)["actions"] if a["type"] == "Action.Execute")
    _, late = await teams.invoke({**submit["data"], **typed(value="5")})
    assert "default answer was applied" in texts(late["value"])
    assert await event.wait.aio() == 3


class Ticket(BaseModel):
    """Fields named like the keys a card's action routes on: Teams merges inputs into its data."""

    request_id: str
    hitl: str


async def test_fields_named_like_the_routing_keys_answer_the_right_event(teams: Teams) -> None:
    await teams.install()
    event = await hitl.new_event.aio("ticket", Ticket, prompt="Which ticket?", channels=[f"teams:{CHANNEL}"])
    [post] = await posted(teams)

    data = submission(card_of(post.body), "Submit", {"Request id": "OPS-7", "Hitl": "answer"})
    status, accepted = await teams.invoke(data, user=ALICE)

    assert status == 200 and rows(accepted["value"]).items() >= {"Request id": "OPS-7", "Hitl": "answer"}.items()
    assert await event.wait.aio() == Ticket(request_id="OPS-7", hitl="answer")


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_a_structured_event_answered_on_a_card_resumes_the_run_with_the_model(teams: Teams) -> None:
    flyte.init()
    await teams.install()
    run = Run(flows.decide_expense, f"teams:{CHANNEL}")
    [post] = await posted(teams)
    card = card_of(post.body)
    assert rows(card)["purpose"] == "GPU hours"
    fields = inputs(card)
    assert (fields["approved"]["value"], fields["approved_amount"]["value"]) == ("true", 100)  # the proposal
    submit = next(a for a in card["actions"] if a["type"] == "Action.Execute")
    entered = typed(approved="true", approved_amount="20000", notes="receipts for 80 only")

    _, refused = await teams.invoke({**submit["data"], **entered}, user=BOB)
    assert texts(after(refused["value"], "approved_amount")[-1]) == "Enter a number from 0 to 10000."
    assert inputs(refused["value"])["notes"]["value"] == "receipts for 80 only"
    await asyncio.sleep(5 * flows.POLL)
    assert run.running, "a refused answer leaves the run waiting"

    _, accepted = await teams.invoke({**submit["data"], **entered, **typed(approved_amount="80")}, user=ALICE)
    assert rows(accepted["value"])["Approved amount"] == "80"
    result = json.loads(await run.finish())
    assert result["type"] == "ExpenseDecision"
    assert result["output"] == {"approved": True, "approved_amount": 80.0, "notes": "receipts for 80 only"}
    assert result["by"] == {"platform": "teams", "user_id": "aad-alice", "user_name": "Alice Example"}
    assert result["via"] == "teams"
    [update] = await teams.connector.wait_for(lambda: teams.connector.updates(post.created_id))
    assert rows(card_of(update.body))["Notes"] == "receipts for 80 only"

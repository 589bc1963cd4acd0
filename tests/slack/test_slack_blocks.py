"""Block Kit rendering at the edges: every payload is built with slack_sdk models and validates."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from hitl_chatops.adapters.slack import _blocks, _modal
from hitl_chatops.adapters.slack._platform import as_dicts
from hitl_chatops.bot.answers import MAX_TEXT_LENGTH
from hitl_chatops.bot.platform import channel_targets
from hitl_chatops.bot.protocol import Request, Responder, Response, RunInfo, utcnow
from hitl_chatops.bot.view import event_view
from tests.fakes.slack import validate_blocks, validate_view
from tests.slack.slack_helpers import bold_texts, find_element, rich_text

RID = "0f3c9a8e-1d2b-4c5d-8e9f-a0b1c2d3e4f5"


def event(**fields: Any) -> Request:
    now = utcnow()
    values: dict[str, Any] = {"event_name": "gate", "prompt": "Go?", "data_type": "bool", "timeout_seconds": 60}
    values.update(fields)
    return Request(
        request_id=RID,
        request_path="x",
        response_path="y",
        created_at=now,
        deadline=now + timedelta(seconds=values["timeout_seconds"]),
        **values,
    )


def rendered(request: Request, form: str | None = "https://bot.example/form/x?sig=s") -> list[dict[str, Any]]:
    blocks = as_dicts(_blocks.event_blocks(request, form))
    validate_blocks(blocks)
    return blocks


@pytest.mark.parametrize(
    ("fields", "control", "count"),
    [
        ({"data_type": "bool"}, "hitl_answer", 2),
        ({"data_type": "str", "choices": ["a", "b", "c", "d", "e"]}, "hitl_answer", 5),
        ({"data_type": "str", "choices": [f"c{n}" for n in range(6)]}, "hitl_select", 1),
        ({"data_type": "int", "choices": list(range(100))}, "hitl_select", 1),
        ({"data_type": "str", "choices": [f"c{n}" for n in range(101)]}, "hitl_modal", 1),
        ({"data_type": "int"}, "hitl_modal", 1),
        ({"data_type": "float"}, "hitl_modal", 1),
        ({"data_type": "str"}, "hitl_modal", 1),
    ],
)
def test_controls_by_type(fields: dict[str, Any], control: str, count: int) -> None:
    blocks = rendered(event(**fields))
    assert len(find_element(blocks, control)) == count
    modal = _modal.modal(event(**fields)).to_dict()
    validate_view(modal)
    assert modal["private_metadata"] == RID


def test_limits_are_respected_for_huge_inputs() -> None:
    request = event(
        event_name="n" * 400,
        prompt="p" * 9000,
        details="d" * 9000,
        data_type="str",
        choices=["x" * 2000, "y" * 2000, "z" * 2000],
        responders=[f"U{n:08d}" for n in range(300)],
        run=RunInfo(run_name="r" * 500, url="https://flyte.example/run/1"),
    )
    blocks = rendered(request, form=None)
    assert len(blocks[0]["text"]["text"]) == 150
    for button in find_element(blocks, "hitl_answer"):
        assert len(button["text"]["text"]) <= 75 and len(button["value"]) < 50
    assert len(_blocks.event_text(request)) <= 3000
    validate_view(_modal.modal(request).to_dict())


def test_int_modal_bounds_round_inwards_and_float_allows_decimals() -> None:
    element = _modal.modal(event(data_type="int", min_value=0.5, max_value=9.5)).to_dict()["blocks"][-1]["element"]
    assert (element["min_value"], element["max_value"], element["is_decimal_allowed"]) == ("1", "9", False)
    element = _modal.modal(event(data_type="float", min_value=0.5)).to_dict()["blocks"][-1]["element"]
    assert (element["min_value"], element["is_decimal_allowed"]) == ("0.5", True)


def test_who_may_answer_mentions_users_and_groups_and_escapes_the_rest() -> None:
    request = event(responders=["U0ALICE", "slack:W0BOB", "S0ONCALL", "teams:29:abc", "<!channel>"])
    text = _blocks.who_may_answer(request)
    assert text == "<@U0ALICE>, <@W0BOB>, <!subteam^S0ONCALL>, teams:29:abc, &lt;!channel&gt;"


def test_answered_by_someone_elsewhere_names_them_and_the_surface() -> None:
    request = event()
    response = Response(
        value=False,
        request_id=RID,
        data_type="bool",
        responder=Responder(platform="teams", user_id="29:x", user_name="Dana <admin>"),
        responded_at=utcnow(),
        via="teams",
    )
    view = event_view(request, response)
    blocks = as_dicts(_blocks.ended_blocks(view))
    validate_blocks(blocks)
    assert rich_text(blocks) == "Answer Reject\nAnswered by Dana <admin> (Teams)\nWhen {date}\nVia Teams"
    assert bold_texts(blocks) == ["Answer", "Answered by", "When", "Via"]
    assert _blocks.summary_text(view).startswith("gate: answered Reject by Dana &lt;admin&gt; at ")


def test_pending_list_stays_under_fifty_blocks() -> None:
    requests = [event(event_name=f"e{n}") for n in range(300)]
    blocks = as_dicts(_blocks.pending_blocks(requests, lambda rid: f"https://bot.example/form/{rid}"))
    validate_blocks(blocks)
    assert len(blocks) == 42 and "280 more" in json.dumps(blocks[-1])
    assert as_dicts(_blocks.pending_blocks([], str))[0]["text"]["text"].startswith("Nothing is waiting")


def test_targets_are_slack_channels_plus_the_default_without_repeats() -> None:
    request = event(channels=["slack:C1", "teams:xyz", "slack:C2", "slack:C1"])
    assert channel_targets(request, "slack", "C2") == ["C1", "C2"]
    assert channel_targets(request, "slack", None) == ["C1", "C2"]


def test_picks_translate_to_raw_answers_only() -> None:
    assert _blocks.chosen("true", None) is True and _blocks.chosen("false", None) is False
    assert _blocks.chosen("c1", ["a", "b"]) == "b"
    assert _blocks.chosen("c9", ["a", "b"]) == "c9"  # left for the core to refuse
    assert _blocks.parse_action_value(_blocks.action_value(RID, "c3")) == (RID, "c3")


def test_a_text_input_holds_every_answer_the_core_accepts() -> None:
    """Slack's plain-text input takes at most 3,000 characters; the core's own cap must stay under it."""
    assert MAX_TEXT_LENGTH <= _modal.TEXT_INPUT_LIMIT
    view = _modal.modal(event(data_type="str", initial="x" * 5000)).to_dict()
    validate_view(view)
    element = view["blocks"][-1]["element"]
    assert element["max_length"] == MAX_TEXT_LENGTH and len(element["initial_value"]) == MAX_TEXT_LENGTH


def test_view_title_buttons_options_and_private_metadata_stay_within_slack_limits() -> None:
    request = event(event_name="n" * 400, data_type="str", choices=[f"{n}" * 2000 for n in range(8)])
    view = _modal.modal(request).to_dict()
    validate_view(view)
    assert view["title"]["text"] == "Answer event" and len(view["title"]["text"]) <= 24
    assert view["blocks"][0]["text"]["text"] == "n" * 149 + "…"  # the heading: a 150-character header
    assert len(view["private_metadata"]) <= 3000
    options = view["blocks"][-1]["element"]["options"]
    assert all(len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150 for o in options)
    [select] = find_element(rendered(request, None), "hitl_select")
    assert all(len(o["text"]["text"]) <= 75 and len(o["value"]) <= 150 for o in select["options"])

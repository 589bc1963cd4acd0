"""Structured answers, context, proposals, cancel and defaults in Slack (issue 14).

Rendering is checked on the exact payloads (parsed back through slack_sdk's models); behaviour
through the real bolt app over signed HTTP, with the real client talking to the fake Web API.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any, Literal

import flyte
import pytest
from pydantic import BaseModel, Field

import hitl_chatops.plugin as hitl
from hitl_chatops.adapters.slack import _blocks, _modal
from hitl_chatops.adapters.slack._platform import as_dicts
from hitl_chatops.bot.protocol import Request, Responder, Response, utcnow
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.view import event_view
from tests import lifecycle_workflows as flows
from tests.fakes.flyte import Run
from tests.fakes.slack import FakeSlack, validate_blocks, validate_view
from tests.lifecycle_workflows import EXPENSE, ExpenseDecision
from tests.slack.slack_helpers import (
    CHANNEL,
    bold_texts,
    click,
    create_event,
    find_element,
    modal_submission,
    post_signed,
    rich_lines,
    rich_text,
    slash_command,
    store,
    wait_response,
)
from tests.slack.test_slack_blocks import RID, event

BotFactory = Callable[..., BotThread]


class Size(enum.Enum):
    XS = "xs"
    S = "s"
    M = "m"
    L = "l"
    XL = "xl"
    XXL = "xxl"


class EveryKind(BaseModel):
    ship: bool = Field(description="Ship it now?")
    replicas: int = Field(ge=1, le=10)
    ratio: float = 0.5
    ticket: str = Field(max_length=40)
    notes: str | None = Field(default=None, max_length=1000)
    region: Literal["eu", "us", "ap"] = "eu"
    size: Size = Size.M


def structured(model: type[BaseModel], **fields: Any) -> Request:
    base = {"event_name": "review", "prompt": "Review *this*", "timeout_seconds": 600}
    return event(data_type="object", answer_schema=model.model_json_schema(), **(base | fields))


def message(request: Request) -> list[dict[str, Any]]:
    blocks = as_dicts(_blocks.event_blocks(request, "https://bot.example/form/x?sig=s"))
    validate_blocks(blocks)
    return blocks


def opened(request: Request, preset: dict[str, object] | None = None) -> dict[str, Any]:
    view = _modal.modal(request, preset).to_dict()
    validate_view(view)
    return view


def inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def section_fields(blocks: list[dict[str, Any]]) -> list[str]:
    """The labelled rows ("label value") of a message, from its rich text blocks."""
    return rich_lines([b for b in blocks if b["type"] == "rich_text"])


def outcome(**fields: Any) -> Response:
    base: dict[str, Any] = {"request_id": RID, "data_type": "object", "responded_at": utcnow()}
    return Response(**(base | fields))


# -- rendering -------------------------------------------------------------------------------


def test_a_structured_event_shows_respond_and_its_context_escaped_and_clipped() -> None:
    context = {"purpose": "GPU <!channel> & more", "amount": 120.5, "memo": "m" * 500, "tags": ["a", "b"]}
    blocks = message(structured(ExpenseDecision, context=context))
    [respond] = find_element(blocks, "hitl_modal")
    assert respond["text"]["text"] == "Respond…" and respond["value"] == f"{RID}|"
    assert find_element(blocks, "hitl_answer") == []
    fields = section_fields(blocks)
    assert fields[0] == "purpose GPU <!channel> & more", "a text element: shown as written"
    assert fields[1] == "amount 120.5"
    assert fields[2] == "memo " + "m" * 299 + "…"
    assert fields[3] == 'tags ["a", "b"]'
    assert bold_texts(blocks) == ["purpose", "amount", "memo", "tags"]
    assert "GPU" not in json.dumps([b for b in blocks if b["type"] != "rich_text"]), "in no mrkdwn object"


def test_context_past_twenty_fields_is_counted_not_shown() -> None:
    blocks = message(structured(ExpenseDecision, context={f"k{n:02d}": n for n in range(25)}))
    assert [b["type"] for b in blocks].count("rich_text") == 1, "one block where 2 sections were"
    assert section_fields(blocks) == [f"k{n:02d} {n}" for n in range(20)]
    assert any(
        "…and 5 more context fields" in json.dumps(b, ensure_ascii=False) for b in blocks if b["type"] == "context"
    )


def test_the_modal_has_one_input_per_field_mapped_by_kind() -> None:
    view = opened(structured(EveryKind, initial={"replicas": 3, "ticket": "OPS-1"}))
    fields = inputs(view)
    assert list(fields) == ["ship", "replicas", "ratio", "ticket", "notes", "region", "size"]
    kinds = {name: block["element"]["type"] for name, block in fields.items()}
    assert kinds == {
        "ship": "radio_buttons",
        "replicas": "number_input",
        "ratio": "number_input",
        "ticket": "plain_text_input",
        "notes": "plain_text_input",
        "region": "radio_buttons",
        "size": "static_select",
    }
    ship = fields["ship"]
    assert [o["text"]["text"] for o in ship["element"]["options"]] == ["Yes", "No"]
    assert ship["hint"]["text"] == "Ship it now?" and "initial_option" not in ship["element"]
    replicas = fields["replicas"]["element"]
    assert (replicas["min_value"], replicas["max_value"], replicas["is_decimal_allowed"]) == ("1", "10", False)
    assert (
        replicas["initial_value"] == "3" and fields["replicas"]["hint"]["text"] == "Enter a whole number from 1 to 10."
    )
    assert fields["ratio"]["element"]["is_decimal_allowed"] is True
    assert fields["ratio"]["element"]["initial_value"] == "0.5"  # the model's default
    ticket = fields["ticket"]["element"]
    assert (ticket["max_length"], ticket["multiline"], ticket["initial_value"]) == (40, False, "OPS-1")
    assert fields["notes"]["element"]["multiline"] is True and fields["notes"]["optional"] is True
    assert fields["ticket"]["optional"] is False
    assert fields["region"]["element"]["initial_option"]["text"]["text"] == "eu"
    assert len(fields["size"]["element"]["options"]) == 6
    assert fields["size"]["element"]["initial_option"]["text"]["text"] == "m"


def test_approve_with_a_reason_keeps_approve_and_reject_which_open_the_modal() -> None:
    request = structured(flows.Review)
    buttons = find_element(message(request), "hitl_modal")
    assert [(b["text"]["text"], b["value"]) for b in buttons] == [
        ("Approve", f"{RID}|true"),
        ("Reject", f"{RID}|false"),
    ]
    view = opened(request, {"approved": False})
    approved = inputs(view)["approved"]["element"]
    assert approved["initial_option"]["text"]["text"] == "No"
    assert inputs(view)["reason"]["optional"] is True


def test_outcomes_show_each_field_or_the_cancellation_or_the_default() -> None:
    request = structured(ExpenseDecision, context={"purpose": "GPU hours"})
    answer = {"approved": True, "approved_amount": 80.0, "notes": "only <80> has receipts"}
    who = Responder(platform="teams", user_id="29:x", user_name="Dana")
    answered = as_dicts(_blocks.ended_blocks(event_view(request, outcome(value=answer, responder=who, via="teams"))))
    validate_blocks(answered)
    fields = section_fields(answered)
    assert fields[0] == "purpose GPU hours"
    assert fields[1:] == [
        "Approved Yes",
        "Approved amount 80",
        "Notes only <80> has receipts",
        "Answered by Dana (Teams)",
        "When {date}",
        "Via Teams",
    ]
    assert all(b["type"] != "actions" for b in answered)

    flyte_run = Responder(platform="flyte", user_name="run-42")
    cancelled = outcome(status="cancelled", reason="superseded by <build 43>", responder=flyte_run, via="flyte")
    blocks = as_dicts(_blocks.ended_blocks(event_view(request, cancelled)))
    validate_blocks(blocks)
    said = rich_text(blocks[-1])
    assert said.startswith(":no_entry_sign: Cancelled by run-42 (Flyte) at {date}") and bold_texts(blocks[-1]) == [
        "Cancelled"
    ]
    assert said.endswith(": superseded by <build 43>")
    assert _blocks.summary_text(event_view(request, cancelled)).endswith(": superseded by &lt;build 43&gt;")

    default = {"approved": False, "approved_amount": 0.0, "notes": ""}
    defaulted = outcome(value=default, via="timeout", responded_at=request.deadline)
    blocks = as_dicts(_blocks.ended_blocks(event_view(request, defaulted)))
    validate_blocks(blocks)
    assert rich_text(blocks[-1]).startswith(":hourglass: Expired at {date}")
    assert "default Approved: No · Approved amount: 0 · Notes: — applied" in rich_text(blocks[-1])
    assert bold_texts(blocks[-1]) == ["Expired", "Approved: No · Approved amount: 0 · Notes: —"]
    assert _blocks.summary_text(event_view(request, defaulted)) == (
        "review: expired, default Approved: No · Approved amount: 0 · Notes: — applied"
    )


# -- behaviour over HTTP ---------------------------------------------------------------------


async def test_reject_opens_the_modal_with_reject_chosen_and_the_answer_carries_the_reason(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    request_id = await create_event("review", flows.Review, context={"build": "42"})
    [posted] = await fake_slack.wait_for("chat.postMessage")
    assert "build 42" in section_fields(posted["blocks"])
    approve, reject = find_element(posted["blocks"], "hitl_modal")
    await post_signed(bot.url, click("U0ALICE", reject))
    [shown] = await fake_slack.wait_for("views.open")
    view = shown["view"]
    assert inputs(view)["approved"]["element"]["initial_option"]["value"] == "false"

    _, body = await post_signed(bot.url, modal_submission("U0ALICE", view, {"reason": "x" * 301}))
    assert json.loads(body) == {
        "response_action": "errors",
        "errors": {"reason": "Keep the answer under 300 characters (it has 301)."},
    }
    assert await store().get_response(request_id) is None

    assert (await post_signed(bot.url, modal_submission("U0ALICE", view, {"reason": "flaky tests"})))[1] == ""
    response = await wait_response(request_id)
    assert response.value == {"approved": False, "reason": "flaky tests"}
    [update] = await fake_slack.wait_for("chat.update")
    assert {"Approved No", "Reason flaky tests", "Answered by @U0ALICE"} <= set(section_fields(update["blocks"]))
    assert update["text"].startswith("review: answered Approved: No · Reason: flaky tests by u0alice at ")

    await post_signed(bot.url, click("U0BOB", approve))
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert note["text"].startswith("Already answered: Approved: No · Reason: flaky tests by <@U0ALICE>")
    assert rich_text(note["blocks"]).startswith("Already answered: Approved: No · Reason: flaky tests by @U0ALICE")


async def test_cancel_rewrites_every_copy_and_a_late_click_is_told_why(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    event = await hitl.new_event.aio(
        "expense", ExpenseDecision, prompt="Approve?", channels=[f"slack:{CHANNEL}", "slack:C0FINANCE"]
    )
    posts = await fake_slack.wait_for("chat.postMessage", count=2)
    await event.cancel.aio("superseded by build 43")
    updates = await fake_slack.wait_for("chat.update", count=2)
    assert {u["channel"] for u in updates} == {CHANNEL, "C0FINANCE"}
    for update in updates:
        assert all(b["type"] != "actions" for b in update["blocks"]), "no live controls after a cancel"
        line = rich_text(update["blocks"][-1])
        assert "Cancelled by " in line and line.endswith(": superseded by build 43")

    await post_signed(bot.url, click("U0ALICE", find_element(posts[0]["blocks"], "hitl_modal")[0]))
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert note["text"].startswith("This event was cancelled by ") and "superseded by build 43" in note["text"]
    assert fake_slack.of("views.open") == []


async def test_a_default_at_the_deadline_rewrites_the_message_and_refuses_a_late_answer(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot(reconcile_seconds=0.2)  # the bot's reconciler applies the default at the deadline
    request_id = await create_event("replicas", int, timeout_seconds=1, on_timeout=3)
    [posted] = await fake_slack.wait_for("chat.postMessage")
    [update] = await fake_slack.wait_for("chat.update", seconds=15)
    assert rich_text(update["blocks"][-1]).startswith(":hourglass: Expired at {date}")
    assert "default 3 applied" in rich_text(update["blocks"][-1]) and "3" in bold_texts(update["blocks"][-1])
    assert update["text"] == "replicas: expired, default 3 applied"
    assert (await wait_response(request_id)).via == "timeout"

    await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_modal")[0]))
    [note] = await fake_slack.wait_for("chat.postEphemeral")
    assert "default answer was applied" in note["text"]


async def test_a_submission_after_the_cancel_is_refused_on_the_modal(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    event = await hitl.new_event.aio("expense", ExpenseDecision, prompt="Approve?", channels=[f"slack:{CHANNEL}"])
    [posted] = await fake_slack.wait_for("chat.postMessage")
    await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_modal")[0]))
    [shown] = await fake_slack.wait_for("views.open")
    await event.cancel.aio("budget frozen")
    typed = {"approved": "Yes", "approved_amount": "10"}
    _, body = await post_signed(bot.url, modal_submission("U0ALICE", shown["view"], typed))
    errors = json.loads(body)["errors"]
    assert list(errors) == ["approved"] and errors["approved"].startswith("This event was cancelled by ")
    assert (await wait_response(event.request_id)).cancelled


async def test_the_pending_list_offers_respond_for_structured_events(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = slack_bot()
    await create_event("expense", ExpenseDecision, context=EXPENSE)
    await post_signed(bot.url, slash_command("U0ALICE", "", f"{fake_slack.url}/response/1"))
    [listing] = await fake_slack.wait_for_responses()
    [respond] = find_element(listing["blocks"], "hitl_modal")
    assert respond["text"]["text"] == "Respond…"


async def test_a_proposal_fills_the_scalar_modal_too(slack_bot: BotFactory, fake_slack: FakeSlack) -> None:
    bot = slack_bot()
    await create_event("replicas", int, initial=4)
    [posted] = await fake_slack.wait_for("chat.postMessage")
    await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_modal")[0]))
    [shown] = await fake_slack.wait_for("views.open")
    assert inputs(shown["view"])["hitl_value"]["element"]["initial_value"] == "4"


# -- end to end ------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_a_structured_event_answered_in_a_slack_modal_resumes_the_run_with_the_model(
    slack_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    flyte.init()
    bot = slack_bot()
    run = Run(flows.decide_expense, f"slack:{CHANNEL}")
    [posted] = await fake_slack.wait_for("chat.postMessage", seconds=30)
    assert "purpose GPU hours" in section_fields(posted["blocks"])
    await post_signed(bot.url, click("U0ALICE", find_element(posted["blocks"], "hitl_modal")[0]))
    [shown] = await fake_slack.wait_for("views.open")
    view = shown["view"]
    fields = inputs(view)
    assert fields["approved"]["element"]["initial_option"]["text"]["text"] == "Yes"  # the proposal
    assert fields["approved_amount"]["element"]["initial_value"] == "100"
    assert fields["notes"]["element"]["multiline"] is True

    typed = {"approved_amount": "20000", "notes": "receipts for 80 only"}
    _, body = await post_signed(bot.url, modal_submission("U0ALICE", view, typed))
    assert json.loads(body) == {
        "response_action": "errors",
        "errors": {"approved_amount": "Enter a number from 0 to 10000."},
    }
    assert run.running, "a refused answer leaves the run waiting"

    typed["approved_amount"] = "80"
    assert (await post_signed(bot.url, modal_submission("U0ALICE", view, typed)))[1] == ""
    result = json.loads(await run.finish())
    assert result["type"] == "ExpenseDecision"
    assert result["output"] == {"approved": True, "approved_amount": 80.0, "notes": "receipts for 80 only"}
    assert result["by"] == {"platform": "slack", "user_id": "U0ALICE", "user_name": "u0alice"}
    assert result["via"] == "slack"
    [update] = await fake_slack.wait_for("chat.update")
    assert {"Approved amount 80", "Notes receipts for 80 only"} <= set(section_fields(update["blocks"]))

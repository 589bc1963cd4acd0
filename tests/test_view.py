"""The one view of an event: its state, its words and the controls that remain; every surface lays
out every state, and the refusals people are told are the view's own words."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from hitl_chatops.adapters.slack import _blocks, _rich, _team
from hitl_chatops.adapters.slack._platform import as_dicts
from hitl_chatops.adapters.teams import _cards as cards
from hitl_chatops.bot import form
from hitl_chatops.bot.decision import evaluate
from hitl_chatops.bot.errors import AlreadyAnswered, EventCancelled, EventExpired
from hitl_chatops.bot.protocol import (
    Default,
    Delegation,
    Proposal,
    Request,
    Responder,
    Response,
    Vote,
    format_time,
    utcnow,
)
from hitl_chatops.bot.states import State, handover_line, reminder_line, text_of
from hitl_chatops.bot.view import event_view
from hitl_chatops.plugin._console import ended_text
from tests.fakes.slack import validate_blocks
from tests.slack.slack_helpers import rich_text
from tests.teams.test_teams_structured import valid

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:adaptive_cards")
NOW = utcnow()


class Approval(BaseModel):
    approved: bool
    reason: str | None = None


def event(**fields: Any) -> Request:
    base: dict[str, Any] = {
        "request_id": "00000000-0000-4000-8000-000000000000",
        "event_name": "deploy_gate",
        "prompt": "Deploy?",
        "data_type": "bool",
        "request_path": "r",
        "response_path": "s",
        "created_at": NOW,
        "deadline": NOW + timedelta(hours=1),
        "timeout_seconds": 3600,
        "on_timeout": Default(value=False),
    }
    return Request(**(base | fields))


def outcome_in(state: State, request: Request) -> Response | None:
    """An outcome that puts `request` in `state` (None for pending and expired)."""
    dana = Responder(platform="slack", user_id="U0DANA", user_name="dana")
    if state is State.ANSWERED:
        return Response(value=True, request_id=request.request_id, responder=dana, responded_at=NOW, via="slack")
    if state is State.CANCELLED:
        return Response.cancellation(request, "superseded by build 43", dana, "slack")
    if state is State.DEFAULTED:
        return Response.timeout_default(request)
    if state is State.REJECTED:
        veto = Vote(voter=dana, vote="reject", value=False, reason="not *today*", at=NOW, via="slack")
        return Response(
            value=False,
            request_id=request.request_id,
            responder=dana,
            responded_at=NOW,
            via="slack",
            reason=veto.reason,
            votes=[veto],
        )
    return None


def view_in(state: State, request: Request | None = None) -> Any:
    request = request or event()
    return event_view(request, outcome_in(state, request), expired=state is State.EXPIRED)


@pytest.mark.parametrize(
    ("state", "label"),
    [
        (State.PENDING, "Waiting for you"),
        (State.ANSWERED, "Answered"),
        (State.CANCELLED, "Cancelled"),
        (State.DEFAULTED, "Expired: default applied"),
        (State.EXPIRED, "Expired"),
    ],
)
def test_each_outcome_puts_the_event_in_its_state_with_its_label(state: State, label: str) -> None:
    view = view_in(state)
    assert (view.state, view.words.label) == (state, label)
    assert view.open == (state is State.PENDING), "only a pending event takes answers"


def test_an_outcome_wins_over_the_deadline() -> None:
    request = event()
    assert event_view(request, outcome_in(State.ANSWERED, request), expired=True).state is State.ANSWERED


def test_the_controls_follow_the_answer_shape() -> None:
    scalar_bool = view_in(State.PENDING).controls
    assert scalar_bool is not None and scalar_bool.approval is not None and scalar_bool.approval.name == "value"
    assert (scalar_bool.typed, scalar_bool.picks, scalar_bool.form) == (False, (), True)

    reasoned = event_view(event(data_type="object", answer_schema=Approval.model_json_schema())).controls
    assert reasoned is not None and reasoned.approval is not None and reasoned.approval.name == "approved"
    assert reasoned.typed, "Approve/Reject, then the reason"

    picked = event_view(event(data_type="str", choices=["blue", "green"])).controls
    assert picked is not None and (picked.approval, picked.picks, picked.typed) == (None, ("blue", "green"), False)

    typed = event_view(event(data_type="int")).controls
    assert typed is not None and (typed.approval, typed.picks, typed.typed) == (None, (), True)


def test_the_web_form_takes_an_answer_only_when_anyone_may_give_it() -> None:
    restricted = event_view(event(responders=["U0ALICE"]))
    assert restricted.controls is not None and not restricted.controls.form
    assert restricted.responders == ("U0ALICE",)
    starred = event_view(event(responders=["*", "U0ALICE"]))
    assert starred.controls is not None and starred.controls.form and starred.responders == ()


@pytest.mark.parametrize("state", [State.ANSWERED, State.CANCELLED, State.DEFAULTED])
def test_a_late_answer_is_refused_with_the_views_words(state: State) -> None:
    request = event()
    outcome = outcome_in(state, request)
    assert outcome is not None
    refused = AlreadyAnswered.of(outcome)
    assert isinstance(refused, EventCancelled) == (state is State.CANCELLED)
    assert str(refused) == text_of(event_view(request, outcome).words.refusal)


def test_an_answer_after_the_deadline_is_refused_with_the_views_words() -> None:
    request = event()
    expired = event_view(request, expired=True)
    assert str(EventExpired(format_time(request.deadline))) == text_of(expired.words.refusal)


ENDED = [state for state in State if not state.open]


@pytest.mark.parametrize("state", ENDED)
def test_every_surface_lays_out_every_ended_state(state: State) -> None:
    """A new state fails here until each surface has its layout rule for it."""
    view = view_in(state)
    blocks = as_dicts(_blocks.ended_blocks(view, "https://bot.example.com/form/x"))
    validate_blocks(blocks)
    assert all(block["type"] != "actions" for block in blocks)
    assert _blocks.summary_text(view).startswith("deploy_gate: ")

    card = valid(cards.ended_card(view))
    assert "actions" not in card and card["body"][0]["inlines"][-1]["text"] == f" · {view.words.label}"

    page = form._ended_page(view)
    assert page.status == (403 if state is State.EXPIRED else 200)
    assert view.words.headline in (page.text or "") and f'class="card {state}"' in (page.text or "")
    assert text_of(view.words.refusal)


@pytest.mark.parametrize("state", ENDED)
def test_the_terminal_says_how_the_event_ended_as_the_view_does(state: State) -> None:
    request = event(deadline=NOW - timedelta(seconds=1))
    view = view_in(state, request)
    said = view.words.receipt or view.words.refusal
    assert ended_text(request, view.outcome).startswith("deploy_gate: ")
    assert ended_text(request, view.outcome).endswith(text_of(said) + ("." if view.words.receipt else ""))


# -- a team decision under way ----------------------------------------------------------------

ANN = Responder(platform="slack", user_id="U0ANN", user_name="ann")


def deciding(state: State) -> Any:
    """A team decision in `state`: one approval of two (Approve/Reject), or a value proposed."""
    if state is State.DECIDING:
        request = event(approvals=2, responders=["slack:S0SRE", "U0BOB"])
        log: list[Any] = [Vote(voter=ANN, vote="approve", value=True, at=NOW, via="slack")]
    else:
        request = event(data_type="int", approvals=2)
        log = [Proposal(proposer=ANN, value=40, at=NOW, via="slack")]
    tally = evaluate(request, log, approval=state is State.DECIDING, now=NOW)
    return event_view(request, tally=tally)


@pytest.mark.parametrize(
    ("state", "label", "status"),
    [
        (State.DECIDING, "1 of 2 approvals", "1 of 2 approvals; approved by ann; waiting for slack:S0SRE, U0BOB."),
        (State.PROPOSED, "Proposed: 1 of 2 approvals", "Proposed 40 by ann at "),
    ],
)
def test_every_surface_lays_out_a_decision_under_way(state: State, label: str, status: str) -> None:
    view = deciding(state)
    assert (view.state, view.words.label, view.open) == (state, label, True)
    assert text_of(view.words.status).startswith(status)
    controls = view.controls
    assert controls is not None and controls.delegate and not controls.form, "the form cannot vote: no identity"
    assert controls.confirm == (state is State.PROPOSED) and controls.round == 1
    assert dict(view.words.facts)["Approvals"] == ("1 of 2 approvals",)

    blocks = as_dicts(_team.decision_blocks(view, "https://bot.example.com/form/x"))
    validate_blocks(blocks)
    assert any(block["type"] == "actions" for block in blocks)
    card = valid(cards.event_card(view.request, None, notice=text_of(view.words.status)))
    assert card["actions"]
    page = form._deciding_page(view)
    assert page.status == 200 and f'class="card {state}"' in (page.text or "") and label in (page.text or "")


def test_a_team_event_starts_deciding_with_who_may_act() -> None:
    view = event_view(event(approvals=2, requester="slack:U0REQ"))
    assert (view.state, view.words.label) == (State.DECIDING, "0 of 2 approvals")
    assert view.tally is not None and view.tally.anyone


def test_a_reminder_mentions_ids_only_and_escapes_what_people_wrote() -> None:
    view = deciding(State.DECIDING)
    assert view.tally is not None
    said = _rich.say(reminder_line(view.tally, team=True))
    assert _rich.fallback(said) == "Reminder: 1 of 2 approvals so far; waiting for <!subteam^S0SRE>, <@U0BOB>."
    assert rich_text(as_dicts([_rich.block(said)])) == "Reminder: 1 of 2 approvals so far; waiting for @S0SRE, @U0BOB."
    sneaky = Delegation(
        delegator=Responder(platform="slack", user_id="U0ANN", user_name="<!channel> ann"),
        delegate=Responder(platform="slack", user_id="U0BOB"),
        note="ping <!here> and <https://evil.example|click>",
        at=NOW,
        via="slack",
    )
    handed = _rich.say(handover_line(sneaky))
    text = _rich.fallback(handed)
    assert text.startswith("<@U0ANN> handed this to <@U0BOB>.")
    assert "<!here>" not in text and "<https://evil" not in text and "&lt;!here&gt;" in text
    shown = rich_text(as_dicts([_rich.block(handed)]))
    assert "ping <!here> and <https://evil.example|click>" in shown, "a text element: shown as written"

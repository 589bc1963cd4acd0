"""One view of an event: its state, what to say about it, and what a person can still do.

`event_view(request, outcome)` decides; every surface only lays the `EventView` out: Slack's
blocks and notification text (`adapters/slack/_blocks.py`), Teams' cards (`adapters/teams/_cards.py`),
the web form and its outcome page (`form.py`), a local run's terminal (`plugin/_console.py`), and
the refusals people are told (`errors.py`, through `states`, which holds every sentence each state
says). Each surface keeps its own escaping and limits; none of them words a state or decides which
controls remain.

A team decision under way is `DECIDING` ("1 of 2 approvals") or `PROPOSED` (a value awaiting
confirmation), with its `tally` (votes, proposal, who is waiting, reminders and escalations so far);
one vetoed is `REJECTED`. Adding a state takes:
1. the member in `states.State`, the rule that reaches it in `states.state_of`, its words in
   `states.words`;
2. here, what remains open in it (`Controls`), if that differs;
3. one layout rule per surface for what only that surface has: Slack's icon (`_blocks.ICONS`),
   Teams' colour (`cards.COLORS`), the form's badge colour (a `page.css` rule named after the state)
   and its HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass

from .answers import AnswerField, answer_text, approval_field, describe_answer, schema_of
from .decision import Tally, evaluate
from .protocol import Request, Response, Scalar, utcnow
from .states import State, When, Words, state_of, words

__all__ = ["Controls", "EventView", "anyone_may_answer", "event_view", "is_approval"]


@dataclass(frozen=True)
class Controls:
    """What a person can still do with an open event.

    `approval`: the bool answered with Approve/Reject (a scalar bool, or an "approve, with a
    reason" answer); `picks`: a scalar event's choices, one of which is the whole answer; `typed`:
    something is typed (alone, or after an Approve/Reject click); `form`: the web form takes the
    answer (it has no identity, so only when anyone may answer, and never for a team decision).

    A team decision: `approval` is a vote (a Reject is a veto); a value event's `picks` or `typed`
    propose a value (`HitlService.propose`), and it adds `confirm`, a proposal awaits Confirm / Reject
    (with a reason; nothing is typed or picked until it is rejected); `delegate`, an eligible person
    may hand their place to someone else; `round`, the round a Confirm or Reject acts on (carry it, so
    one clicked on an old copy after the proposal changed is refused rather than confirming a value
    the person never saw).
    """

    approval: AnswerField | None
    picks: tuple[Scalar, ...]
    typed: bool
    form: bool
    confirm: bool = False
    delegate: bool = False
    round: int = 0


@dataclass(frozen=True)
class EventView:
    """An event as every surface shows it; see the module docstring."""

    request: Request
    outcome: Response | None
    state: State
    words: Words
    scalar: bool  # one value (`answer` is one "Answer" row), rather than a row per field
    answer: tuple[tuple[str, str], ...]  # the answer or the default applied, as label/value rows; () without one
    answer_text: str  # the same in one line ("" without one)
    responders: tuple[str, ...]  # who may answer; () when anyone may
    controls: Controls | None  # None once the event takes no answer
    tally: Tally | None = None  # a team decision under way: progress, proposal, votes, history

    @property
    def open(self) -> bool:
        return self.controls is not None


def event_view(
    request: Request, outcome: Response | None = None, *, expired: bool = False, tally: Tally | None = None
) -> EventView:
    """The view of `request` with its `outcome`; with none, pending, or expired when `expired` says
    the deadline passed (the caller knows: a copy re-rendered for the expiry, `request.expired()`).

    A team event without an outcome is deciding: `tally` is its decision as the log has it
    (`HitlService.decision`); without one, as it starts (nobody has acted).
    """
    schema = schema_of(request)
    if request.team_event and outcome is None and not expired and tally is None:
        tally = evaluate(request, (), approval=approval_field(schema) is not None, now=utcnow())
    state = state_of(outcome, expired=expired, tally=tally if request.team_event else None)
    valued = outcome is not None and not outcome.cancelled
    value = outcome.value if outcome is not None else None
    if state is State.PROPOSED and tally is not None and tally.proposal is not None:
        valued, value = True, tally.proposal.value  # the answer shown is the one proposed
    text = answer_text(schema, value) if valued else ""
    return EventView(
        request=request,
        outcome=outcome,
        state=state,
        words=words(
            state,
            outcome,
            When.at(request.deadline),
            text,
            tally=tally,
            answer_of=lambda proposed: answer_text(schema, proposed),
        ),
        scalar=schema.scalar,
        answer=tuple(describe_answer(schema, value)) if valued else (),
        answer_text=text,
        responders=() if anyone_may_answer(request) else tuple(request.responders),
        controls=_controls(request, state, tally),
        tally=tally if state.open else None,
    )


def _controls(request: Request, state: State, tally: Tally | None) -> Controls | None:
    """What an open event leaves people to do: answer it (a simple event), vote or propose (a team
    decision under way), or confirm or reject a proposal."""
    if not state.open:
        return None
    schema = schema_of(request)
    team = tally is not None and request.team_event
    round_ = tally.round if tally is not None else 0
    if state is State.PROPOSED:
        return Controls(None, (), False, False, confirm=True, delegate=True, round=round_)
    approval = approval_field(schema)
    only = schema.fields[0]
    picks = tuple(only.choices or ()) if schema.scalar else ()
    typed = not (schema.scalar and (approval is not None or picks))
    form = anyone_may_answer(request) and not team
    return Controls(approval, picks, typed, form, delegate=team, round=round_)


def is_approval(request: Request) -> bool:
    """Whether the event is answered with Approve/Reject (a veto ends a team decision), rather than a
    value proposed and confirmed."""
    return approval_field(schema_of(request)) is not None


def anyone_may_answer(request: Request) -> bool:
    """No `responders`, or "*" among them."""
    return not request.responders or "*" in request.responders

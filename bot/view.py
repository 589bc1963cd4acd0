"""One view of an event: its state, what to say about it, and what a person can still do.

`event_view(request, outcome)` decides; every surface only lays the `EventView` out: Slack's
blocks and notification text (`adapters/slack/_blocks.py`), Teams' cards (`adapters/teams/_cards.py`),
the web form and its outcome page (`form.py`), a local run's terminal (`plugin/_console.py`), and
the refusals people are told (`errors.py`, through `states`, which holds every sentence each state
says). Each surface keeps its own escaping and limits; none of them words a state or decides which
controls remain.

Adding a state (a proposal awaiting confirmation, a veto, "1 of 2 approvals") takes:
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
from .protocol import Request, Response, Scalar
from .states import State, When, Words, state_of, words

__all__ = ["Controls", "EventView", "anyone_may_answer", "event_view"]


@dataclass(frozen=True)
class Controls:
    """What a person can still do with an open event.

    `approval`: the bool answered with Approve/Reject (a scalar bool, or an "approve, with a
    reason" answer); `picks`: a scalar event's choices, one of which is the whole answer; `typed`:
    something is typed (alone, or after an Approve/Reject click); `form`: the web form takes the
    answer (it has no identity, so only when anyone may answer).
    """

    approval: AnswerField | None
    picks: tuple[Scalar, ...]
    typed: bool
    form: bool


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

    @property
    def open(self) -> bool:
        return self.controls is not None


def event_view(request: Request, outcome: Response | None = None, *, expired: bool = False) -> EventView:
    """The view of `request` with its `outcome`; with none, pending, or expired when `expired` says
    the deadline passed (the caller knows: a copy re-rendered for the expiry, `request.expired()`)."""
    state = state_of(outcome, expired=expired)
    schema = schema_of(request)
    valued = outcome is not None and not outcome.cancelled
    value = outcome.value if outcome is not None else None
    text = answer_text(schema, value) if valued else ""
    controls = None
    if state is State.PENDING:
        approval = approval_field(schema)
        only = schema.fields[0]
        picks = tuple(only.choices or ()) if schema.scalar else ()
        typed = not (schema.scalar and (approval is not None or picks))
        controls = Controls(approval, picks, typed, anyone_may_answer(request))
    return EventView(
        request=request,
        outcome=outcome,
        state=state,
        words=words(state, outcome, When.at(request.deadline), text),
        scalar=schema.scalar,
        answer=tuple(describe_answer(schema, value)) if valued else (),
        answer_text=text,
        responders=() if anyone_may_answer(request) else tuple(request.responders),
        controls=controls,
    )


def anyone_may_answer(request: Request) -> bool:
    """No `responders`, or "*" among them."""
    return not request.responders or "*" in request.responders

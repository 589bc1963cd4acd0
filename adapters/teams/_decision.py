"""A team decision under way on a Teams card: its progress, votes and history, and what a person can do.

The core words everything (`view.words.status` and `.facts`, from `states`); this module only lays it
out in `TextRun`s (literal, never markdown or a mention, whatever a task or a person wrote) and adds the
controls `view.controls` leaves: a reason beside Approve/Reject (a Reject keeps it), Confirm / Reject
of a value proposed (carrying the round the person saw), and a hand-over with Teams' people picker.

A control's data says what it does under `hitl.act`; the inputs a person fills arrive beside it under
their ids (`REASON_ID`, `DELEGATE_ID`, `NOTE_ID`), none of which a field's input id (`hitl.field.…`)
can be. `team_action` reads them back, checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from hitl_chatops.bot.errors import InvalidValue
from hitl_chatops.bot.states import Answer, Line, Strong, text_of
from hitl_chatops.bot.text import clip
from hitl_chatops.bot.view import EventView

from ._elements import Element, Row, literal, run

ACT_KEY = "hitl.act"
ROUND_KEY = "hitl.round"
REASON_ID = "hitl.reason"
DELEGATE_ID = "hitl.delegate.to"
NOTE_ID = "hitl.delegate.note"
# Teams' people picker: a user search as the person types; the pick arrives as the user's Entra object id.
PEOPLE_DATASET = "graph.microsoft.com/users"
TEXT_LIMIT = 500  # a reason or a note, as the API takes them
_REPEATED_ON_LEAN = 3  # rows of one kind (earlier rejections, hand-overs, escalations) kept on a lean card
Act = Literal["confirm", "reject", "delegate"]
_ACTS: tuple[Act, ...] = ("confirm", "reject", "delegate")


@dataclass(frozen=True)
class TeamAction:
    """What a card action asks of a team decision: `act` None is an answer (a vote, or a proposal)."""

    act: Act | None = None
    round: int | None = None
    reason: str | None = None
    delegate: str | None = None
    note: str | None = None


def team_action(data: Mapping[str, object]) -> TeamAction:
    """The action in a card's data (Teams merged the inputs into it). Raises `InvalidValue` for a reason
    or note past `TEXT_LIMIT`, or a pick that is not one person."""
    act = data.get(ACT_KEY)
    round_ = data.get(ROUND_KEY)
    delegate = _text(data, DELEGATE_ID, "Choose one person to hand this to.", limit=255)
    if delegate is not None and ("," in delegate or any(c.isspace() for c in delegate)):
        one = "Choose one person to hand this to."
        raise InvalidValue(one, {DELEGATE_ID: one})
    return TeamAction(
        act=next((a for a in _ACTS if a == act), None),
        round=round_ if isinstance(round_, int) and not isinstance(round_, bool) and round_ >= 1 else None,
        reason=_text(data, REASON_ID, f"Keep the reason to {TEXT_LIMIT} characters."),
        delegate=delegate,
        note=_text(data, NOTE_ID, f"Keep the note to {TEXT_LIMIT} characters."),
    )


def _text(data: Mapping[str, object], key: str, too_long: str, *, limit: int = TEXT_LIMIT) -> str | None:
    value = data.get(key)
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > limit:
        raise InvalidValue(too_long, {key: too_long})
    return text or None


# -- the progress ------------------------------------------------------------------------------


def status_block(line: Line, limit: int) -> Element:
    """A line of the core's words as `TextRun`s: what it emphasises in bold, all of it literal, cut to `limit`."""
    runs: list[Element] = []
    left = limit
    for part in line:
        text = part if isinstance(part, str) else text_of((part,))
        if left <= 0:
            break
        shown = clip(text, left)
        left -= len(shown)
        runs.append(run(shown, weight="bolder") if isinstance(part, (Strong, Answer)) else run(shown))
    return literal(*runs)


def decision_rows(view: EventView, *, lean: bool) -> list[Row]:
    """The decision's facts as rows; `lean`: of each repeated kind, the latest few and a count of the rest."""
    found: list[Row] = [(label, text_of(line)) for label, line in view.words.facts]
    if not lean:
        return found
    rows: list[Row] = []
    for label in dict.fromkeys(label for label, _ in found):
        same = [value for name, value in found if name == label]
        if len(same) > _REPEATED_ON_LEAN:
            rows.append((label, f"…and {len(same) - _REPEATED_ON_LEAN} earlier, not shown here"))
        rows += [(label, value) for value in same[-_REPEATED_ON_LEAN:]]
    return rows


# -- the controls --------------------------------------------------------------------------------


def reason_input(*, confirm: bool) -> Element:
    """A reason beside the buttons: kept with a Reject (a veto's, or why a proposal was turned down)."""
    label = "Reason (kept if you reject it)" if confirm else "Reason (optional; kept with a Reject)"
    return {"type": "Input.Text", "id": REASON_ID, "label": label, "maxLength": TEXT_LIMIT, "isMultiline": True}


def handover(execute: Element) -> Element:
    """The hand-over, shown on demand: Teams' people picker, a note, and `execute` (the button that sends
    them, its data saying `delegate`)."""
    picker: Element = {
        "type": "Input.ChoiceSet",
        "id": DELEGATE_ID,
        "label": "Hand this to",
        "isRequired": True,
        "errorMessage": "Choose a person.",
        "choices": [],
        "choices.data": {"type": "Data.Query", "dataset": PEOPLE_DATASET},
    }
    note: Element = {"type": "Input.Text", "id": NOTE_ID, "label": "Note (optional)", "maxLength": TEXT_LIMIT}
    card: Element = {"type": "AdaptiveCard", "body": [picker, note], "actions": [execute]}
    return {"type": "Action.ShowCard", "title": "Hand over…", "card": card}

"""A team decision in Slack: every copy's progress, and the two dialogs its buttons open.

The copy of a decision under way is the question as asked, then the core's facts about it as
labelled rows of rich text, shown as written ("**Approvals** 1 of 2", the proposal, who approved
and when, earlier proposals rejected and why, who is still waiting, hand-overs, reminders and
escalations), then the controls that remain (`_blocks.actions`: Approve / Reject…, or Confirm /
Reject… for a proposal, the value controls while nothing is proposed, and Delegate…). Slack's
limits hold by design: a fact is cut where a list goes on ("…and 12 more"), a fact repeated round
after round shows its latest few and counts the others, a block of rows keeps to 3,000 characters,
and the message to 50 blocks.

Reject… opens `reason_modal` (an optional reason, then `HitlService.reject`); Delegate… opens
`delegate_modal` (a `users_select` and an optional note, then `HitlService.delegate`).
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    Block,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
    UserSelectElement,
)
from slack_sdk.models.views import View

from hitl_chatops.bot.protocol import NOTE_LIMIT, Request
from hitl_chatops.bot.states import Line
from hitl_chatops.bot.text import clip
from hitl_chatops.bot.view import EventView

from . import _rich
from ._blocks import (
    FACT_LIMIT,
    HEADER_LIMIT,
    MESSAGE_BLOCKS,
    VALUE_ACTION,
    about,
    action_value,
    actions,
    context_shown,
    facts,
    round_pick,
    top,
)
from ._text import plain

REASON_CALLBACK = "hitl_reason"
DELEGATE_CALLBACK = "hitl_handover"
REASON_BLOCK = "hitl_reason"
DELEGATE_TO_BLOCK = "hitl_delegate_to"
NOTE_BLOCK = "hitl_note"
TEXT_BLOCKS = {"reason": REASON_BLOCK, "note": NOTE_BLOCK}  # the core's field names (`InvalidValue`) -> inputs
REPEATS_SHOWN = 3  # of a fact repeated round after round (rejections, hand-overs, escalations): the latest


# -- the copy ------------------------------------------------------------------------------------


def decision_blocks(view: EventView, form_url: str | None) -> list[Block]:
    """A copy of a team decision under way: the question, its facts, the controls that remain.

    The facts come first and get the room they need; a proposal of several fields then shows them
    one by one (as an answer is shown) in what room is left.
    """
    request = view.request
    head: list[Block] = [*top(request, form_url), about(request)]
    tail: list[Block] = [actions(request, form_url, view.controls)] if view.controls is not None else []
    room = MESSAGE_BLOCKS - len(head) - len(tail)
    told = _rich.rows(facts(latest(view.words.facts)), room)
    proposed = [] if view.scalar else context_shown(view.answer, FACT_LIMIT)
    return [*head, *told, *_rich.rows(proposed, room - len(told)), *tail]


def latest(rows: Sequence[tuple[str, Line]]) -> list[tuple[str, Line]]:
    """`rows` with each label kept for its latest `REPEATS_SHOWN` rows, the earlier ones counted
    in one row where they began: a decision of many rounds stays a message Slack can hold."""
    counts: dict[str, int] = {}
    for label, _ in rows:
        counts[label] = counts.get(label, 0) + 1
    kept: list[tuple[str, Line]] = []
    seen: dict[str, int] = {}
    for label, line in rows:
        seen[label] = seen.get(label, 0) + 1
        earlier = counts[label] - REPEATS_SHOWN
        if seen[label] <= earlier:
            if seen[label] == 1:
                kept.append((label, (f"…and {earlier} earlier, not shown here",)))
            continue
        kept.append((label, line))
    return kept


# -- the dialogs ---------------------------------------------------------------------------------


def reason_modal(request: Request, round_: int, view: EventView) -> View:
    """Reject…: what is rejected, and a reason to give (optional); `private_metadata` carries the
    request id and the round the person saw."""
    proposal = view.tally.proposal if view.tally is not None else None
    if proposal is not None and proposal.round == round_:
        what = _rich.block(
            _rich.literal("Reject the value proposed for "),
            _heading(request),
            _rich.literal("? The question opens again for a new proposal; your reason is shown with the rejected one."),
            newline=False,
        )
    else:
        what = _rich.block(
            _rich.literal("Reject "),
            _heading(request),
            _rich.literal("? One rejection decides it: rejected."),
            newline=False,
        )
    return _dialog(
        REASON_CALLBACK,
        action_value(request.request_id, round_pick(round_)),
        title="Reject",
        submit="Reject",
        blocks=[
            what,
            _text_input(REASON_BLOCK, "Why? (optional)", "Shown on every copy and kept in the decision's history."),
        ],
    )


def delegate_modal(request: Request) -> View:
    """Delegate…: the person to hand this to, and a note (optional); `private_metadata` is the request id."""
    what = _rich.block(
        _rich.literal("Hand your place in "),
        _heading(request),
        _rich.literal(
            " to someone else: they answer in your place, and you no longer can. They are mentioned in the "
            "message's thread."
        ),
        newline=False,
    )
    return _dialog(
        DELEGATE_CALLBACK,
        request.request_id,
        title="Delegate",
        submit="Hand over",
        blocks=[
            what,
            InputBlock(
                block_id=DELEGATE_TO_BLOCK,
                label="To",
                element=UserSelectElement(action_id=VALUE_ACTION, placeholder="Choose a person"),
            ),
            _text_input(NOTE_BLOCK, "Note (optional)", "Shown in the thread with the hand-over."),
        ],
    )


def _heading(request: Request) -> _rich.Rich:
    return _rich.literal(clip(plain(request.heading, request.prompt_type), HEADER_LIMIT), bold=True)


def _dialog(callback: str, metadata: str, *, title: str, submit: str, blocks: list[Block]) -> View:
    return View(
        type="modal",
        callback_id=callback,
        private_metadata=metadata,
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text="Cancel"),
        blocks=blocks,
    )


def _text_input(block_id: str, label: str, hint: str) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        hint=hint,
        optional=True,
        element=PlainTextInputElement(action_id=VALUE_ACTION, multiline=True, max_length=NOTE_LIMIT),
    )


def typed_note(text: str | None) -> str | None:
    """A reason or note as typed: None when blank (Slack sends None for an empty optional input)."""
    return text.strip() or None if text else None

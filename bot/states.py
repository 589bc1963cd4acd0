"""The states of an event and what each says to people: the one place those words are written.

`words` holds, per state, every sentence a surface shows about it (a label, a page's headline, the
status line a chat copy shows in place of its controls, a notification's summary, what someone who
answers too late is told, ...). A sentence is a `Line`: our own words with typed parts in them
(who, when, the answer, a reason) that each surface renders its own way: Slack mentions a Slack
user and writes a time as a date token, every text surface escapes what people typed, Teams and
the web form show it literally. `text_of` is the line as text.

This module sits under `errors` (the refusals are its lines) and imports only the protocol, `text`
and the team decision's pure evaluation (`decision`); `view` builds the whole view of an event on top
of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from .decision import Entry, Tally
from .protocol import Delegation, Proposal, Responder, Response, Vote, format_time
from .text import via_name

__all__ = [
    "Answer",
    "Line",
    "Mention",
    "Part",
    "Said",
    "State",
    "Strong",
    "When",
    "Who",
    "Words",
    "acted",
    "escalation_line",
    "expired_refusal",
    "handover_line",
    "refusal",
    "reminder_line",
    "state_of",
    "text_of",
    "words",
]


class State(StrEnum):
    """Where an event is: waiting (alone, or a team decision under way), or ended one of five ways.
    Also a CSS class on the web pages."""

    PENDING = "pending"
    DECIDING = "deciding"  # a team decision under way: approvals being gathered, or a value awaited
    PROPOSED = "proposed"  # a team decision's value proposed, awaiting confirmation
    ANSWERED = "answered"  # answered, or a team decision approved
    REJECTED = "rejected"  # a team decision ended by an eligible Reject (a veto)
    CANCELLED = "cancelled"
    DEFAULTED = "defaulted"  # the deadline passed and its `on_timeout` default was applied
    EXPIRED = "expired"  # the deadline passed without an answer

    @property
    def open(self) -> bool:
        """Whether the event still takes answers in this state."""
        return self in (State.PENDING, State.DECIDING, State.PROPOSED)


def state_of(outcome: Response | None, *, expired: bool = False, tally: Tally | None = None) -> State:
    """The state an outcome (or its absence, before or after the deadline) puts an event in; `tally`
    is a team event's decision under way."""
    if outcome is None:
        if expired:
            return State.EXPIRED
        if tally is None:
            return State.PENDING
        return State.PROPOSED if tally.proposal is not None else State.DECIDING
    if outcome.cancelled:
        return State.CANCELLED
    if outcome.vetoed:
        return State.REJECTED
    return State.DEFAULTED if outcome.defaulted else State.ANSWERED


# -- the parts of a line ---------------------------------------------------------------------


@dataclass(frozen=True)
class Strong:
    """Our own word, emphasised where the surface can ("*Cancelled*" in Slack)."""

    text: str


@dataclass(frozen=True)
class Who:
    """Who gave the outcome: `text` for people to read; `person`, when known, for a surface that can
    name them its own way (a Slack mention)."""

    text: str
    person: Responder | None = None

    @classmethod
    def of(cls, outcome: Response) -> Who:
        return cls(outcome.responder_label, outcome.responder)


@dataclass(frozen=True)
class When:
    """A moment as text (UTC), and the moment itself for a surface that shows each reader their own time."""

    text: str
    moment: datetime | None = None

    @classmethod
    def at(cls, moment: datetime) -> When:
        return cls(format_time(moment), moment)

    @classmethod
    def of(cls, outcome: Response) -> When:
        return cls(outcome.responded_text, outcome.responded_at)


@dataclass(frozen=True)
class Answer:
    """An answer (or the default applied) in one line; a person chose it, so it is escaped, and
    emphasised where the surface can."""

    text: str


@dataclass(frozen=True)
class Said:
    """Words a person typed (a cancellation's reason): escaped, never emphasised."""

    text: str


@dataclass(frozen=True)
class Mention:
    """A `responders` entry (a user or group id, as the request holds it, checked when it was written):
    a surface that knows the id notifies them its own way (a Slack mention); others show it as text.
    Never built from text a person or a task wrote."""

    text: str


Part = str | Strong | Who | When | Answer | Said | Mention  # a str is our own words
Line = tuple[Part, ...]


def text_of(line: Line) -> str:
    """The line as text: what the errors, Teams' text runs and the web pages show (each escapes its way)."""
    return "".join(part if isinstance(part, str) else part.text for part in line)


# -- the words of each state -----------------------------------------------------------------


@dataclass(frozen=True)
class Words:
    """Everything said about an event in one state. An empty line: nothing to say there in this state."""

    label: str  # the state in a word or two: a card's subtitle, a page's badge
    headline: str = ""  # a page about the event, once it has ended
    status: Line = ()  # a posted copy, in place of its controls, when the state has no `facts`
    summary: Line = ()  # a notification, after the event's title ("answered Approve by Dana at …")
    refusal: Line = ()  # someone who answers now (the errors' messages)
    message: Line = ()  # the page someone opens after the outcome
    receipt: Line = ()  # the answer with who, when and where ("Approve by Dana at … via Slack")
    facts: tuple[tuple[str, Line], ...] = ()  # a posted copy: labelled rows after the answer's


def words(
    state: State,
    outcome: Response | None,
    deadline: When,
    answer: str = "",
    *,
    tally: Tally | None = None,
    answer_of: Callable[[Any], str] = str,
) -> Words:
    """What `state` says, given its `outcome`, the event's `deadline` and the `answer` in one line;
    `tally` is a team event's decision under way, `answer_of` writes a proposed value in one line.

    A new state is one more case here (and one in `view.event_view` if it changes what people can do).
    """
    if state is State.PENDING:
        return Words(label="Waiting for you")
    if state in (State.DECIDING, State.PROPOSED):
        assert tally is not None, f"a {state} event has a tally"
        return _deciding(tally, answer_of)
    if state is State.EXPIRED:
        return Words(
            label="Expired",
            headline="This event has expired",
            status=(Strong("Expired"), " at ", deadline, " without an answer; the workflow no longer waits."),
            summary=("expired at ", deadline),
            refusal=("This event expired at ", deadline, "; the workflow no longer waits for an answer."),
            message=("The deadline was ", deadline, "; the workflow no longer waits for an answer."),
        )
    assert outcome is not None, f"a {state} event has an outcome"
    who, when = Who.of(outcome), When.of(outcome)
    if state is State.CANCELLED:
        reason: Line = (": ", Said(outcome.reason)) if outcome.reason else ()
        refusal: Line = ("This event was cancelled by ", who, " at ", when, *reason, ".")
        return Words(
            label="Cancelled",
            headline="This event was cancelled",
            status=(Strong("Cancelled"), " by ", who, " at ", when, *reason),
            summary=("cancelled by ", who, " at ", when, *reason),
            refusal=refusal,
            message=refusal,
        )
    if state is State.DEFAULTED:
        return Words(
            label="Expired: default applied",
            headline="This event has expired",
            status=(Strong("Expired"), " at ", deadline, ": default ", Answer(answer), " applied."),
            summary=("expired, default ", Answer(answer), " applied"),
            refusal=("This event expired at ", deadline, " and its default answer was applied."),
            message=("The deadline was ", deadline, "; the default answer ", Answer(answer), " was applied."),
        )
    via = via_name(outcome.via)
    if state is State.REJECTED:
        return _rejected(outcome, answer, who, when, via)
    if outcome.votes:
        return _approved(outcome, answer, when, via)
    return Words(
        label="Answered",
        headline="Already answered",
        summary=("answered ", Answer(answer), " by ", who, " at ", when),
        refusal=("Already answered by ", who, " at ", when, "."),
        message=("Answered ", Answer(answer), " by ", who, " at ", when, " via ", via, "."),
        receipt=(Answer(answer), " by ", who, " at ", when, " via ", via),
        facts=(("Answered by", (who,)), ("When", (when,)), ("Via", (via,))),
    )


def refusal(outcome: Response) -> str:
    """What someone who answers an event that has `outcome` is told (a default is applied at the deadline)."""
    return text_of(words(state_of(outcome), outcome, When.of(outcome)).refusal)


def expired_refusal(deadline_text: str) -> str:
    """What someone who answers after the deadline is told, when no outcome was written."""
    return text_of(words(State.EXPIRED, None, When(deadline_text)).refusal)


# -- a team decision -------------------------------------------------------------------------


def people(voters: Iterable[Responder]) -> Line:
    """ "A", "A and B", "A, B and C", each a `Who`."""
    named = [Who(person.label, person) for person in voters]
    line: list[Part] = []
    for i, who in enumerate(named):
        if i:
            line.append(" and " if i == len(named) - 1 else ", ")
        line.append(who)
    return tuple(line)


def mentions(entries: Sequence[str]) -> Line:
    """`responders` entries as mentions, comma-separated."""
    line: list[Part] = []
    for i, entry in enumerate(entries):
        line += [", "] if i else []
        line.append(Mention(entry))
    return tuple(line)


def progress(tally: Tally) -> str:
    return f"{tally.approved} of {tally.needed} approval{'' if tally.needed == 1 else 's'}"


def waiting_line(tally: Tally) -> Line:
    """Who may still act: the entries, or anyone."""
    if tally.waiting:
        return mentions(tally.waiting) + ((" or anyone else",) if tally.anyone else ())
    return ("anyone",) if tally.anyone else ("nobody who has not acted yet",)


def _deciding(tally: Tally, answer_of: Callable[[Any], str]) -> Words:
    """A team decision under way: how far it is, who approved, what is proposed, who may still act."""
    count = progress(tally)
    proposal = tally.proposal
    approved: Line = ()
    if tally.approvals:
        approved = ("; approved by ", *people(v.voter for v in tally.approvals))
    if proposal is not None:
        label = f"Proposed: {count}"
        status: Line = (
            Strong("Proposed"),
            " ",
            Answer(answer_of(proposal.value)),
            " by ",
            Who(proposal.proposer.label, proposal.proposer),
            " at ",
            When.at(proposal.at),
            f": {count}; waiting for ",
            *waiting_line(tally),
            " to confirm or reject it.",
        )
    else:
        label = count if tally.approval else "Waiting for a proposal"
        status = (Strong(count), *approved, "; waiting for ", *waiting_line(tally), ".")
    return Words(label=label, status=status, summary=(count,), facts=_decision_facts(tally, answer_of))


def _decision_facts(tally: Tally, answer_of: Callable[[Any], str]) -> tuple[tuple[str, Line], ...]:
    """A decision under way as labelled rows: counts, rules, proposal, votes, history, who is waiting."""
    rows: list[tuple[str, Line]] = [("Approvals", (progress(tally),))]
    for rule in tally.rules:
        rows.append(
            (rule.label.capitalize(), (f"{len(rule.met_by)} of {rule.needed} from ", *mentions(rule.responders)))
        )
    if (proposal := tally.proposal) is not None:
        who = Who(proposal.proposer.label, proposal.proposer)
        rows.append(("Proposed", (Answer(answer_of(proposal.value)), " by ", who, " at ", When.at(proposal.at))))
    if tally.approvals:
        rows.append(
            ("Approved by", _joined([(Who(v.voter.label, v.voter), " at ", When.at(v.at)) for v in tally.approvals]))
        )
    for earlier in tally.rejected:
        rows.append(("Rejected", _rejection(earlier.proposal, earlier.rejection, answer_of)))
    rows.append(("Waiting for", waiting_line(tally)))
    rows += [("Handed over", _handover(d)) for d in tally.delegations]
    rows += _nudge_rows(tally.log)
    return tuple(rows)


def _rejection(proposal: Proposal, rejection: Vote, answer_of: Callable[[Any], str]) -> Line:
    why: Line = (": ", Said(rejection.reason)) if rejection.reason else ()
    by = Who(rejection.voter.label, rejection.voter)
    return (Answer(answer_of(proposal.value)), " by ", by, " at ", When.at(rejection.at), *why)


def _handover(delegation: Delegation) -> Line:
    note: Line = (": ", Said(delegation.note)) if delegation.note else ()
    by, to = delegation.delegator, delegation.delegate
    return (Who(by.label, by), " to ", Who(to.label, to), " at ", When.at(delegation.at), *note)


def _nudge_rows(log: Sequence[Entry]) -> list[tuple[str, Line]]:
    reminders = [e for e in log if e.kind == "reminder"]
    rows: list[tuple[str, Line]] = []
    if reminders:
        times = "once" if len(reminders) == 1 else f"{len(reminders)} times"
        rows.append(("Reminded", (f"{times}, last at ", When.at(reminders[-1].at))))
    for escalation in (e for e in log if e.kind == "escalation"):
        rows.append(("Escalated", (When.at(escalation.at), ": ", *mentions(escalation.waiting))))
    return rows


def _joined(lines: Sequence[Line]) -> Line:
    out: list[Part] = []
    for i, line in enumerate(lines):
        out += [", "] if i else []
        out += line
    return tuple(out)


def _approved(outcome: Response, answer: str, when: When, via: str) -> Words:
    """A team decision approved: its value, and everyone who approved it."""
    approvers = people(v.voter for v in outcome.votes or ())
    what: Line = () if outcome.data_type == "bool" else (Answer(answer), ", ")
    refusal: Line = ("Decided already: ", *what, "approved by ", *approvers, " at ", when, ".")
    return Words(
        label="Approved",
        headline="Already decided",
        summary=("decided ", Answer(answer), ": approved by ", *approvers, " at ", when),
        refusal=refusal,
        message=refusal,
        receipt=(Answer(answer), ", approved by ", *approvers, " at ", when, " via ", via),
        facts=(("Approved by", approvers), ("When", (when,)), ("Via", (via,))),
    )


def _rejected(outcome: Response, answer: str, who: Who, when: When, via: str) -> Words:
    """A team decision vetoed: who rejected it, when and why, and who had approved before."""
    reason: Line = (": ", Said(outcome.reason)) if outcome.reason else ()
    approvers = [v.voter for v in outcome.votes or () if v.vote == "approve"]
    refusal: Line = ("Decided already: rejected by ", who, " at ", when, *reason, ".")
    facts: list[tuple[str, Line]] = [("Rejected by", (who,)), ("When", (when,)), ("Via", (via,))]
    facts += [("Reason", (Said(outcome.reason),))] if outcome.reason else []
    facts += [("Approved before", people(approvers))] if approvers else []
    return Words(
        label="Rejected",
        headline="Rejected",
        status=(Strong("Rejected"), " by ", who, " at ", when, *reason),
        summary=("rejected by ", who, " at ", when, *reason),
        refusal=refusal,
        message=("Rejected by ", who, " at ", when, *reason, "."),
        receipt=(Answer(answer), " by ", who, " at ", when, " via ", via),
        facts=tuple(facts),
    )


def acted(tally: Tally, entry: Entry, answer_of: Callable[[Any], str] = str) -> Line:
    """What a person is told after their vote, proposal or hand-over was saved and did not decide."""
    count = progress(tally)
    if isinstance(entry, Proposal):
        return ("Proposed ", Answer(answer_of(entry.value)), ": ", Strong(count), "; others confirm or reject it.")
    if isinstance(entry, Delegation):
        to = entry.delegate
        return ("Handed to ", Who(to.label, to), ": they answer in your place now.")
    if isinstance(entry, Vote) and entry.vote == "reject":
        return ("Rejected the proposal; a new value may be proposed now.",)
    return ("Counted your approval: ", Strong(count), ".")


def reminder_line(tally: Tally, *, team: bool) -> Line:
    """A reminder in a copy's thread: how far the decision is, and who still has to act."""
    where: Line = (progress(tally), " so far") if team else ("No answer yet",)
    return (Strong("Reminder"), ": ", *where, "; waiting for ", *waiting_line(tally), ".")


def escalation_line(responders: Sequence[str]) -> Line:
    """An escalation level reached, in a copy's thread: who may answer now."""
    return (Strong("Escalated"), ": ", *mentions(responders), " may answer this too now.")


def handover_line(delegation: Delegation) -> Line:
    """A hand-over, in a copy's thread, mentioning the delegate (an id the person picked, checked)."""
    by, to = delegation.delegator, delegation.delegate
    note: Line = (" Their note: ", Said(delegation.note)) if delegation.note else ()
    return (Who(by.label, by), " handed this to ", Mention(f"{to.platform}:{to.user_id}"), ".", *note)

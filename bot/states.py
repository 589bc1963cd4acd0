"""The states of an event and what each says to people: the one place those words are written.

`words` holds, per state, every sentence a surface shows about it (a label, a page's headline, the
status line a chat copy shows in place of its controls, a notification's summary, what someone who
answers too late is told, ...). A sentence is a `Line`: our own words with typed parts in them
(who, when, the answer, a reason) that each surface renders its own way: Slack mentions a Slack
user and writes a time as a date token, every text surface escapes what people typed, Teams and
the web form show it literally. `text_of` is the line as text.

This module sits under `errors` (the refusals are its lines) and imports only the protocol and
`text`; `view` builds the whole view of an event on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .protocol import Responder, Response, format_time
from .text import via_name

__all__ = [
    "Answer",
    "Line",
    "Part",
    "Said",
    "State",
    "Strong",
    "When",
    "Who",
    "Words",
    "expired_refusal",
    "refusal",
    "state_of",
    "text_of",
    "words",
]


class State(StrEnum):
    """Where an event is: waiting, or ended one of four ways. Also a CSS class on the web pages."""

    PENDING = "pending"
    ANSWERED = "answered"
    CANCELLED = "cancelled"
    DEFAULTED = "defaulted"  # the deadline passed and its `on_timeout` default was applied
    EXPIRED = "expired"  # the deadline passed without an answer


def state_of(outcome: Response | None, *, expired: bool = False) -> State:
    """The state an outcome (or its absence, before or after the deadline) puts an event in."""
    if outcome is None:
        return State.EXPIRED if expired else State.PENDING
    if outcome.cancelled:
        return State.CANCELLED
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


Part = str | Strong | Who | When | Answer | Said  # a str is our own words
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


def words(state: State, outcome: Response | None, deadline: When, answer: str = "") -> Words:
    """What `state` says, given its `outcome`, the event's `deadline` and the `answer` in one line.

    A new state is one more case here (and one in `view.event_view` if it changes what people can do).
    """
    if state is State.PENDING:
        return Words(label="Waiting for you")
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
    return Words(
        label="Answered",
        headline="Already answered",
        summary=("answered ", Answer(answer), " by ", who, " at ", when),
        refusal=("Already answered by ", who, " at ", when, "."),
        message=(who, " answered ", Answer(answer), " at ", when, " via ", via, "."),
        receipt=(Answer(answer), " by ", who, " at ", when, " via ", via),
        facts=(("Answered by", (who,)), ("When", (when,)), ("Via", (via,))),
    )


def refusal(outcome: Response) -> str:
    """What someone who answers an event that has `outcome` is told (a default is applied at the deadline)."""
    return text_of(words(state_of(outcome), outcome, When.of(outcome)).refusal)


def expired_refusal(deadline_text: str) -> str:
    """What someone who answers after the deadline is told, when no outcome was written."""
    return text_of(words(State.EXPIRED, None, When(deadline_text)).refusal)

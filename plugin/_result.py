"""`EventResult`: an answer with who gave it, when and where (Planar's `HumanTaskResult`, plus audit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from hitl_chatops.bot.protocol import LogEntry, Responder, Vote

__all__ = ["EventResult"]

T = TypeVar("T")


@dataclass(frozen=True)
class EventResult(Generic[T]):
    """What `event.result()` and a `Human` step return.

    `completed_by` is the responder as the answering surface knows them (`platform`, `user_id`,
    `user_name`); None for the `on_timeout` default (`via == "timeout"`) and for answers written
    by stock flyteplugins-hitl code. For a team decision, the person whose vote decided it.

    `votes` are the votes a team decision counted (each a `hitl.Vote`: `voter`, `vote` "approve" or
    "reject", `value`, `reason`, `at`, `via`; a proposal is its proposer's approval with the value); ()
    for a simple event. `history` is everything logged about the decision, oldest first: votes,
    proposals (`hitl.Proposal`), rejected ones with their rejection, hand-overs (`hitl.Delegation`),
    reminders and escalations (`hitl.Nudge`).
    """

    output: T
    request_id: str
    completed_by: Responder | None
    completed_at: datetime | None
    via: str | None
    votes: tuple[Vote, ...] = ()
    history: tuple[LogEntry, ...] = ()

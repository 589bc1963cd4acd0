"""Each person's inbox: the open events waiting for them, most urgent first, the same on every surface.

`by_urgency` is the one ordering of a person's list (Slack's App Home, Teams' personal **pending**):
the nearest deadline first, then the newest. `HitlService.inbox` reads the store and returns an
`Inbox`; this module only orders and holds what it found, so it reads nothing itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .decision import Tally
from .protocol import Request, Responder
from .view import EventView

__all__ = ["Inbox", "by_urgency", "waits_for"]


def by_urgency(requests: Iterable[Request]) -> list[Request]:
    """Most urgent first: the nearest deadline, then (same deadline) the newest."""
    return sorted(requests, key=lambda r: (r.deadline, -r.created_at.timestamp()))


def waits_for(tally: Tally, person: Responder) -> bool:
    """Whether a team decision under way still waits for `person`: not decided, and they neither
    approved in this round (a proposal is its proposer's approval) nor handed their place on."""
    return tally.decided is None and tally.vote_of(person) is None and tally.delegation_by(person) is None


@dataclass(frozen=True)
class Inbox:
    """What waits for one person: the most urgent events as views (a team decision's with its votes so
    far), and how many wait in all.

    `total` counts every event the person may answer; among team decisions it counts only the ones
    read (those shown, and those left out because the person voted) exactly: the others, which would
    each cost a listing of their log, are counted as waiting.
    """

    shown: tuple[EventView, ...]
    total: int

    @property
    def more(self) -> int:
        """How many wait beyond those shown."""
        return self.total - len(self.shown)

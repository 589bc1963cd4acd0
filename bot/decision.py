"""A team decision, evaluated: from an event's request and its decision log to its state at a moment.

Pure: no storage, no platform, no clock of its own. The service and the reconciler read the log
(`Store.decision_log`) and the time, check each person when they act (their groups are read then,
and what they could fill is written into their vote), and ask here what the log decides. Every
replica evaluates the same log to the same state, so whichever of them completes the rules writes
the decision, and a replica that died between a vote and the decision is completed by the next
reader.

The rules (docs/protocol.md, "Team decisions"):

- An *approval* event (a bool, or an "approve, with a reason" answer) has one round: each eligible
  Approve counts once per person; the first eligible Reject ends the event as rejected (a veto).
- A *value* event goes in rounds: a round's first answer is its proposal (its proposer's
  approval), others confirm it (an Approve in that round), and a Reject ends the round: the next
  round takes a new proposal.
- The rules are met when `needed` distinct people approved in the round and every rule of the
  request has its count from people who could fill it, each person filling one rule only (a
  matching of people to rule slots).
- Votes are taken in the order they were cast (`at`, then the person's key); the first vote that
  meets the rules, or rejects, decides. Votes of anyone who handed their place on, or of a
  requester named by chat identity, never count (the service refuses them; this is the net).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .protocol import Delegation, Nudge, Proposal, Request, Responder, Vote, log_name, person_key

__all__ = [
    "Decided",
    "Entry",
    "Lists",
    "Rejected",
    "RuleProgress",
    "Tally",
    "due_escalations",
    "due_reminder",
    "evaluate",
    "lists_at",
    "next_due",
    "reached",
]

Entry = Vote | Proposal | Delegation | Nudge


@dataclass(frozen=True)
class RuleProgress:
    """One rule of the request and who fills it (as the matching assigned them)."""

    index: int
    name: str | None
    responders: tuple[str, ...]
    needed: int
    met_by: tuple[Responder, ...]

    @property
    def met(self) -> bool:
        return len(self.met_by) >= self.needed

    @property
    def label(self) -> str:
        return self.name or f"rule {self.index + 1}"


@dataclass(frozen=True)
class Decided:
    """What the log decides: `approved` (the rules met) or not (a veto), with the value to write.

    `by` is the vote that decided (a proposal that decides alone: its proposer's approval); `votes`
    every vote of the round counted up to it, and later approvals that agree.
    """

    approved: bool
    value: Any
    by: Vote
    votes: tuple[Vote, ...]

    @property
    def reason(self) -> str | None:
        return None if self.approved else self.by.reason


@dataclass(frozen=True)
class Rejected:
    """An earlier round of a value event: its proposal and the Reject that ended it."""

    proposal: Proposal
    rejection: Vote


@dataclass(frozen=True)
class Tally:
    """A team decision's state: the round under way, who approved, what is proposed, who is waiting.

    `approvals` are the round's counted approvals, oldest first (a proposal counts as its
    proposer's); `waiting` the `responders`-style entries (users and groups) who may still act, or
    empty with `anyone`; `log` every entry, oldest first (the history).
    """

    approval: bool
    round: int
    needed: int
    approvals: tuple[Vote, ...]
    proposal: Proposal | None
    rules: tuple[RuleProgress, ...]
    decided: Decided | None
    rejected: tuple[Rejected, ...]
    delegations: tuple[Delegation, ...]
    nudges: tuple[Nudge, ...]
    waiting: tuple[str, ...]
    anyone: bool
    log: tuple[Entry, ...]

    @property
    def approved(self) -> int:
        return len(self.approvals)

    def vote_of(self, person: Responder) -> Vote | None:
        """`person`'s counted vote in the current round (a proposal as their approval)."""
        key = person_key(person)
        return next((v for v in self.approvals if person_key(v.voter) == key), None)

    def delegation_by(self, person: Responder) -> Delegation | None:
        key = person_key(person)
        return next((d for d in self.delegations if person_key(d.delegator) == key), None)

    def inherited(self, person: Responder) -> frozenset[int]:
        """The rules `person` may fill in the place of those who handed theirs to them."""
        key = person_key(person)
        return frozenset(i for d in self.delegations if person_key(d.delegate) == key for i in d.counts_for)

    def delegated_to(self, person: Responder) -> bool:
        key = person_key(person)
        return any(person_key(d.delegate) == key for d in self.delegations)

    @property
    def changes(self) -> str:
        """What a copy shows of the log, in one string: changes when a vote, a proposal, a delegation
        or an escalation is added (a reminder alone changes nothing a copy must show again)."""
        return " ".join(sorted(log_name(entry) for entry in self.log if not _reminder(entry)))


@dataclass(frozen=True)
class Lists:
    """Who may answer at a moment, as lists of `responders` entries: `general` (the event's own
    `responders` and the escalation levels reached) and each rule's. `anyone`: no list restricts."""

    general: tuple[str, ...]
    rules: tuple[tuple[str, ...], ...]
    anyone: bool


def reached(request: Request, now: datetime) -> list[int]:
    """The escalation levels whose `after` has passed at `now` (eligibility is derived from the time)."""
    return [i for i, level in enumerate(request.escalate) if request.created_at + _s(level.after) <= now]


def lists_at(request: Request, now: datetime) -> Lists:
    """The lists a person is checked against at `now`. With rules, an empty `responders` adds nobody:
    only the rules' people (and escalation levels reached, and delegates) may answer."""
    levels = [e for i in reached(request, now) for e in request.escalate[i].responders]
    anyone = not request.rules and (not request.responders or "*" in request.responders)
    return Lists(
        general=tuple(dict.fromkeys([*request.responders, *levels])),
        rules=tuple(tuple(rule.responders) for rule in request.rules),
        anyone=anyone,
    )


def evaluate(request: Request, log: Iterable[Entry], *, approval: bool, now: datetime) -> Tally:
    """The state of `request`'s decision given its `log` (any order), at `now` (for the waiting list).

    `approval`: the event is answered with Approve/Reject (`answers.approval_field`), so a Reject is
    a veto; otherwise values are proposed and confirmed in rounds.
    """
    entries = tuple(sorted(log, key=_order))
    delegations = tuple(e for e in entries if isinstance(e, Delegation))
    nudges = tuple(e for e in entries if isinstance(e, Nudge))
    counted = _Counter(request, delegations)
    if approval:
        state = _approval_round(counted, [e for e in entries if isinstance(e, Vote) and e.round == 1])
    else:
        state = _value_rounds(counted, entries)
    approvals, decided = state.approvals, state.decided
    rules = counted.progress(approvals)
    waiting, anyone = _waiting(request, now, rules, approvals, delegations, decided is not None)
    return Tally(
        approval=approval,
        round=state.round,
        needed=counted.needed,
        approvals=approvals,
        proposal=state.proposal,
        rules=rules,
        decided=decided,
        rejected=state.rejected,
        delegations=delegations,
        nudges=nudges,
        waiting=waiting,
        anyone=anyone,
        log=entries,
    )


# -- reminders and escalations: due times from the request and the log --------------------------


def due_reminder(request: Request, log: Iterable[Entry], now: datetime) -> int | None:
    """The reminder to send at `now` (its number, from 1), if one is due and none at or after it was
    sent: missed ones are not sent late (one nudge, not a burst after an outage). None past the deadline."""
    if request.remind_every is None or now >= request.deadline:
        return None
    k = math.floor((now - request.created_at).total_seconds() / request.remind_every)
    sent = [e.index for e in log if isinstance(e, Nudge) and e.kind == "reminder"]
    return k if k >= 1 and not any(i >= k for i in sent) else None


def due_escalations(request: Request, log: Iterable[Entry], now: datetime) -> list[int]:
    """The escalation levels reached by `now` and not yet recorded (none past the deadline)."""
    if now >= request.deadline:
        return []
    done = {e.index for e in log if isinstance(e, Nudge) and e.kind == "escalation"}
    return [i for i in reached(request, now) if i not in done]


def next_due(request: Request, now: datetime) -> datetime:
    """When the event next needs a look although nothing changed: the next reminder, the next escalation
    level, or the deadline (the reconciler sleeps on it until then)."""
    due = [request.deadline]
    if request.remind_every is not None:
        every = request.remind_every
        k = math.floor((now - request.created_at).total_seconds() / every) + 1
        due.append(request.created_at + _s(k * every))
    due += [t for level in request.escalate if (t := request.created_at + _s(level.after)) > now]
    return min(due)


# -- counting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    round: int
    approvals: tuple[Vote, ...]
    proposal: Proposal | None
    decided: Decided | None
    rejected: tuple[Rejected, ...] = ()


class _Counter:
    """Who counts, and whether a set of approvals meets the rules."""

    def __init__(self, request: Request, delegations: Sequence[Delegation]) -> None:
        self.request = request
        self.needed = max(request.approvals, sum(rule.approvals for rule in request.rules))
        self._delegators = {person_key(d.delegator) for d in delegations}
        self._inherited: dict[str, set[int]] = {}
        for d in delegations:
            self._inherited.setdefault(person_key(d.delegate), set()).update(d.counts_for)
        self._slots = [i for i, rule in enumerate(request.rules) for _ in range(rule.approvals)]

    def counts(self, vote: Vote) -> bool:
        """Whether the vote's person may count at all (not a delegator, not the requester by identity)."""
        voter = vote.voter
        return person_key(voter) not in self._delegators and f"{voter.platform}:{voter.user_id}" != (
            self.request.requester or ""
        )

    def fills(self, vote: Vote) -> set[int]:
        return set(vote.counts_for) | self._inherited.get(person_key(vote.voter), set())

    def met(self, approvals: Sequence[Vote]) -> bool:
        if len(approvals) < self.needed:
            return False
        return len(self._match(approvals)) == len(self._slots)

    def progress(self, approvals: Sequence[Vote]) -> tuple[RuleProgress, ...]:
        matched = self._match(approvals)
        return tuple(
            RuleProgress(
                index=i,
                name=rule.name,
                responders=tuple(rule.responders),
                needed=rule.approvals,
                met_by=tuple(approvals[p].voter for s, p in sorted(matched.items()) if self._slots[s] == i),
            )
            for i, rule in enumerate(self.request.rules)
        )

    def _match(self, approvals: Sequence[Vote]) -> dict[int, int]:
        """A maximum matching of rule slots to approvers (slot -> approver index), by augmenting paths:
        one person fills one slot, of a rule they could fill. Sizes are small (50 slots at most)."""
        fills = [self.fills(vote) for vote in approvals]
        owner: dict[int, int] = {}  # approver -> slot
        slot_of: dict[int, int] = {}  # slot -> approver

        def augment(slot: int, seen: set[int]) -> bool:
            for person, can in enumerate(fills):
                if self._slots[slot] not in can or person in seen:
                    continue
                seen.add(person)
                if person not in owner or augment(owner[person], seen):
                    owner[person], slot_of[slot] = slot, person
                    return True
            return False

        for slot in range(len(self._slots)):
            augment(slot, set())
        return slot_of


def _approval_round(counter: _Counter, votes: Sequence[Vote]) -> _State:
    """An Approve/Reject event: approvals count until the rules are met; the first Reject is a veto."""
    approvals: list[Vote] = []
    seen: set[str] = set()
    for vote in votes:
        if not counter.counts(vote) or person_key(vote.voter) in seen:
            continue
        seen.add(person_key(vote.voter))
        if vote.vote == "reject":
            return _State(1, tuple(approvals), None, Decided(False, vote.value, vote, (*approvals, vote)))
        approvals.append(vote)
        if counter.met(approvals):
            later = _agreeing(counter, votes, seen)
            return _State(1, tuple(approvals), None, Decided(True, vote.value, vote, (*approvals, *later)))
    return _State(1, tuple(approvals), None, None)


def _value_rounds(counter: _Counter, entries: Sequence[Entry]) -> _State:
    """A value event: round by round, a proposal and its confirmations, until one is met or none is open."""
    proposals = {e.round: e for e in entries if isinstance(e, Proposal)}
    rejected: list[Rejected] = []
    round_ = 1
    while (proposal := proposals.get(round_)) is not None:
        votes = [e for e in entries if isinstance(e, Vote) and e.round == round_]
        first = _as_vote(proposal)
        approvals = [first] if counter.counts(first) else []
        seen = {person_key(proposal.proposer)}
        if approvals and counter.met(approvals):
            later = _agreeing(counter, votes, seen)
            decided = Decided(True, proposal.value, first, (first, *later))
            return _State(round_, tuple(approvals), proposal, decided, tuple(rejected))
        ended = None
        for vote in votes:
            if not counter.counts(vote) or person_key(vote.voter) in seen:
                continue
            seen.add(person_key(vote.voter))
            if vote.vote == "reject":
                ended = vote
                break
            approvals.append(vote)
            if counter.met(approvals):
                later = _agreeing(counter, votes, seen)
                decided = Decided(True, proposal.value, vote, (*approvals, *later))
                return _State(round_, tuple(approvals), proposal, decided, tuple(rejected))
        if ended is None:
            return _State(round_, tuple(approvals), proposal, None, tuple(rejected))
        rejected.append(Rejected(proposal, ended))
        round_ += 1
    return _State(round_, (), None, None, tuple(rejected))


def _agreeing(counter: _Counter, votes: Sequence[Vote], seen: set[str]) -> list[Vote]:
    """Approvals after the deciding one, from people not counted yet: they agree, so they are listed too."""
    later = []
    for vote in votes:
        if vote.vote == "approve" and counter.counts(vote) and person_key(vote.voter) not in seen:
            seen.add(person_key(vote.voter))
            later.append(vote)
    return later


def _as_vote(proposal: Proposal) -> Vote:
    """A proposal as its proposer's approval."""
    return Vote(
        voter=proposal.proposer,
        round=proposal.round,
        vote="approve",
        value=proposal.value,
        counts_for=proposal.counts_for,
        at=proposal.at,
        via=proposal.via,
    )


def _waiting(
    request: Request,
    now: datetime,
    rules: Sequence[RuleProgress],
    approvals: Sequence[Vote],
    delegations: Sequence[Delegation],
    decided: bool,
) -> tuple[tuple[str, ...], bool]:
    """Who may still act: the unmet rules' people (all the lists once every rule is met), the escalation
    levels reached and the delegates, without the people named by id who approved, handed over or asked."""
    if decided:
        return (), False
    lists = lists_at(request, now)
    unmet = [e for rule in rules if not rule.met for e in rule.responders]
    entries = unmet or [*lists.general, *(e for rule in lists.rules for e in rule)]
    if unmet:
        entries += [e for i in reached(request, now) for e in request.escalate[i].responders]
    entries += [f"{d.delegate.platform}:{d.delegate.user_id}" for d in delegations]
    done = {f"{v.voter.platform}:{v.voter.user_id}" for v in approvals}
    done |= {f"{d.delegator.platform}:{d.delegator.user_id}" for d in delegations}
    done |= {request.requester} if request.requester else set()
    kept = [e for e in dict.fromkeys(entries) if e != "*" and not _names_one_of(e, done)]
    return tuple(kept), lists.anyone and not unmet


def _names_one_of(entry: str, people: set[str]) -> bool:
    """Whether a `responders` entry names one of `people` (`platform:user id`), with or without its prefix."""
    return entry in people or any(person.split(":", 1)[1] == entry for person in people if ":" in person)


def _order(entry: Entry) -> tuple[datetime, int, str]:
    """Cast order: time, then proposals before the votes of their round, then the person's key."""
    return entry.at, 0 if isinstance(entry, Proposal) else 1, log_name(entry)


def _reminder(entry: Entry) -> bool:
    return isinstance(entry, Nudge) and entry.kind == "reminder"


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)

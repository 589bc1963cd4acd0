"""Team decisions, carried out: who may act, their vote (or proposal, or hand-over) written to the
event's decision log, and the decision written once the log meets the rules; reminders and
escalations for the reconciler.

The answer path of a team event (docs/protocol.md, "Team decisions"): list the event's folder and
read the log objects this replica has not seen (`Delivery.decision`); refuse, saying why, anyone who
may not act now; create the vote exclusively (one per person per round, whatever the replica);
rewrite the pending marker, so every replica's reconciler reads the event again; list and evaluate
again, so of several people voting at once at least one sees every vote; and if the rules are met,
write the decision (`response.json`, exclusive: cancel, expiry and the default race it as for any
answer) with the votes it counted. What the rules say is `decision`'s, evaluated the same way by
every replica, so a replica that died after a vote is completed by the next reader.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .answers import answer_text, schema_of
from .decision import Tally, due_escalations, due_reminder, lists_at, next_due
from .delivery import Delivery
from .errors import AlreadyAnswered, AlreadyVoted, EventExpired, NotAllowed, StoreError
from .metrics import Metrics
from .people import People
from .protocol import (
    Delegation,
    LogEntry,
    Nudge,
    Proposal,
    Request,
    Responder,
    Response,
    Via,
    Vote,
    format_time,
    log_name,
    person_key,
    utcnow,
)
from .states import Line, acted, escalation_line, handover_line, reminder_line
from .store import DecisionLog, Store
from .view import EventView, event_view

log = logging.getLogger(__name__)

__all__ = ["NO_IDENTITY", "REQUESTER", "TeamDecisions", "Verdict"]

NO_IDENTITY = (
    "This event is a team decision, which counts each person once, so it is answered by name: in chat "
    "(which gives you a form link of your own when it cannot ask you there) or through the API, naming "
    "the person; not with a shared form link."
)
REQUESTER = "You asked for this decision, so someone else must approve it."


@dataclass(frozen=True)
class Verdict:
    """What an answer did: the event's outcome if it has one now (this answer's, or the decision it
    completed), and for a team decision the state it left and what it wrote to the log."""

    request: Request
    outcome: Response | None
    tally: Tally | None = None
    entry: LogEntry | None = None

    @property
    def decided(self) -> bool:
        return self.outcome is not None

    @property
    def view(self) -> EventView:
        """The event as the person who answered sees it now (ended, or the decision under way)."""
        return event_view(self.request, self.outcome, tally=self.tally)

    @property
    def note(self) -> Line:
        """What to tell that person: their answer saved (and what it decided), or counted and how far."""
        if self.outcome is not None:
            words = self.view.words
            return ("Decided: " if self.tally else "Saved: ", *(words.receipt or words.summary), ".")
        assert self.tally is not None and self.entry is not None
        schema = schema_of(self.request)
        return acted(self.tally, self.entry, lambda value: answer_text(schema, value))


class TeamDecisions:
    """The team-decision side of `HitlService` (one per bot); the reconciler calls `tend`."""

    def __init__(self, store: Store, delivery: Delivery, metrics: Metrics, people: People) -> None:
        self.store = store
        self.delivery = delivery
        self.metrics = metrics
        self.people = people

    # -- acting -----------------------------------------------------------------------------

    async def vote(
        self,
        request: Request,
        person: Responder,
        via: Via,
        *,
        approve: bool,
        value: Any = None,
        reason: str | None = None,
        round_: int | None = None,
    ) -> Verdict:
        """Approve or Reject: an Approve/Reject event's vote (a Reject is a veto), or a value event's
        Confirm / Reject of the current proposal (`round_`: the one the person saw)."""
        tally = await self._open(request, person)
        if not tally.approval:
            _check_proposal(request, tally, person, approve=approve, round_=round_)
            value = tally.proposal.value if approve and tally.proposal else None
        self._not_twice(request, tally, person)
        counts = await self.qualifies(request, tally, person)
        vote = Vote(
            voter=person,
            round=tally.round,
            vote="approve" if approve else "reject",
            value=value,
            reason=reason or None,
            counts_for=counts,
            at=utcnow(),
            via=via,
        )
        return await self._write(request, vote)

    async def propose(self, request: Request, person: Responder, via: Via, value: Any) -> Verdict:
        """Open the round with a value (checked by the caller), which counts as the proposer's approval."""
        tally = await self._open(request, person)
        if tally.approval:
            raise NotAllowed("This event is answered with Approve or Reject, not with a proposed value.")
        if tally.proposal is not None:
            raise AlreadyVoted(_proposed_already(request, tally.proposal))
        counts = await self.qualifies(request, tally, person)
        proposal = Proposal(proposer=person, round=tally.round, value=value, counts_for=counts, at=utcnow(), via=via)
        return await self._write(request, proposal)

    async def delegate(
        self, request: Request, person: Responder, to: Responder, via: Via, note: str | None = None
    ) -> Verdict:
        """Hand `person`'s place to `to`: the delegate may answer in their place (the rules they could
        fill included); `person` may no longer answer. Mentioned in every copy's thread."""
        tally = await self._open(request, person)
        if not to.user_id or to.platform == "web":
            raise NotAllowed("Choose a person in chat to hand this to.")
        if person_key(to) == person_key(person):
            raise NotAllowed("Choose someone else to hand this to.")
        if (mine := tally.vote_of(person)) is not None:
            raise AlreadyVoted(f"{_already(mine)} Your vote stands, so there is nothing to hand over.")
        if tally.delegation_by(to) is not None:
            raise NotAllowed(f"{to.label} handed their own place on; choose someone else.")
        if await self.people.asked(request.requester, to):
            raise NotAllowed(f"{to.label} asked for this decision, so they cannot approve it; choose someone else.")
        if request.policy_responders and not await self.people.listed(request.policy_responders, to):
            raise NotAllowed(
                f"Only {_joined(request.policy_responders)} may answer this event (the policy file's rule)."
            )
        counts = await self.qualifies(request, tally, person)
        delegation = Delegation(
            delegator=person, delegate=to, note=note or None, counts_for=counts, at=utcnow(), via=via
        )
        verdict = await self._write(request, delegation)
        if not verdict.decided:
            self.delivery.background.spawn(self.delivery.remind(request, handover_line(delegation)))
        return verdict

    async def check(self, request: Request, person: Responder) -> None:
        """Raise what `vote` or `propose` would before anything is typed (expired, decided, not allowed)."""
        tally = await self._open(request, person)
        self._not_twice(request, tally, person)
        await self.qualifies(request, tally, person)

    async def qualifies(self, request: Request, tally: Tally, person: Responder) -> list[int]:
        """The rules `person` may fill now (their own lists, and those handed to them); raises `NotAllowed`
        saying who may answer when no list names them (escalation levels reached count)."""
        lists = lists_at(request, utcnow())
        general = lists.anyone or (bool(lists.general) and await self.people.listed(lists.general, person))
        rules = {i for i, entries in enumerate(lists.rules) if await self.people.listed(entries, person)}
        if not (general or rules or tally.delegated_to(person)):
            everyone = [*lists.general, *(e for entries in lists.rules for e in entries)]
            raise NotAllowed(f"Only {_joined(everyone)} may answer this event.")
        if request.policy_responders and not await self.people.listed(request.policy_responders, person):
            raise NotAllowed(
                f"Only {_joined(request.policy_responders)} may answer this event (the policy file's rule)."
            )
        return sorted(rules | tally.inherited(person))

    # -- deciding -----------------------------------------------------------------------------

    async def decide(self, request: Request, tally: Tally) -> Response:
        """Write what the log decides (`tally.decided`), exclusively; the outcome that stands, which is
        the first one written (another replica's decision, a cancel, the expiry's default)."""
        decided = tally.decided
        assert decided is not None
        response = Response(
            value=decided.value,
            request_id=request.request_id,
            data_type=request.data_type,
            responder=decided.by.voter,
            responded_at=utcnow(),
            via=decided.by.via,
            reason=decided.reason,
            votes=list(decided.votes),
        )
        try:
            await self.store.create_response(response)
        except AlreadyAnswered as first:
            return first.response
        log.info(
            "event decided",
            extra={
                "request_id": request.request_id,
                "event": request.event_name,
                "via": response.via,
                "outcome": "approved" if decided.approved else "rejected",
                "votes": len(decided.votes),
            },
        )
        self.metrics.answered.labels(response.via or "api").inc()
        self.metrics.answer_latency.observe(utcnow().timestamp() - request.created_at.timestamp())
        self.delivery.answered(request, response)
        return response

    async def decided_now(self, request: Request) -> bool:
        """Write the decision if the log meets the rules already (a replica died after a vote); whether
        the event has its outcome now. The expiry asks first: votes cast in time win over the deadline."""
        log_, tally = await self.delivery.decision(request)
        if log_.answered:
            return True
        if tally.decided is None:
            return False
        await self.decide(request, tally)
        return True

    # -- the reconciler -----------------------------------------------------------------------

    async def tend(self, request: Request) -> datetime:
        """An open event the reconciler reads (its marker changed, or something fell due): decide it
        if its log meets the rules, reach escalation levels, send the reminder due (each once across
        replicas, recorded in the log), re-render copies that do not show the log yet; when it next
        needs a look if nothing changes."""
        now = utcnow()
        found, tally = await self.delivery.decision(request)
        if found.answered:
            return request.deadline
        if request.team_event and tally.decided is not None:
            await self.decide(request, tally)
            return request.deadline
        escalated = await self._escalate(request, found, now)
        reminded = False
        if (k := due_reminder(request, found.entries, now)) is not None:
            reminder = Nudge(kind="reminder", index=k, at=now, waiting=list(tally.waiting))
            if reminded := await self.store.add_to_log(request.request_id, reminder):
                sent = await self.delivery.remind(request, reminder_line(tally, team=request.team_event))
                log.info("reminder sent", extra={"request_id": request.request_id, "reminder": k, "copies": sent})
        # A team decision's copies show its reminders too ("Reminded twice, last at ..."): one re-render
        # per reminder, by the replica that sent it.
        if escalated or (reminded and request.team_event) or self._behind(request, tally):
            self.delivery.progressed(request)
        return next_due(request, now)

    def _behind(self, request: Request, tally: Tally) -> bool:
        """Whether this replica's copies of the event show less of its log than there is."""
        return bool(tally.changes) and self.delivery.rendered(request.request_id) != tally.changes

    async def _escalate(self, request: Request, found: DecisionLog, now: datetime) -> bool:
        """Record each level reached (its channels are posted by `Delivery.post`, as the reconciler does
        before this) and say in every thread who may answer now; whether any level was reached here."""
        reached_here = False
        for i in due_escalations(request, found.entries, now):
            level = request.escalate[i]
            record = Nudge(kind="escalation", index=i, at=now, waiting=list(level.responders), channels=level.channels)
            if not await self.store.add_to_log(request.request_id, record):
                continue
            reached_here = True
            log.info("event escalated", extra={"request_id": request.request_id, "level": i})
            if level.responders:
                await self.delivery.remind(request, escalation_line(level.responders))
        return reached_here

    # -- the steps every action shares ----------------------------------------------------------

    async def _open(self, request: Request, person: Responder) -> Tally:
        """The decision as the log has it, if `person` may act on it now: refuses the web form (no
        identity), the deadline, an event decided (writing the decision if the log meets the rules but
        nobody wrote it), someone who handed their place on, and the requester."""
        if person.platform == "web" or not person.user_id:
            raise NotAllowed(NO_IDENTITY)
        if request.expired():
            raise EventExpired(format_time(request.deadline))
        found, tally = await self.delivery.decision(request)
        if found.answered and (written := await self.store.get_response(request.request_id)):
            raise AlreadyAnswered.of(written)
        if tally.decided is not None:
            raise AlreadyAnswered.of(await self.decide(request, tally))
        if (handed := tally.delegation_by(person)) is not None:
            raise NotAllowed(f"You handed this to {handed.delegate.label}, so they answer it now.")
        if await self.people.asked(request.requester, person):
            raise NotAllowed(REQUESTER)
        return tally

    def _not_twice(self, request: Request, tally: Tally, person: Responder) -> None:
        if (mine := tally.vote_of(person)) is not None:
            raise AlreadyVoted(_already(mine, request, tally))

    async def _write(self, request: Request, entry: LogEntry) -> Verdict:
        """Create `entry` exclusively, tell the other replicas, then evaluate the log again and decide if
        it is complete. A person whose entry the decision counted is told what it decided; one whose
        entry came after it, that it was decided already."""
        if not await self.store.add_to_log(request.request_id, entry):
            raise AlreadyVoted(await self._taken(request, entry))
        try:
            await self.store.touch_pending(request)
        except StoreError:  # the entry stands; the next vote, reminder or the deadline has it read
            log.warning("pending marker not rewritten", extra={"request_id": request.request_id})
        found, tally = await self.delivery.decision(request)
        outcome = None
        if found.answered:
            outcome = await self.store.get_response(request.request_id)
        elif request.team_event and tally.decided is not None:
            outcome = await self.decide(request, tally)
        if outcome is not None:
            if not _counted(outcome, entry):
                raise AlreadyAnswered.of(outcome)
            return Verdict(request, outcome, tally, entry)
        self.delivery.progressed(request)
        return Verdict(request, None, tally, entry)

    async def _taken(self, request: Request, entry: LogEntry) -> str:
        """Why an exclusive create found its object there: the same person a moment before (another
        click, another replica), or another proposal first."""
        with contextlib.suppress(StoreError):
            first = await self.store.log_entry(request.request_id, log_name(entry))
            if isinstance(first, Proposal):
                return _proposed_already(request, first)
            if isinstance(first, Vote):
                return _already(first)
            if isinstance(first, Delegation):
                return f"You handed this to {first.delegate.label} already."
        return "You already answered this."


def _check_proposal(request: Request, tally: Tally, person: Responder, *, approve: bool, round_: int | None) -> None:
    """A Confirm or Reject of a value event needs the proposal the person saw, and not their own Confirm."""
    proposal = tally.proposal
    if proposal is None:
        action = "confirm" if approve else "reject"
        raise NotAllowed(f"Nothing is proposed just now, so there is nothing to {action}: propose a value instead.")
    if round_ is not None and round_ != tally.round:
        shown = answer_text(schema_of(request), proposal.value)
        raise NotAllowed(f"That proposal was rejected; the one to answer now is {shown} by {proposal.proposer.label}.")
    if approve and person_key(proposal.proposer) == person_key(person):
        raise AlreadyVoted("You proposed this value, which counts as your approval; others confirm it.")


def _already(vote: Vote, request: Request | None = None, tally: Tally | None = None) -> str:
    if (
        tally is not None
        and tally.proposal is not None
        and person_key(tally.proposal.proposer) == person_key(vote.voter)
    ):
        return "You proposed this value, which counts as your approval; others confirm it."
    what = "approved" if vote.vote == "approve" else "rejected"
    return f"You already {what} this at {format_time(vote.at)}."


def _proposed_already(request: Request, proposal: Proposal) -> str:
    shown = answer_text(schema_of(request), proposal.value)
    return (
        f"{proposal.proposer.label} proposed {shown} at {format_time(proposal.at)}: confirm it, or reject it "
        "(saying why) to propose another value."
    )


def _counted(outcome: Response, entry: LogEntry) -> bool:
    """Whether the decision `outcome` counted what this person wrote (a hand-over completes it too)."""
    if isinstance(entry, Delegation):
        return bool(outcome.votes)
    person = entry.voter if isinstance(entry, Vote) else entry.proposer if isinstance(entry, Proposal) else None
    return person is not None and any(person_key(v.voter) == person_key(person) for v in outcome.votes or ())


def _joined(entries: list[str]) -> str:
    return ", ".join(dict.fromkeys(entries)) or "the people it names"

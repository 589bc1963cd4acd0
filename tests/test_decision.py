"""The team decision's rules, evaluated from a log: a table of rule sets against sequences of votes, and a
property: whatever the order and concurrency of votes, one decision at most, and it meets the rules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hitl_chatops.bot.decision import (
    Entry,
    Tally,
    due_escalations,
    due_reminder,
    evaluate,
    lists_at,
    next_due,
)
from hitl_chatops.bot.protocol import Delegation, Escalation, Nudge, Proposal, Request, Responder, Rule, Vote
from hitl_chatops.bot.store import Store
from tests.fakes.events import make_request

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
STORE = Store(Path("/tmp/hitl-decision-tests").as_uri())


def person(name: str) -> Responder:
    return Responder(platform="slack", user_id=f"U0{name.upper()}", user_name=name)


A, B, C, D, X, REQ = (person(n) for n in ("ann", "bob", "cat", "dan", "xi", "req"))


def request(**fields: Any) -> Request:
    return make_request(STORE, now=T0, timeout=3600, **fields)


def vote(who: Responder, minute: float, approve: bool = True, *, round_: int = 1, **fields: Any) -> Vote:
    return Vote(
        voter=who,
        round=round_,
        vote="approve" if approve else "reject",
        value=fields.pop("value", approve),
        at=T0 + timedelta(minutes=minute),
        via="slack",
        **fields,
    )


def proposal(who: Responder, minute: float, value: Any, round_: int = 1, **fields: Any) -> Proposal:
    return Proposal(proposer=who, round=round_, value=value, at=T0 + timedelta(minutes=minute), via="slack", **fields)


def tally(req: Request, log: list[Entry], *, approval: bool = True, minute: float = 30) -> Tally:
    return evaluate(req, log, approval=approval, now=T0 + timedelta(minutes=minute))


# -- the table -------------------------------------------------------------------------------


def test_distinct_people_approve_until_the_count_is_met() -> None:
    two = request(approvals=2)
    one = tally(two, [vote(A, 1)])
    assert (one.approved, one.needed, one.decided) == (1, 2, None)
    done = tally(two, [vote(B, 2), vote(A, 1)])  # any order in, cast order out
    assert done.decided is not None and done.decided.approved and done.decided.value is True
    assert done.decided.by.voter == B and [v.voter for v in done.decided.votes] == [A, B]


def test_one_person_counts_once_whatever_their_objects() -> None:
    two = request(approvals=2)
    again = tally(two, [vote(A, 1), vote(A, 2, reason="really")])
    assert again.approved == 1 and again.decided is None


def test_later_approvals_that_agree_are_listed_with_the_decision() -> None:
    done = tally(request(approvals=2), [vote(A, 1), vote(B, 2), vote(C, 3), vote(X, 4, approve=False)])
    assert done.decided is not None and done.decided.approved
    assert [v.voter for v in done.decided.votes] == [A, B, C], "a Reject after the decision is not part of it"


def test_one_person_in_two_groups_fills_one_rule_only() -> None:
    rules = [Rule(name="sre", responders=["S0SRE"]), Rule(name="security", responders=["S0SEC"])]
    four_eyes = request(rules=rules)
    both = vote(A, 1, counts_for=[0, 1])
    alone = tally(four_eyes, [both])
    assert alone.needed == 2 and alone.decided is None, "two rules need two people"
    assert [r.met for r in alone.rules].count(True) == 1
    assert tally(four_eyes, [both, vote(B, 2, counts_for=[1])]).decided is not None
    # A first took security; the matching moves A to SRE when only C can fill security
    moved = tally(four_eyes, [both, vote(C, 2, counts_for=[1])])
    assert moved.decided is not None
    assert {r.name: r.met_by for r in moved.rules} == {"sre": (A,), "security": (C,)}
    only_security = tally(four_eyes, [vote(B, 1, counts_for=[1]), vote(D, 2, counts_for=[1])])
    assert only_security.decided is None and only_security.waiting == ("S0SRE",)


def test_rules_and_a_larger_total() -> None:
    rules = [Rule(name="security", responders=["S0SEC"])]
    req = request(approvals=3, rules=rules, responders=["S0SRE"])
    no_security = tally(req, [vote(A, 1), vote(B, 2), vote(C, 3)])
    assert no_security.approved == 3 and no_security.decided is None
    assert tally(req, [vote(A, 1), vote(B, 2), vote(X, 3, counts_for=[0])]).decided is not None


def test_the_requester_named_by_identity_never_counts() -> None:
    req = request(approvals=2, requester="slack:U0REQ")
    assert tally(req, [vote(REQ, 1), vote(A, 2)]).decided is None
    assert "slack:U0REQ" not in tally(req, [vote(A, 1)], minute=3).waiting


def test_a_reject_is_a_veto_with_its_reason() -> None:
    req = request(approvals=3)
    vetoed = tally(req, [vote(A, 1), vote(X, 2, approve=False, reason="not on a Friday"), vote(B, 3)])
    decided = vetoed.decided
    assert decided is not None and not decided.approved and decided.value is False
    assert decided.by.voter == X and decided.reason == "not on a Friday"
    assert [v.voter for v in decided.votes] == [A, X], "votes after the veto are not part of it"


def test_a_proposal_rejected_with_a_reason_then_another_confirmed() -> None:
    req = request(data_type="int", approvals=2)
    log: list[Entry] = [proposal(A, 1, 40)]
    first = tally(req, log, approval=False)
    assert (first.round, first.approved, first.proposal is not None) == (1, 1, True)
    log.append(vote(B, 2, approve=False, value=None, reason="too many"))
    reopened = tally(req, log, approval=False)
    assert (reopened.round, reopened.proposal, reopened.approved) == (2, None, 0)
    assert [(r.proposal.value, r.rejection.reason) for r in reopened.rejected] == [(40, "too many")]
    log += [
        vote(C, 2.5, round_=1, value=40),
        proposal(B, 3, 30, round_=2),
    ]  # a late Confirm of round 1 counts for nothing
    proposed = tally(req, log, approval=False)
    assert (proposed.round, proposed.approved, proposed.decided) == (2, 1, None)
    log.append(vote(C, 4, round_=2, value=30))
    decided = tally(req, log, approval=False).decided
    assert decided is not None and decided.value == 30 and [v.voter for v in decided.votes] == [B, C]


def test_a_proposal_alone_decides_when_one_approval_is_asked() -> None:
    req = request(data_type="str", requester="dana@example.com")
    decided = tally(req, [proposal(A, 1, "v2")], approval=False).decided
    assert decided is not None and decided.value == "v2" and decided.by.voter == A


def test_a_delegate_takes_the_delegators_place_and_rules() -> None:
    rules = [Rule(name="security", responders=["S0SEC"])]
    req = request(approvals=2, rules=rules)
    handed = Delegation(delegator=A, delegate=D, counts_for=[0], at=T0 + timedelta(minutes=1), via="slack")
    state = tally(req, [handed, vote(A, 2, counts_for=[0]), vote(B, 3)])
    assert state.decided is None and state.approved == 1, "the delegator's vote does not count"
    assert state.delegation_by(A) == handed and state.delegated_to(D) and state.inherited(D) == {0}
    assert "slack:U0DAN" in state.waiting and "slack:U0ANN" not in state.waiting
    decided = tally(req, [handed, vote(B, 3), vote(D, 4)]).decided
    assert decided is not None and decided.approved, "the delegate fills security in A's place"


def test_who_is_waiting() -> None:
    rules = [Rule(name="security", responders=["S0SEC", "U0XI"])]
    req = request(approvals=2, responders=["U0ANN", "S0SRE"], rules=rules)
    assert tally(req, []).waiting == ("S0SEC", "U0XI")
    assert tally(req, [vote(X, 1, counts_for=[0])]).waiting == ("U0ANN", "S0SRE", "S0SEC")
    anyone = tally(request(approvals=2), [vote(A, 1)])
    assert anyone.anyone and anyone.waiting == ()
    assert tally(request(approvals=2), [vote(A, 1), vote(B, 2)]).waiting == ()


def test_escalation_levels_widen_the_lists_once_reached() -> None:
    req = request(
        approvals=2, responders=["S0SRE"], escalate=[Escalation(after=600, responders=["S0ONCALL"], channels=[])]
    )
    assert lists_at(req, T0 + timedelta(minutes=9)).general == ("S0SRE",)
    assert lists_at(req, T0 + timedelta(minutes=10)).general == ("S0SRE", "S0ONCALL")
    assert "S0ONCALL" in tally(req, [], minute=11).waiting
    assert due_escalations(req, [], T0 + timedelta(minutes=9)) == []
    assert due_escalations(req, [], T0 + timedelta(minutes=10)) == [0]
    done = Nudge(kind="escalation", index=0, at=T0 + timedelta(minutes=10))
    assert due_escalations(req, [done], T0 + timedelta(minutes=11)) == []
    assert due_escalations(req, [], T0 + timedelta(hours=2)) == [], "none past the deadline"


def test_reminders_fall_due_every_period_until_the_deadline() -> None:
    req = request(remind_every=1200.0)  # every 20 minutes, deadline at 60
    at = lambda minute: T0 + timedelta(minutes=minute)  # noqa: E731
    assert due_reminder(req, [], at(19)) is None
    assert due_reminder(req, [], at(20)) == 1
    sent = [Nudge(kind="reminder", index=1, at=at(20))]
    assert due_reminder(req, sent, at(39)) is None
    assert due_reminder(req, [], at(45)) == 2, "a missed one is not sent late: only the latest"
    assert due_reminder(req, [Nudge(kind="reminder", index=2, at=at(41))], at(45)) is None
    assert due_reminder(req, [], at(61)) is None, "none past the deadline"
    assert next_due(req, at(5)) == at(20) and next_due(req, at(20)) == at(40)
    assert next_due(req, at(41)) == req.deadline, "the third would fall at the deadline"
    plain = request()
    assert due_reminder(plain, [], at(30)) is None and next_due(plain, at(30)) == plain.deadline


def test_what_a_copy_shows_changes_with_votes_not_with_reminders() -> None:
    req = request(approvals=2)
    before = tally(req, [vote(A, 1)])
    reminded = tally(req, [vote(A, 1), Nudge(kind="reminder", index=1, at=T0 + timedelta(minutes=20))])
    assert before.changes == reminded.changes
    assert tally(req, [vote(A, 1), vote(B, 2)]).changes != before.changes


# -- the property ------------------------------------------------------------------------------

PEOPLE = [person(f"p{i}") for i in range(6)]


def meets(req: Request, approvers: list[Vote], delegations: list[Delegation]) -> bool:
    """The rules, checked by brute force: enough distinct people, and some one-to-one assignment of
    rule slots to people who could fill them."""
    people = list({v.voter.user_id: v for v in approvers}.values())
    needed = max(req.approvals, sum(r.approvals for r in req.rules))
    if len(people) < needed:
        return False
    inherited = {d.delegate.user_id: set(d.counts_for) for d in delegations}
    can = [set(v.counts_for) | inherited.get(v.voter.user_id, set()) for v in people]
    slots = [i for i, rule in enumerate(req.rules) for _ in range(rule.approvals)]
    return any(
        all(slots[s] in can[p] for s, p in enumerate(chosen))
        for chosen in itertools.permutations(range(len(people)), len(slots))
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Request, list[Vote], list[list[int]], list[int]]:
    """A request, one vote per person (approve or reject, what they could fill, a cast time that may
    disagree with the write order: clocks skew across replicas), and an interleaving of writes and
    reads: each voter reads (and tries to decide) at a moment after their own write."""
    rule_count = draw(st.integers(0, 2))
    rules = [Rule(responders=[f"S0G{i}"], approvals=draw(st.integers(1, 2))) for i in range(rule_count)]
    req = request(approvals=draw(st.integers(1, 4)), rules=rules)
    voters = draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=6, unique=True))
    votes = [
        vote(
            who,
            draw(st.floats(0, 10)),
            approve=draw(st.integers(0, 4)) > 0,  # mostly approvals, sometimes a veto
            counts_for=draw(st.lists(st.integers(0, rule_count - 1), unique=True)) if rule_count else [],
        )
        for who in voters
    ]
    order = draw(st.permutations(list(range(len(votes)))))
    reads = [draw(st.integers(pos, len(votes) - 1)) for pos in range(len(votes))]  # after its own write
    snapshots = [order[: reads[pos] + 1] for pos in range(len(votes))]
    return req, votes, snapshots, list(order)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_whatever_the_order_and_concurrency_at_most_one_decision_and_it_meets_the_rules(
    scenario: tuple[Request, list[Vote], list[list[int]], list[int]],
) -> None:
    req, votes, snapshots, _ = scenario
    written = None  # response.json: the first writer's decision stands
    for snapshot in snapshots:  # each voter's re-list after their own write
        decided = tally(req, [votes[i] for i in snapshot]).decided
        if decided is not None and written is None:
            written = decided
    final = tally(req, votes).decided
    assert (final is None) == (written is None), "the last reader sees every vote: the decision is made"
    if written is None:
        return
    if written.approved:
        assert all(v.vote == "approve" for v in written.votes)
        assert meets(req, [v for v in written.votes if v.vote == "approve"], [])
    else:
        assert written.by.vote == "reject" and sum(v.vote == "reject" for v in written.votes) == 1


@pytest.mark.parametrize("approvals", [1, 3])
def test_many_people_at_once_one_decision_with_every_vote_before_it(approvals: int) -> None:
    req = request(approvals=approvals)
    votes = [vote(PEOPLE[i % 6].model_copy(update={"user_id": f"U0P{i}"}), 1) for i in range(20)]
    decided = tally(req, votes).decided
    assert decided is not None and decided.approved and len(decided.votes) == 20

"""Each person's inbox in the core: one ordering (`by_urgency`), what waits for whom, and the count."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hitl_chatops.bot.inbox import by_urgency
from hitl_chatops.bot.protocol import Responder, Response, utcnow
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.store import Store
from tests.conftest import SECRET
from tests.fakes.events import make_request

ALICE = Responder(platform="api", user_id="alice")
BOB = Responder(platform="api", user_id="bob")


@pytest.fixture
def service(store_url: str) -> HitlService:
    return HitlService(Store(store_url), secret=SECRET, form_base_url="http://127.0.0.1:1")


def test_the_nearest_deadline_comes_first_then_the_newest(store_url: str) -> None:
    store, now = Store(store_url), utcnow()
    late = make_request(store, now=now, timeout=3600, event_name="late")
    soon_old = make_request(store, now=now - timedelta(minutes=5), timeout=600, event_name="soon_old")
    soon_new = make_request(store, now=now - timedelta(minutes=3), timeout=480, event_name="soon_new")  # same deadline
    sooner = make_request(store, now=now, timeout=60, event_name="sooner")
    ordered = by_urgency([late, soon_old, soon_new, sooner])
    assert [r.event_name for r in ordered] == ["sooner", "soon_new", "soon_old", "late"]


async def test_the_inbox_lists_what_waits_for_the_person_most_urgent_first(service: HitlService) -> None:
    store = service.store
    later = make_request(store, timeout=3600, event_name="later")
    sooner = make_request(store, timeout=600, event_name="sooner", responders=["api:alice"])
    bobs = make_request(store, timeout=60, event_name="bobs", responders=["api:bob"])
    for request in (later, sooner, bobs):
        await store.put_request(request)

    inbox = await service.inbox(ALICE, shown=5)
    assert [view.request.event_name for view in inbox.shown] == ["sooner", "later"]
    assert (inbox.total, inbox.more) == (2, 0)
    one = await service.inbox(ALICE, shown=1)
    assert ([view.request.event_name for view in one.shown], one.total, one.more) == (["sooner"], 2, 1)


async def test_a_team_decision_the_person_approved_no_longer_waits_for_them(service: HitlService) -> None:
    store = service.store
    team = make_request(store, event_name="two_approvals", approvals=2, responders=["api:alice", "api:bob", "api:cy"])
    await store.put_request(team)
    assert [view.request.event_name for view in (await service.inbox(ALICE, shown=5)).shown] == ["two_approvals"]

    verdict = await service.approve(team.request_id, ALICE, "api")
    assert not verdict.decided
    mine = await service.inbox(ALICE, shown=5)
    assert (mine.shown, mine.total) == ((), 0), "she voted: it waits for the others, not for her"
    [bobs] = (await service.inbox(BOB, shown=5)).shown
    assert bobs.tally is not None and bobs.tally.approved == 1, "Bob sees the decision as it stands"


async def test_an_event_this_replica_saw_answered_is_gone_before_its_marker(service: HitlService) -> None:
    """Right after an answer (the Home republished at once), before the outcome is settled."""
    store = service.store
    request = make_request(store, event_name="answered_now")
    await store.put_request(request)
    await store.create_response(Response(value=True, request_id=request.request_id, responder=ALICE, via="api"))
    assert request.request_id in await store.pending_ids(), "not settled: its marker is still there"
    assert (await service.inbox(ALICE, shown=5)).total == 0


async def test_a_team_decision_handed_to_someone_is_in_their_lists(service: HitlService) -> None:
    """The delegate may answer (a click counts), so every pending list shows them the event; it left
    only the lists of people its rules name, and the delegator's inbox."""
    cat = Responder(platform="api", user_id="cat")
    team = make_request(service.store, event_name="handed", approvals=2, responders=["api:alice", "api:bob"])
    await service.store.put_request(team)
    assert await service.pending(cat) == []

    await service.delegate(team.request_id, ALICE, cat, "api", note="on holiday")
    assert [r.event_name for r in await service.pending(cat)] == ["handed"]
    assert [view.request.event_name for view in (await service.inbox(cat, shown=5)).shown] == ["handed"]
    assert (await service.inbox(ALICE, shown=5)).shown == (), "the delegator's place is taken"


async def test_a_requester_named_by_e_mail_does_not_find_their_own_decision_waiting(service: HitlService) -> None:
    """Their approval is refused, so their lists must not offer it (it was listed when the requester
    was an address rather than a chat identity). The API's name is the address here (`People.asked`)."""
    dana = Responder(platform="api", user_id="dana@example.com")
    team = make_request(
        service.store,
        event_name="own",
        approvals=2,
        responders=["api:alice", "api:dana@example.com", "api:bob"],
        requester="Dana@Example.com",
    )
    await service.store.put_request(team)
    assert await service.pending(dana) == []
    assert (await service.inbox(dana, shown=5)).shown == ()
    assert [r.event_name for r in await service.pending(ALICE)] == ["own"]

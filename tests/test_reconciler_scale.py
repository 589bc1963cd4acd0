"""The reconciler's cost follows changes: requests counted at a real S3 server (moto), not timed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hitl_chatops.bot.protocol import Responder, Response
from hitl_chatops.bot.reconciler import Reconciler
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.store import Store, new_request_id
from tests.conftest import SECRET
from tests.fakes.events import make_request
from tests.fakes.s3 import Moto

OPEN_EVENTS = 2000


@pytest.fixture
def counting_moto(own_moto: Moto) -> Moto:
    """moto for this test alone, counting every request it gets."""
    return own_moto


async def put_events(store: Store, count: int) -> list[str]:
    gate = asyncio.Semaphore(64)

    async def one() -> str:
        request = make_request(store)
        async with gate:
            await store.put_request(request)
        return request.request_id

    return await asyncio.gather(*(one() for _ in range(count)))


async def test_an_idle_pass_over_2000_open_events_is_three_listings(counting_moto: Moto) -> None:
    store = Store(f"s3://{counting_moto.bucket}/hitl")
    ids = await put_events(store, OPEN_EVENTS)
    service = HitlService(store, secret=SECRET, form_base_url="http://127.0.0.1:1")
    reconciler = Reconciler(service, 15)
    counting_moto.take()

    first = await reconciler.step()  # a cold replica reads each event once
    assert first.announced == OPEN_EVENTS
    # Outbox, owed signals, markers and heartbeats in one listing: 2 pages and the one that shows the end.
    assert counting_moto.take() == {"LIST": 3, "GET": 2 * OPEN_EVENTS}  # request.json cold, response.json 404

    idle = await reconciler.step()
    assert idle.announced == idle.expired == idle.repaired == idle.failed == 0
    # 2,000 markers at 1,000 keys a page, and the page that shows where they end: 1 + N/1000.
    assert counting_moto.take() == {"LIST": 1 + OPEN_EVENTS // 1000}

    # One answered (its marker dropped by the answerer) and one new event: only the new one is read.
    await service.respond(ids[0], "yes", Responder(platform="api", user_id="ci"), "api", trusted=True)
    await service.background.drain()
    new = (await put_events(store, 1))[0]
    counting_moto.take()
    changed = await reconciler.step()
    assert changed.announced == 1
    assert counting_moto.take() == {"LIST": 3, "GET": 2}  # the new event's request.json and response.json
    assert new in await store.pending_ids() and ids[0] not in await store.pending_ids()


async def test_owed_work_markers_and_heartbeats_come_from_one_listing(counting_moto: Moto) -> None:
    """The outbox, owed signals, markers and heartbeats sort together; outcomes and events do not get listed."""
    store = Store(f"s3://{counting_moto.bucket}/owed")
    service = HitlService(store, secret=SECRET, form_base_url="http://127.0.0.1:1")
    answered, owed, waiting = await put_events(store, 3)
    await service.respond(answered, "yes", Responder(platform="api", user_id="ci"), "api", trusted=True)
    await service.background.drain()  # its outcome is in the history now, which sorts before the listed folders
    await store.put_outbox(owed, "answered")
    await store.put_owed_signal(owed, {"error": "control plane down"})
    await store.put_replica(waiting)
    counting_moto.take()
    listing = await store.listing()
    assert counting_moto.take() == {"LIST": 1}
    assert (listing.outbox, listing.signals, sorted(listing.pending)) == ([owed], [owed], sorted([owed, waiting]))
    assert list(listing.replicas) == [waiting]


async def test_replicas_take_turns_one_pass_per_slot(store_url: str) -> None:
    """Each wall-clock slot belongs to exactly one live replica, so a set makes one pass per interval."""
    store = Store(store_url)
    replicas = [Reconciler(HitlService(store, secret=SECRET, form_base_url="http://x"), 1) for _ in range(3)]
    for reconciler in replicas:
        await store.put_replica(reconciler.replica_id)
    for reconciler in replicas:
        await reconciler.step()  # learns the others from the listing
    for slot in range(12):
        owners = [r for r in replicas if r.my_turn(slot + 0.5)]
        assert len(owners) == 1
    assert {r.replica_id for r in replicas if any(r.my_turn(s + 0.5) for s in range(3))} == {
        r.replica_id for r in replicas
    }
    await store.drop_replica(replicas[0].replica_id)
    await replicas[1].step()
    assert sum(replicas[1].my_turn(s + 0.5) for s in range(12)) == 6  # two live replicas now


async def test_markers_dropped_together_share_one_request(counting_moto: Moto) -> None:
    """Answers that land together drop their markers with one bulk delete (after their acks)."""
    store = Store(f"s3://{counting_moto.bucket}/bulk")
    ids = await put_events(store, 100)
    counting_moto.take()
    await asyncio.gather(*map(store.drop_pending, ids))
    assert counting_moto.take() == {"POST": 1}  # S3 DeleteObjects
    assert await store.pending_ids() == []


async def test_an_answer_is_one_request_before_the_ack_and_indexed_after(counting_moto: Moto) -> None:
    """On a warm replica: the exclusive create before the ack; the outcome index and the marker after it."""
    store = Store(f"s3://{counting_moto.bucket}/ack")
    service = HitlService(store, secret=SECRET, form_base_url="http://127.0.0.1:1")
    request_id = (await put_events(store, 1))[0]
    await store.get_request(request_id)  # warm: the notify or a pass read it
    counting_moto.take()
    await service.respond(request_id, "yes", Responder(platform="api", user_id="ci"), "api", trusted=True)
    assert counting_moto.take() == {"PUT": 1}  # response.json, `If-None-Match: *`; nothing else yet
    await service.background.drain()
    assert counting_moto.take() == {"PUT": 1, "POST": 1}  # the outcome index entry, the marker's bulk delete
    records, _ = await store.outcomes("completed", limit=5)
    assert [r.request_id for r in records] == [request_id] and await store.pending_ids() == []


async def test_an_outcome_left_unsettled_is_finished_by_the_reconciler(store_url: str) -> None:
    """A settle that failed after the ack, or a replica that died after the create, leaves the marker:
    a pass indexes the outcome and drops it, though the event had been settled in that replica's eyes."""
    store = Store(store_url)
    service = HitlService(store, secret=SECRET, form_base_url="http://x")
    reconciler = Reconciler(service, 15)
    first, second = make_request(store), make_request(store)
    for request in (first, second):
        await store.put_request(request)
    await reconciler.step()  # both posted (nowhere): not read again until something changes
    blocker = Path(store.root) / "hitl-history"
    blocker.write_text("in the way")  # the index folder cannot be made: the settle fails
    await service.respond(first.request_id, "yes", Responder(platform="api", user_id="ci"), "api", trusted=True)
    await service.background.drain()
    answer = Response(value=False, request_id=second.request_id, data_type="bool", via="api")
    await Store(store_url).create_response(answer)  # another replica wrote it and died before settling
    assert sorted(await store.pending_ids()) == sorted([first.request_id, second.request_id])
    blocker.unlink()

    assert (await reconciler.step()).repaired == 1  # this replica's own failed settle
    fresh = Reconciler(HitlService(Store(store_url), secret=SECRET, form_base_url="http://x"), 15)
    assert (await fresh.step()).repaired == 1  # a restarted replica's first pass reads every open event
    assert await store.pending_ids() == []
    (approved, _), (rejected, _) = [await store.outcomes(kind, limit=5) for kind in ("completed", "rejected")]
    assert [r.request_id for r in approved] == [first.request_id]
    assert [r.request_id for r in rejected] == [second.request_id]  # a bool answered False


async def test_stopped_replicas_heartbeats_go_in_one_bulk_delete_and_idle_passes_stay_one_listing(
    counting_moto: Moto,
) -> None:
    """A 0.25 s interval: heartbeats every second, stale after 2 s (1 and 2 minutes at 15 s)."""
    store = Store(f"s3://{counting_moto.bucket}/sweep")
    reconciler = Reconciler(HitlService(store, secret=SECRET, form_base_url="http://127.0.0.1:1"), 0.25)
    for _ in range(5):
        await store.put_replica(new_request_id())  # replicas that will crash without a goodbye
    await asyncio.sleep(reconciler.stale_seconds + 1)  # S3's LastModified counts whole seconds
    await reconciler.beat()
    counting_moto.take()

    await reconciler.step()
    assert counting_moto.take() == {"LIST": 1, "POST": 1}  # the pass's listing; one DeleteObjects for all five
    assert list(await store.heartbeats()) == [reconciler.replica_id]
    counting_moto.take()
    await reconciler.step()
    assert counting_moto.take() == {"LIST": 1}


async def test_team_decisions_cost_their_changes_and_an_idle_pass_stays_one_listing(counting_moto: Moto) -> None:
    """A vote: one listing of the event's folder, the vote's create, the marker rewrite, one listing more
    (and the decision when it completes the rules). Reminders and escalations fall due from the request
    the reconciler holds: until then an idle pass reads nothing of the event."""
    store = Store(f"s3://{counting_moto.bucket}/team")
    service = HitlService(store, secret=SECRET, form_base_url="http://127.0.0.1:1")
    events = [make_request(store, approvals=2, remind_every=600) for _ in range(3)]
    for event in events:
        await store.put_request(event)
    reconciler = Reconciler(service, 15)
    await reconciler.step()  # cold: reads each event once
    counting_moto.take()
    assert (await reconciler.step()).announced == 0
    assert counting_moto.take() == {"LIST": 1}, "reminders due in 10 minutes: nothing read before"

    request_id = events[0].request_id
    await service.answer(request_id, True, Responder(platform="slack", user_id="U0ANN"), "api", trusted=True)
    assert counting_moto.take() == {"LIST": 2, "PUT": 2}, "a warm replica's vote that does not decide"
    await service.answer(request_id, True, Responder(platform="slack", user_id="U0BOB"), "api", trusted=True)
    assert counting_moto.take() == {"LIST": 2, "PUT": 3}, "and the one that decides: response.json too"
    await service.background.drain()
    assert counting_moto.take() == {"PUT": 1, "POST": 1}, "after the reply: the outcome indexed, the marker dropped"

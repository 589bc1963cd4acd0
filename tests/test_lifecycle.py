"""The whole event lifecycle in the core: cancel, the default at the deadline, and the recent-outcomes list.

Service calls run against the real store (a folder and the S3 server); the API runs over a real socket.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hitl_chatops.bot.errors import AlreadyAnswered, EventCancelled, EventExpired
from hitl_chatops.bot.protocol import Default, Request, Responder, Response
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.store import Store
from tests.conftest import AUTH
from tests.fakes.events import make_request

DANA = Responder(platform="slack", user_id="U0DANA", user_name="dana")
CI = Responder(platform="api", user_id="ci", user_name="ci")


def service_on(url: str) -> HitlService:
    return HitlService(Store(url), secret="s" * 32, form_base_url="http://127.0.0.1")


@pytest.fixture
def service(any_store_url: str) -> HitlService:
    return service_on(any_store_url)


async def stored(service: HitlService, **fields: object) -> Request:
    request = make_request(service.store, **fields)  # type: ignore[arg-type]
    await service.store.put_request(request)
    return request


async def test_cancel_racing_twenty_answers_leaves_one_outcome(service: HitlService, any_store_url: str) -> None:
    request = await stored(service, data_type="int")
    replicas = [service_on(any_store_url) for _ in range(4)]  # separate clients, as separate replicas have

    async def answer(i: int) -> str:
        try:
            await replicas[i % 4].respond(request.request_id, str(i), DANA, "slack")
        except AlreadyAnswered as lost:
            return "lost:" + type(lost).__name__
        return "answered"

    async def cancel() -> str:
        try:
            await replicas[0].cancel(request.request_id, "superseded by build 43", CI, "api")
        except AlreadyAnswered:
            return "lost:cancel"
        return "cancelled"

    results = await asyncio.gather(*(answer(i) for i in range(10)), cancel(), *(answer(i) for i in range(10, 20)))
    winners = [r for r in results if not r.startswith("lost")]
    assert len(winners) == 1, results
    for replica in replicas:
        await replica.background.drain()  # the marker goes after the ack, in the background
    outcome = await service.store.get_response(request.request_id)
    assert outcome is not None
    if winners == ["cancelled"]:
        assert outcome.cancelled and outcome.reason == "superseded by build 43"
        assert results.count("lost:EventCancelled") == 20
    else:
        assert outcome.status == "completed" and results[-11] == "lost:cancel"
    assert await service.store.pending_ids() == []


async def test_answers_after_a_cancel_are_refused_with_the_reason(service: HitlService) -> None:
    request = await stored(service, data_type="bool")
    cancelled = await service.cancel(request.request_id, "the release was rolled back", CI, "api")
    assert (cancelled.status, cancelled.via, cancelled.value) == ("cancelled", "api", None)
    for attempt in (
        service.respond(request.request_id, "true", DANA, "slack"),
        service.check(request.request_id, DANA),
    ):
        with pytest.raises(EventCancelled) as refused:
            await attempt
        assert str(refused.value) == (
            f"This event was cancelled by ci at {cancelled.responded_text}: the release was rolled back."
        )
    with pytest.raises(EventCancelled):
        await service.cancel(request.request_id, "again", CI, "api")


async def test_the_default_is_applied_at_the_deadline_and_late_answers_are_told(service: HitlService) -> None:
    request = await stored(service, data_type="int", timeout=-1, on_timeout=Default(value=3))
    assert await service.expire(request.request_id) is True
    assert await service.expire(request.request_id) is False, "applied once"
    outcome = await service.store.get_response(request.request_id)
    assert outcome is not None
    assert (outcome.status, outcome.value, outcome.via, outcome.responder) == ("completed", 3, "timeout", None)
    assert outcome.responded_at == request.deadline
    with pytest.raises(AlreadyAnswered, match=r"expired at .* and its default answer was applied"):
        await service.respond(request.request_id, "5", DANA, "slack")
    assert await service.store.pending_ids() == []


async def test_without_a_default_the_deadline_writes_no_outcome(service: HitlService) -> None:
    request = await stored(service, data_type="int", timeout=-1)
    assert await service.expire(request.request_id) is True
    assert await service.store.get_response(request.request_id) is None


async def listed_once(service: HitlService, request_id: str) -> list[str]:
    """The recent-outcome lists that name the event (one outcome: exactly one list)."""
    found = []
    for outcome in ("completed", "cancelled", "expired"):
        records, _ = await service.store.outcomes(outcome, limit=100)  # type: ignore[arg-type]
        found += [outcome for r in records if r.request_id == request_id]
    return found


async def test_a_cancel_after_the_deadline_is_refused_and_writes_nothing(service: HitlService) -> None:
    """issue 21: a cancel after the reconciler's expiry wrote a second outcome."""
    expired, overdue = await stored(service, timeout=-1), await stored(service, timeout=-1)
    assert await service.expire(expired.request_id) is True
    for request in (expired, overdue):  # expired by the reconciler, or only past its deadline
        with pytest.raises(EventExpired, match=r"^This event expired at "):
            await service.cancel(request.request_id, "too late", CI, "api")
        assert await service.store.get_response(request.request_id) is None
    assert await listed_once(service, expired.request_id) == ["expired"]
    defaulted = await stored(service, data_type="int", timeout=-1, on_timeout=Default(value=3))
    assert await service.expire(defaulted.request_id) is True
    with pytest.raises(AlreadyAnswered, match="default answer was applied"):
        await service.cancel(defaulted.request_id, "too late", CI, "api")


@pytest.mark.parametrize("expiry_first", [True, False], ids=["expiry-first", "straddler-first"])
async def test_a_cancel_straddling_the_deadline_and_the_expiry_leave_one_outcome(
    service: HitlService, expiry_first: bool
) -> None:
    """A cancel checked before the deadline and written after it races the reconciler's expiry.

    What is written stands (every reader of response.json sees it), so the expiry steps back: its
    index entry goes and the copies are re-rendered from the outbox. Both orders, and each event's
    two writers started together, end with the cancellation listed once and never as expired.
    """
    requests = [await stored(service, timeout=-1) for _ in range(6)]

    async def straddle(request: Request) -> None:  # the cancel's write, its check long done
        await service.store.put_response(Response.cancellation(request, "late", CI, "api"), request)

    async def race(request: Request) -> None:
        steps = [service.expire(request.request_id), straddle(request)]
        await asyncio.gather(*(steps if expiry_first else steps[::-1]))

    await race(requests[0])  # gathered: the two interleave
    await service.expire(requests[1].request_id)  # one after the other
    await straddle(requests[1])
    await asyncio.gather(*map(race, requests[2:]))
    await service.background.drain()
    for request in requests:
        assert await listed_once(service, request.request_id) == ["cancelled"]
        assert (await service.store.get_response(request.request_id)).cancelled  # type: ignore[union-attr]
    assert requests[1].request_id in await service.store.outbox_ids(), "the copies are re-rendered"


# -- over the API ----------------------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_api_cancel(bot: BotThread, http: aiohttp.ClientSession) -> None:
    request = await stored(bot.service, data_type="bool")
    url = f"{bot.url}/api/v1/events/{request.request_id}/cancel"
    async with http.post(url, json={"reason": "x"}) as reply:
        assert reply.status == 401
    async with http.post(url, headers=AUTH, json={"reason": ""}) as reply:
        assert reply.status == 400
    async with http.post(url, headers=AUTH, json={"reason": "not needed any more", "responder": "ci"}) as reply:
        assert reply.status == 200
        body = await reply.json()
    assert (body["status"], body["reason"], body["via"]) == ("cancelled", "not needed any more", "api")
    async with http.post(url, headers=AUTH, json={}) as reply:
        assert reply.status == 409
        assert "not needed any more" in (await reply.json())["error"]
    answer = f"{bot.url}/api/v1/events/{request.request_id}/response"
    async with http.post(answer, headers=AUTH, json={"value": True}) as reply:
        assert reply.status == 409
        body = await reply.json()
    assert "cancelled by ci" in body["error"] and body["response"]["status"] == "cancelled"
    async with http.get(bot.service.form_url(request.request_id)) as reply:
        page = await reply.text()
    assert "This event was cancelled" in page and "not needed any more" in page and "<form" not in page


async def test_api_cancel_after_expiry_is_a_410_and_the_event_is_listed_once(
    bot: BotThread, http: aiohttp.ClientSession
) -> None:
    """issue 21: it was a 200, a cancelled response.json appeared and both lists named the event."""
    request = await stored(bot.service, event_name="late", timeout=-1)
    assert await bot.service.expire(request.request_id) is True
    url = f"{bot.url}/api/v1/events/{request.request_id}/cancel"
    async with http.post(url, headers=AUTH, json={"reason": "superseded"}) as reply:
        assert reply.status == 410
        assert (await reply.json())["error"].startswith("This event expired at ")
    assert await bot.service.store.get_response(request.request_id) is None
    for status, names in (("expired", ["late"]), ("cancelled", [])):
        async with http.get(f"{bot.url}/api/v1/events?status={status}", headers=AUTH) as reply:
            assert [e["event_name"] for e in (await reply.json())["events"]] == names


async def test_the_plugin_cancel_after_the_deadline_is_refused_with_or_without_a_bot(bot: BotThread) -> None:
    """`Event.cancel` writes the cancellation itself when no bot is reachable: the deadline holds there too."""
    import hitl_chatops.plugin as hitl
    from hitl_chatops.plugin._runtime import BotEndpoint
    from tests.conftest import SECRET

    overdue = await stored(bot.service, timeout=-1)
    through_bot = BotEndpoint(bot.url, SECRET, bot.url)
    for endpoint in (None, through_bot):
        event = hitl.Event(overdue, bool, 0.01, None, bot=endpoint)
        with pytest.raises(EventExpired):
            await event.cancel.aio("too late")
        assert await bot.service.store.get_response(overdue.request_id) is None


async def test_recent_outcomes_newest_first_in_pages(bot: BotThread, http: aiohttp.ClientSession) -> None:
    answered = [await stored(bot.service, event_name=f"gate-{i}", data_type="bool") for i in range(5)]
    for request in answered:
        await bot.service.respond(request.request_id, "true", DANA, "slack")
    cancelled = await stored(bot.service, event_name="dropped", data_type="bool")
    await bot.service.cancel(cancelled.request_id, "no longer needed", CI, "api")
    expired = await stored(bot.service, event_name="late", data_type="bool", timeout=-1)
    defaulted = await stored(
        bot.service, event_name="fallback", data_type="int", timeout=-1, on_timeout=Default(value=1)
    )
    assert await bot.service.expire(expired.request_id) and await bot.service.expire(defaulted.request_id)
    open_one = await stored(bot.service, event_name="open", data_type="bool")
    await bot.service.background.drain()  # outcomes are indexed after the ack, in the background

    async def listed(query: str) -> dict[str, object]:
        async with http.get(f"{bot.url}/api/v1/events?{query}", headers=AUTH) as reply:
            assert reply.status == 200, await reply.text()
            return await reply.json()  # type: ignore[no-any-return]

    first = await listed("status=completed&limit=3")
    names = [e["event_name"] for e in first["events"]]  # type: ignore[attr-defined]
    assert names == ["gate-4", "gate-3", "gate-2"]
    entry = first["events"][0]  # type: ignore[index]
    assert (entry["via"], entry["responder"]["user_id"], entry["value"], entry["outcome"]) == (
        "slack",
        "U0DANA",
        True,
        "completed",
    )
    second = await listed(f"status=completed&limit=3&cursor={first['next']}")
    assert [e["event_name"] for e in second["events"]] == ["gate-1", "gate-0"]  # type: ignore[attr-defined]
    assert second["next"] is None
    gone = await listed("status=cancelled")
    assert [(e["event_name"], e["reason"]) for e in gone["events"]] == [("dropped", "no longer needed")]  # type: ignore[attr-defined]
    ended = await listed("status=expired")
    assert {(e["event_name"], e["via"], e["value"]) for e in ended["events"]} == {  # type: ignore[attr-defined]
        ("late", None, None),
        ("fallback", "timeout", 1),
    }
    pending = await listed("status=pending")
    assert [e["event_name"] for e in pending["events"]] == ["open"]  # type: ignore[attr-defined]
    assert open_one.request_id == pending["events"][0]["request_id"]  # type: ignore[index]
    for bad in ("status=answered", "status=completed&limit=0", "status=completed&cursor=../../x"):
        async with http.get(f"{bot.url}/api/v1/events?{bad}", headers=AUTH) as reply:
            assert reply.status == 400


LIMITS = {
    "20": 200,
    "1": 200,
    "100": 200,
    "007": 200,
    "0": 400,
    "101": 400,
    "-1": 400,
    "+5": 400,
    " 5": 400,
    "5.0": 400,
    "": 400,
    "\u00b2": 400,  # superscript two: str.isdigit() says yes, int() says no
    "\u0663": 400,  # Arabic-Indic three: int() reads it as 3
    "\uff15": 400,  # fullwidth five
    "9" * 5000: 400,  # past int()'s 4,300-digit limit
}


@pytest.mark.parametrize("limit", list(LIMITS), ids=[ascii(k)[:20] for k in LIMITS])
async def test_history_limit_is_a_small_ascii_number_or_a_400(
    bot: BotThread, http: aiohttp.ClientSession, limit: str
) -> None:
    """issue 21: `limit=²` and a 5,000-digit limit were 500s."""
    url = f"{bot.url}/api/v1/events"
    async with http.get(url, params={"status": "completed", "limit": limit}, headers=AUTH) as reply:
        assert reply.status == LIMITS[limit], await reply.text()
        body = await reply.json()
    if reply.status == 400:
        assert body["error"] == "limit must be a whole number from 1 to 100."
    else:
        assert body == {"events": [], "next": None}


# -- the plugin's sync spellings -------------------------------------------------------------------


def test_sync_cancel_and_result(bot: BotThread) -> None:
    import hitl_chatops.plugin as hitl

    event = hitl.new_event("gate", bool, prompt="Go?", poll_interval_seconds=0.05)
    event.cancel("not today")
    with pytest.raises(hitl.EventCancelled, match=r"cancelled by the workflow at .*: not today"):
        event.result()
    with pytest.raises(hitl.EventCancelled):
        event.cancel("twice")


def test_sync_human_step_with_a_default() -> None:
    """No bot configured and no answer: the step still ends, with its default and `via` timeout."""
    import hitl_chatops.plugin as hitl

    step = hitl.Human("fallback_step", "Pick replicas", int, timeout=1, on_timeout=2, poll_interval_seconds=0.05)
    result = step.run({"service": "api"})
    assert (result.output, result.via, result.completed_by) == (2, "timeout", None)
    request_id = result.request_id
    stored_request = asyncio.run(Store(os.environ["HITL_CHATOPS_STORE"]).get_request(request_id))
    assert (stored_request.title, stored_request.context) == ("Pick replicas", {"service": "api"})


async def test_form_shows_context_escaped_and_whole(bot: BotThread, http: aiohttp.ClientSession) -> None:
    long = "x" * 5000
    request = await stored(
        bot.service, data_type="bool", context={"<b>who</b>": "<script>alert(1)</script>", "log": long, "n": 3}
    )
    async with http.get(bot.service.form_url(request.request_id)) as reply:
        page = await reply.text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "&lt;b&gt;who&lt;/b&gt;" in page
    assert long in page, "the form shows the full context"


async def test_a_hand_written_schema_the_bot_cannot_use_is_an_unreadable_event_not_a_500(
    bot: BotThread, http: aiohttp.ClientSession
) -> None:
    schema = {"type": "object", "properties": {"when": {"type": "string", "format": "date"}, "tags": {"type": "array"}}}
    request = await stored(bot.service, data_type="object", answer_schema=schema)
    async with http.post(
        f"{bot.url}/api/v1/events/{request.request_id}/response", headers=AUTH, json={"value": {"when": "x"}}
    ) as reply:
        assert reply.status == 503
    async with http.get(bot.service.form_url(request.request_id)) as reply:
        assert reply.status == 503 and "Please try again" in await reply.text()
    assert await bot.service.store.get_response(request.request_id) is None

"""Search and decision metrics from the outcome history: the list filters, `/api/v1/stats`, `hitl-chatops
stats` and `hitl_decision_seconds`.

Outcomes are written through the real store and service (answers with known times as the plugin writes
them, expiries and defaults by the service at known deadlines); the API runs over a real socket, the CLI
as a subprocess, and storage requests are counted at a real S3 server (moto).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hitl_chatops.bot.history import EventStats, Search, Span, Timing
from hitl_chatops.bot.metrics import Metrics
from hitl_chatops.bot.protocol import Default, OutcomeRecord, Request, Responder, Response, utcnow
from hitl_chatops.bot.server import BotThread
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.store import SCAN_LIMIT, Store
from tests.conftest import AUTH, SECRET
from tests.fakes.events import make_request
from tests.fakes.s3 import Moto
from tests.test_cli import run_cli

DANA = Responder(platform="slack", user_id="U0DANA", user_name="dana")
CI = Responder(platform="api", user_id="ci", user_name="ci")
DAY = timedelta(days=1)
# "Approve, with a reason": a structured approval, whose Reject is a rejection like a bool's False.
APPROVAL_SCHEMA = {
    "title": "Approval",
    "type": "object",
    "required": ["approved"],
    "properties": {
        "approved": {"type": "boolean", "title": "Approved"},
        "reason": {"type": "string", "default": "", "title": "Reason"},
    },
}


def service_on(store: Store) -> HitlService:
    return HitlService(store, secret=SECRET, form_base_url="http://127.0.0.1:1")


def anchor() -> datetime:
    """Noon UTC ten days ago: the table's days are whole days in the past."""
    return (utcnow() - 10 * DAY).replace(hour=12, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Row:
    """One event of the table: created `day` days before the anchor, ended `seconds` later, as `how`."""

    event_name: str
    how: str  # completed | rejected | cancelled | expired | defaulted
    day: int
    seconds: float


TABLE = [
    Row("deploy_gate", "completed", 5, 60),
    Row("deploy_gate", "completed", 4, 120),
    Row("deploy_gate", "rejected", 3, 300),
    Row("deploy_gate", "cancelled", 3, 30),
    Row("deploy_gate", "completed", 2, 600),
    Row("deploy_gate", "defaulted", 2, 900),
    Row("deploy_gate", "rejected", 1, 3600),
    Row("deploy_gate", "expired", 1, 1800),
    Row("expense", "rejected", 2, 45),  # an approval with a reason, rejected
    Row("expense", "completed", 1, 15),
]


async def write(service: HitlService, row: Row, base: datetime) -> Request:
    """The row's event, and its outcome at its known time: answers and cancels as a writer with a clock of
    its own writes them (the plugin), expiries and defaults by the service at the deadline."""
    store, created = service.store, base - row.day * DAY
    fields: dict[str, Any] = {"event_name": row.event_name}
    if row.event_name == "expense":
        fields |= {"data_type": "object", "answer_schema": APPROVAL_SCHEMA}
    if row.how in ("expired", "defaulted"):
        on_timeout = Default(value=False) if row.how == "defaulted" else None
        request = make_request(store, now=created, timeout=row.seconds, on_timeout=on_timeout, **fields)
        await store.put_request(request)
        assert await service.expire(request.request_id)
        return request
    request = make_request(store, now=created, timeout=30 * 86400, **fields)
    await store.put_request(request)
    approved = row.how == "completed"
    value = {"approved": approved, "reason": ""} if row.event_name == "expense" else approved
    at = created + timedelta(seconds=row.seconds)
    if row.how == "cancelled":
        outcome = Response.cancellation(request, "superseded", CI, "api").model_copy(update={"responded_at": at})
    else:
        outcome = Response(
            value=value, request_id=request.request_id, data_type=request.data_type, responder=DANA, via="slack"
        ).model_copy(update={"responded_at": at})
    await store.put_response(outcome, request)
    return request


async def write_table(service: HitlService, base: datetime, rows: list[Row] = TABLE) -> None:
    for row in rows:
        await write(service, row, base)


def counts(completed: int = 0, rejected: int = 0, expired: int = 0, defaulted: int = 0, cancelled: int = 0) -> Any:
    return {
        "completed": completed,
        "rejected": rejected,
        "expired": expired,
        "defaulted": defaulted,
        "cancelled": cancelled,
    }


@pytest.mark.parametrize("where", ["store_url", "s3_store_url"])
async def test_stats_from_a_table_of_known_outcomes(where: str, request: pytest.FixtureRequest) -> None:
    service = service_on(Store(request.getfixturevalue(where)))
    base = anchor()
    await write_table(service, base)

    everything = await service.stats(Span(base - 6 * DAY, base))
    assert everything == [
        EventStats("deploy_gate", counts(3, 2, 1, 1, 1), Timing(5, p50=300, p90=3600, max=3600)),
        EventStats("expense", counts(completed=1, rejected=1), Timing(2, p50=15, p90=45, max=45)),
    ]
    # From noon two days before the anchor: the outcomes of the last two days only.
    recent = await service.stats(Span(base - 2 * DAY, base))
    assert recent == [
        EventStats("deploy_gate", counts(1, 1, 1, 1), Timing(2, p50=600, p90=3600, max=3600)),
        EventStats("expense", counts(completed=1, rejected=1), Timing(2, p50=15, p90=45, max=45)),
    ]
    # `since` includes an outcome at that very moment, `until` excludes it.
    last_rejection = base - DAY + timedelta(seconds=3600)
    assert [s.outcomes["rejected"] for s in await service.stats(Span(last_rejection, base))] == [1]
    before = await service.stats(Span(base - 2 * DAY, last_rejection))
    assert [(s.event_name, s.outcomes["rejected"]) for s in before] == [("deploy_gate", 0), ("expense", 1)]
    assert await service.stats(Span(base - 30 * DAY, base - 20 * DAY)) == []


async def test_a_stats_call_reads_the_days_and_records_in_its_span_only(own_moto: Moto) -> None:
    """Counted at the S3 server: one listing of the day folders per outcome, one per day in the span with
    outcomes, one read per record in the span; older days are never listed, however many there are."""
    url = f"s3://{own_moto.bucket}/hitl"
    base = anchor()
    week = [Row("deploy_gate", how, day, 60) for day in range(1, 7) for how in ("completed",) * 3 + ("rejected",)]
    await write_table(service_on(Store(url)), base, week)
    span = Span(base - 2 * DAY, base)  # days 2 and 1: 8 records in 2 folders
    own_moto.take()
    [stats] = await service_on(Store(url)).stats(span)  # a replica that has read nothing yet
    assert stats.outcomes == counts(completed=6, rejected=2)
    assert own_moto.take() == {"LIST": 4 + 2 * 2, "GET": 8}  # 4 outcome folders, 2 days of 2 of them

    older = [Row("deploy_gate", "completed", day, 60) for day in range(7, 30) for _ in range(2)]
    newer = [Row("deploy_gate", "rejected", 1, 90)] * 3
    await write_table(service_on(Store(url)), base, older + newer)
    replica = service_on(Store(url))
    own_moto.take()
    [stats] = await replica.stats(span)
    assert stats.outcomes == counts(completed=6, rejected=5)
    assert own_moto.take() == {"LIST": 8, "GET": 11}, "46 older outcomes cost nothing"
    await replica.stats(span)
    assert own_moto.take() == {"LIST": 8}, "records read once per replica"

    # A page of the list skips whole days the same way: the day folders, then the days it reads.
    page, cursor = await replica.store.outcomes("rejected", limit=4, search=Search(span=span))
    assert len(page) == 4 and cursor is not None
    # Day 1 holds the page (its 4 records read), day 2 says there is more; days 3 to 29 are not listed.
    assert own_moto.take() == {"LIST": 3, "GET": 4}


async def test_records_of_earlier_builds_are_listed_and_counted_without_times(store_url: str) -> None:
    """Development builds before 0.2.0 wrote records without `created_at`: listed and counted, not timed."""
    store = Store(store_url)
    at = anchor()
    request_id = "0b7c3d4e-1f2a-4b5c-8d9e-0f1a2b3c4d5e"
    old = {"request_id": request_id, "event_name": "deploy_gate", "outcome": "completed", "at": at.isoformat()}
    countdown = 10**16 - int(at.timestamp() * 1_000_000)
    path = f"{store.root}/hitl-history/completed/{at:%Y-%m-%d}/{countdown:016d}-{request_id}"
    await store.backend.put(path, OutcomeRecord.model_validate(old).model_dump_json(exclude={"created_at"}).encode())
    [record], _ = await store.outcomes("completed", limit=5)
    assert (record.request_id, record.created_at, record.seconds) == (request_id, None, None)
    stats = await service_on(store).stats(Span(at - DAY, at + DAY))
    assert stats == [EventStats("deploy_gate", counts(completed=1), None)]


async def test_a_filtered_page_examines_at_most_the_scan_limit(store_url: str) -> None:
    """A filter that matches nothing recent still answers after `SCAN_LIMIT` records, with a cursor."""
    store = Store(store_url)
    base = anchor()
    needle = make_request(store, event_name="needle", now=base - DAY)
    await store.index_outcome(Response(value=True, request_id=needle.request_id, responded_at=base - DAY), needle)
    hay = [make_request(store, event_name="hay", now=base) for _ in range(SCAN_LIMIT)]
    await asyncio.gather(
        *(store.index_outcome(Response(value=True, request_id=r.request_id, responded_at=base), r) for r in hay)
    )
    search = Search(event_name="needle")
    first, cursor = await store.outcomes("completed", limit=20, search=search)
    assert first == [] and cursor is not None
    second, end = await store.outcomes("completed", limit=20, after=cursor, search=search)
    assert [r.request_id for r in second] == [needle.request_id] and end is None


# -- over HTTP -------------------------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def stored(service: HitlService, **fields: Any) -> Request:
    request = make_request(service.store, **fields)
    await service.store.put_request(request)
    return request


async def test_each_filter_of_the_list_over_http(bot: BotThread, http: aiohttp.ClientSession) -> None:
    service = bot.service
    shipped, refused, dropped = [await stored(service, event_name="deploy_gate") for _ in range(3)]
    expense = await stored(service, event_name="expense", data_type="object", answer_schema=APPROVAL_SCHEMA)
    await service.respond(shipped.request_id, "true", DANA, "slack")
    await service.respond(refused.request_id, False, CI, "api", trusted=True)
    middle = utcnow()
    await service.respond(expense.request_id, {"approved": "true"}, DANA, "slack")
    await service.cancel(dropped.request_id, "superseded", CI, "api")
    for_dana = await stored(service, event_name="deploy_gate", responders=["slack:U0DANA"])
    for_anyone = await stored(service, event_name="nightly")
    await service.background.drain()

    async def listed(**query: str) -> tuple[list[str], str | None]:
        async with http.get(f"{bot.url}/api/v1/events", params=query, headers=AUTH) as reply:
            assert reply.status == 200, await reply.text()
            body = await reply.json()
        return [e["request_id"] for e in body["events"]], body.get("next")

    assert await listed(status="completed") == ([expense.request_id, shipped.request_id], None)
    assert await listed(status="rejected") == ([refused.request_id], None)
    assert await listed(status="cancelled", responder="api:ci") == ([dropped.request_id], None)
    assert await listed(status="completed", event_name="deploy_gate") == ([shipped.request_id], None)
    assert await listed(status="completed", responder="slack:U0DANA") == (
        [expense.request_id, shipped.request_id],
        None,
    )
    assert await listed(status="rejected", responder="slack:U0DANA") == ([], None)
    assert await listed(status="completed", since=middle.isoformat()) == ([expense.request_id], None)
    assert await listed(status="completed", until=middle.isoformat()) == ([shipped.request_id], None)
    assert await listed(status="completed", since="1h", event_name="expense") == ([expense.request_id], None)
    first, cursor = await listed(status="completed", responder="slack:U0DANA", limit="1")
    assert first == [expense.request_id] and cursor is not None
    assert await listed(status="completed", responder="slack:U0DANA", limit="1", cursor=cursor) == (
        [shipped.request_id],
        None,
    )
    # Pending: who may answer, the name, and when the event was created.
    newest_first = [for_anyone.request_id, for_dana.request_id]
    assert (await listed(status="pending", responder="slack:U0DANA"))[0] == newest_first
    assert (await listed(status="pending", responder="slack:U0BOB"))[0] == [for_anyone.request_id]
    assert (await listed(status="pending", event_name="deploy_gate"))[0] == [for_dana.request_id]
    assert (await listed(status="pending", since=for_anyone.created_at.isoformat()))[0] == [for_anyone.request_id]
    assert (await listed(status="pending", until=for_anyone.created_at.isoformat()))[0] == [for_dana.request_id]


async def test_stats_over_http(bot: BotThread, http: aiohttp.ClientSession) -> None:
    base = anchor()
    await write_table(bot.service, base)
    since, until = (base - 2 * DAY).isoformat(), base.isoformat()
    async with http.get(f"{bot.url}/api/v1/stats", params={"since": since, "until": until}, headers=AUTH) as reply:
        assert reply.status == 200, await reply.text()
        body = await reply.json()
    assert body == {
        "since": since,
        "until": until,
        "events": [
            {
                "event_name": "deploy_gate",
                "total": 4,
                "outcomes": counts(1, 1, 1, 1),
                "decision_seconds": {"count": 2, "p50": 600.0, "p90": 3600.0, "max": 3600.0},
            },
            {
                "event_name": "expense",
                "total": 2,
                "outcomes": counts(completed=1, rejected=1),
                "decision_seconds": {"count": 2, "p50": 15.0, "p90": 45.0, "max": 45.0},
            },
        ],
    }
    async with http.get(f"{bot.url}/api/v1/stats?since=2d") as reply:
        assert reply.status == 401


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("events?status=answered", "status must be pending, completed, rejected, cancelled or expired."),
        ("events?status=completed&since=yesterday", "since must be an ISO 8601 time such as 2026-12-01T09:00:00Z"),
        ("events?status=completed&since=2026-13-01", "since must be an ISO 8601 time"),
        ("events?status=completed&until=20261201", "until must be an ISO 8601 time"),
        ("events?status=completed&since=1999-12-31", "since must be between 2000-01-01 and tomorrow."),
        ("events?status=pending&until=2999-01-01T00:00:00Z", "until must be between 2000-01-01 and tomorrow."),
        ("events?status=completed&since=1d&until=2d", "since must come before until."),
        ("events?status=completed&since=99999d", "since must be between 2000-01-01 and tomorrow."),
        ("events?status=completed&responder=U0DANA", "responder must be <platform>:<user id>"),
        ("events?status=pending&responder=slack:", "responder must be <platform>:<user id>"),
        ("events?status=completed&event_name=", "event_name must be 1 to 200 characters."),
        ("events?status=completed&event_name=" + "x" * 201, "event_name must be 1 to 200 characters."),
        ("events?status=completed&limit=0", "limit must be a whole number from 1 to 100."),
        ("events?status=completed&cursor=../../x", "cursor must be the `next` value of a previous page."),
        ("stats", "since is required: an ISO 8601 time"),
        ("stats?since=100d", "since and until may be at most 92 days apart."),
        ("stats?since=2026-01-01&until=2025-01-01", "since must come before until."),
        ("stats?since=7d&until=tomorrow", "until must be an ISO 8601 time"),
    ],
)
async def test_bad_parameters_are_a_400_saying_what_to_send(
    bot: BotThread, http: aiohttp.ClientSession, query: str, message: str
) -> None:
    async with http.get(f"{bot.url}/api/v1/{query}", headers=AUTH) as reply:
        assert reply.status == 400
        assert (await reply.json())["error"].startswith(message)


# -- hitl-chatops stats --------------------------------------------------------------------------------


def test_the_stats_table_with_only_the_store_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like `pending`: an operator with read access to the bucket, no secret."""
    base = anchor()
    asyncio.run(write_table(service_on(Store(os.environ["HITL_CHATOPS_STORE"])), base))
    monkeypatch.delenv("HITL_CHATOPS_SECRET")
    done = run_cli("stats", "--since", (base - 6 * DAY).isoformat(), "--until", base.isoformat())
    assert done.returncode == 0, done.stderr
    start, end = (base - 6 * DAY).strftime("%Y-%m-%d %H:%M UTC"), base.strftime("%Y-%m-%d %H:%M UTC")
    assert done.stdout.splitlines() == [
        f"Events that ended from {start} to {end}.",
        "P50, P90, MAX: time from creation to a decision (completed or rejected).",
        "",
        "EVENT        COMPLETED  REJECTED  EXPIRED  DEFAULTED  CANCELLED     P50     P90     MAX",
        "deploy_gate          3         2        1          1          1  5m 00s  1h 00m  1h 00m",
        "expense              1         1        0          0          0     15s     45s     45s",
    ]
    done = run_cli("stats")  # the last 7 days: the table is older
    assert done.returncode == 0 and done.stdout.startswith("No event ended from ")
    done = run_cli("stats", "--since", "last week")
    assert done.returncode == 2
    assert done.stderr.startswith("hitl-chatops: --since must be an ISO 8601 time such as 2026-12-01T09:00:00Z")


# -- /metrics ----------------------------------------------------------------------------------------


def decision_samples(text: str, suffix: str) -> dict[tuple[str, str], float]:
    """`hitl_decision_seconds<suffix>` by (event name, outcome)."""
    return {
        (s.labels["event_name"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == f"hitl_decision_seconds{suffix}"
    }


async def test_the_decision_histogram_after_answers(bot: BotThread, http: aiohttp.ClientSession) -> None:
    service, ago = bot.service, utcnow() - timedelta(minutes=10)
    approved, rejected, cancelled = [
        await stored(service, event_name="deploy_gate", now=ago, timeout=3600) for _ in range(3)
    ]
    expense = await stored(
        service, event_name="expense", now=ago, timeout=3600, data_type="object", answer_schema=APPROVAL_SCHEMA
    )
    late = await stored(service, event_name="nightly", now=ago, timeout=300)
    defaulted = await stored(service, event_name="nightly", now=ago, timeout=300, on_timeout=Default(value=True))
    await service.respond(approved.request_id, "true", DANA, "slack")
    await service.respond(rejected.request_id, "false", DANA, "slack")
    await service.respond(expense.request_id, {"approved": "false", "reason": "over budget"}, DANA, "slack")
    await service.cancel(cancelled.request_id, "superseded", CI, "api")
    assert await service.expire(late.request_id) and await service.expire(defaulted.request_id)
    async with http.get(f"{bot.url}/metrics", headers=AUTH) as reply:
        text = await reply.text()
    assert decision_samples(text, "_count") == {
        ("deploy_gate", "completed"): 1,
        ("deploy_gate", "rejected"): 1,
        ("deploy_gate", "cancelled"): 1,
        ("expense", "rejected"): 1,
        ("nightly", "expired"): 1,
        ("nightly", "defaulted"): 1,
    }
    sums = decision_samples(text, "_sum")
    assert sums["nightly", "expired"] == sums["nightly", "defaulted"] == 300, "at the deadline, 5 min after creation"
    assert 600 <= sums["deploy_gate", "completed"] < 900, "answered 10 minutes after creation"


def test_decision_labels_are_bounded() -> None:
    """Event names come from workflows: the first 50 a replica sees are labels, the rest count as "other"."""
    metrics, at = Metrics(), utcnow()
    for number in range(60):
        request_id = f"0b7c3d4e-1f2a-4b5c-8d9e-0f1a2b3c{number:04d}"
        record = OutcomeRecord(
            request_id=request_id, event_name=f"gate-{number}", outcome="completed", at=at, created_at=at - DAY
        )
        metrics.decided(record)
    metrics.decided(OutcomeRecord(request_id=request_id, event_name="gate-3", outcome="rejected", at=at))  # no time
    counted = decision_samples(metrics.render().decode(), "_count")
    assert len(counted) == 51 and counted["other", "completed"] == 10 and counted["gate-49", "completed"] == 1


def test_times_people_type() -> None:
    now = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
    span = Span.parse("2026-12-01", "2026-12-08T10:00:00+01:00", now)
    assert (span.since, span.until) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 8, 9, tzinfo=UTC))
    assert Span.parse("90m", "2026-12-08 09:00", now) == Span(now - timedelta(minutes=90), now - timedelta(minutes=30))
    assert Span.parse("7d", None, now, days=92) == Span(now - 7 * DAY, now)
    assert (span.first_day, span.last_day) == ("2026-12-01", "2026-12-08")
    assert Span(until=datetime(2026, 12, 8, tzinfo=UTC)).last_day == "2026-12-07", "until itself is excluded"

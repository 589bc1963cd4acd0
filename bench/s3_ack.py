"""Ack latency with 200 concurrent answers on S3 (moto server): ours vs stock `/submit/json`.

Child processes on loopback: moto's S3 server (counting requests, see `_peer.MotoChild`),
our bot (`hitl_chatops.bot.server.serve` with Slack on, `SLACK_API_URL` at the fake Web API from
`tests/fakes/slack.py`) and stock `flyteplugins.hitl._app:app` under uvicorn. Both write to
the same bucket: ours through `Store` (obstore, `AWS_ENDPOINT_URL_S3`), stock through flyte.storage
(obstore, `FLYTE_AWS_ENDPOINT`), with `response_path` set to the event's S3 response.json.
moto counts requests by method and by object, so the requests an answer makes before its ack
(the read of request.json, the create of response.json) are told from those after it.

Every round writes fresh pending bool events straight to S3 (request.json + pending marker, s3fs
`pipe`), lets our bot read them once through its pending list (`GET /api/v1/events`, before the
measurement: a warm replica, as after the notify or a reconciler pass in production), then sends
one answer per event, all in flight at once: ours through the form
(`POST /form/<id>?sig=...`), the API (`POST /api/v1/events/<id>/response`, bearer token) and a
signed Slack click (`POST /slack/events`); stock through `POST /submit/json`. Rounds alternate.
The form runs the same `HitlService.respond` as the API plus a page render; it is left out of the
default run to stay within the time budget (`--sides form api slack stock` adds it).

The floor, a third server (`_floor.py`), shows how much of our CPU is the storage requests and how
much our code: a bare aiohttp app that makes, through obstore's sync API on a thread pool as
`Store` must, exactly the requests our answer makes with no chat message (`floor`, against our
`api-unposted` row) and, the same way, stock's one PUT (`floor-put`).
Form, API and stock answer after the write; Slack acks first and writes after, so for Slack
"written" is measured separately. Finally every answer is read back through our `Store`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from _common import bench_parser, event_objects, machine_lines, percentile, publish, slack_click_body
from _peer import BUCKET, MotoChild, Server, s3fs_client, start_floor, start_ours, start_stock

from tests.fakes.slack import SIGNING_SECRET, FakeSlack, signed_headers

if TYPE_CHECKING:
    from hitl_chatops.bot.protocol import Request

READ_BACK = 100
SIDES = ("form", "api", "api-unposted", "slack", "floor", "floor-put", "stock")
DEFAULT_SIDES = ("api", "api-unposted", "slack", "floor", "floor-put", "stock")
OURS = ("form", "api", "api-unposted", "slack")
UNPOSTED = ("api-unposted", "floor")  # events with no chat message: nothing to update after the answer


@dataclass
class Sample:
    side: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    per_round: list[float] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    answers: int = 0
    written_per_round: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    cpu_per_round: list[float] = field(default_factory=list)  # ms per answer, each round
    moto_cpu: float = 0.0

    @property
    def cpu_ms(self) -> float:
        return self.server_cpu / self.answers * 1000 if self.answers else 0.0

    @property
    def moto_cpu_ms(self) -> float:
        return self.moto_cpu / self.answers * 1000 if self.answers else 0.0

    def ms(self, pct: float) -> float:
        return percentile(self.latencies, pct) * 1000

    by_object: Counter[str] = field(default_factory=Counter)

    @property
    def requests_per_answer(self) -> float:
        return sum(self.requests.values()) / self.answers if self.answers else 0.0

    @property
    def before_ack(self) -> float:
        """Requests per answer before the ack: all of stock's; ours read request.json and create response.json
        (a Slack click is acked before either)."""
        if self.side in ("stock", "floor-put"):
            return self.requests_per_answer
        if self.side == "slack":
            return 0.0
        critical = ("GET request.json", "PUT response.json", "GET response.json")
        return sum(self.by_object[k] for k in critical) / self.answers if self.answers else 0.0


def create_events(fs: Any, root: str, count: int, *, posted: bool = True) -> list[Request]:
    """Pending bool events as posted to Slack (unless not `posted`): the objects `Store.put_request` and
    `put_message` write, sent in one concurrent `pipe`."""
    from hitl_chatops.bot.protocol import Request

    objects: dict[str, bytes] = {}
    events = []
    for _ in range(count):
        written = event_objects(root, answered=False, posted=posted)
        events.append(Request.model_validate_json(next(v for k, v in written.items() if k.endswith("request.json"))))
        objects.update(written)
    fs.pipe(objects)
    return events


Answer = Callable[[aiohttp.ClientSession, "Request", int], Awaitable[int]]


def answerers(ours: Server, stock: Server, floor: Server, secret: str) -> dict[str, Answer]:
    from hitl_chatops.bot.links import form_url

    async def form(session: aiohttp.ClientSession, event: Request, _: int) -> int:
        async with session.post(form_url(ours.url, secret, event.request_id), data={"value": "true"}) as reply:
            await reply.read()
            return reply.status

    async def api(session: aiohttp.ClientSession, event: Request, _: int) -> int:
        url = f"{ours.url}/api/v1/events/{event.request_id}/response"
        body = {"value": True, "responder": "bench"}
        async with session.post(url, json=body, headers={"Authorization": f"Bearer {secret}"}) as reply:
            await reply.read()
            return reply.status

    async def slack(session: aiohttp.ClientSession, event: Request, n: int) -> int:
        body = slack_click_body(event, n)
        async with session.post(f"{ours.url}/slack/events", data=body.encode(), headers=signed_headers(body)) as reply:
            await reply.read()
            return reply.status

    async def submit(session: aiohttp.ClientSession, event: Request, _: int) -> int:
        body = {"request_id": event.request_id, "value": "true", "data_type": "bool"}
        async with session.post(
            f"{stock.url}/submit/json", json=body | {"response_path": event.response_path}
        ) as reply:
            await reply.read()
            return reply.status

    async def bare(session: aiohttp.ClientSession, event: Request, _: int) -> int:
        return await to_floor(session, f"{floor.url}/answer/{event.request_id}", event)

    async def bare_put(session: aiohttp.ClientSession, event: Request, _: int) -> int:
        return await to_floor(session, f"{floor.url}/put/{event.request_id}", event)

    return {
        "form": form,
        "api": api,
        "api-unposted": api,
        "slack": slack,
        "floor": bare,
        "floor-put": bare_put,
        "stock": submit,
    }


async def to_floor(session: aiohttp.ClientSession, url: str, event: Request) -> int:
    """The floor stores the body as is: a response as stock writes it (our `Store` reads it back)."""
    body = {"value": True, "status": "completed", "request_id": event.request_id, "data_type": "bool"}
    async with session.post(url, json=body) as reply:
        await reply.read()
        return reply.status


_OK = {"form": 200, "api": 201, "api-unposted": 201, "slack": 200, "floor": 201, "floor-put": 200, "stock": 200}


async def all_written(store: Any, events: list[Request]) -> int:
    """Wait until no event of the batch is left in the pending index; returns the LISTs it cost.

    The marker goes after response.json is created, so an empty index means every answer is in.
    """
    batch = {e.request_id for e in events}
    for lists in range(1, 1200):
        if not batch & set(await store.pending_ids()):
            return lists
        await asyncio.sleep(0.05)
    raise TimeoutError("answers were not all written within 60 s")


async def settle(moto: MotoChild, quiet: float = 0.5) -> Counter[str]:
    """Wait until moto saw no request for `quiet` s (message updates run after the answer)."""
    last = moto.requests()
    while True:
        await asyncio.sleep(quiet)
        now = moto.requests()
        if now == last:
            return now
        last = now


async def run_round(
    side: str, answer: Answer, events: list[Request], moto: MotoChild, server: Server, store: Any, sample: Sample | None
) -> None:
    connector = aiohttp.TCPConnector(limit=len(events))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def one(event: Request, n: int) -> tuple[float, int]:
            started = time.perf_counter()
            try:
                status = await answer(session, event, n)
            except (aiohttp.ClientError, TimeoutError):
                status = -1
            return time.perf_counter() - started, status

        if side in OURS:  # a warm replica: it has read the events once (notify, pending list, reconciler)
            await warm(session, server)
        await settle(moto)  # nothing of the previous round still running
        moto.reset()
        cpu, moto_cpu = server.cpu_seconds(), moto.cpu_seconds()
        started = time.perf_counter()
        results = await asyncio.gather(*(one(e, n) for n, e in enumerate(events)))
        elapsed = time.perf_counter() - started
        own_lists = await all_written(store, events) if side == "slack" else 0
        written = time.perf_counter() - started
        requests = await settle(moto)
        cpu, moto_cpu = server.cpu_seconds() - cpu, moto.cpu_seconds() - moto_cpu
        by_object = moto.requests(by_object=True)
        requests["LIST"] -= own_lists  # the bench's own pending-index polls
        by_object["LIST (listing)"] -= own_lists
    if sample is not None:
        sample.written_per_round.append(len(events) / written)
        sample.server_cpu += cpu
        sample.cpu_per_round.append(cpu / len(events) * 1000)
        sample.moto_cpu += moto_cpu
        sample.latencies += [latency for latency, _ in results]
        sample.statuses.update(status for _, status in results)
        sample.errors += sum(status != _OK[side] for _, status in results)
        sample.per_round.append(len(events) / elapsed)
        sample.requests += requests
        sample.by_object += by_object
        sample.answers += len(events)


async def warm(session: aiohttp.ClientSession, ours: Server) -> None:
    headers = {"Authorization": f"Bearer {os.environ['HITL_BENCH_SECRET']}"}
    async with session.get(f"{ours.url}/api/v1/events?status=pending", headers=headers) as reply:
        assert reply.status == 200, reply.status


async def read_back(fs: Any, root: str, store: Any, events: list[Request], sample: int) -> tuple[int, int]:
    """Every answer exists (one paginated listing), and a random `sample` reads back True via `Store`."""
    listed = {p.rsplit("/", 2)[-2] for p in fs.find(f"{root}/hitl-requests") if p.endswith("/response.json")}
    present = sum(e.request_id in listed for e in events)
    chosen = random.sample(events, min(sample, len(events)))
    responses = await asyncio.gather(*(store.get_response(e.request_id) for e in chosen))
    return present, sum(r is not None and r.value is True for r in responses)


async def bench(
    answers: int, rounds: int, warmup: int, sides: list[str]
) -> tuple[list[Sample], list[str], tuple[int, int], int, float]:
    from hitl_chatops.bot.store import Store

    moto = MotoChild.start()
    fake = FakeSlack().start()
    os.environ.update(
        {
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": f"{fake.url}/api",
            # The reconciler walks every pending event each interval; the bench's events were never
            # notified and stock leaves its markers, so a step landing in a round would bill that
            # round for unrelated work. Off here: this bench measures the answer path only.
            "HITL_CHATOPS_RECONCILE_SECONDS": "0",
        }
    )
    servers: list[Server] = []
    try:
        fs = s3fs_client()
        root = f"{BUCKET}/{uuid.uuid4().hex[:12]}/hitl"
        secret = os.environ["HITL_BENCH_SECRET"] = secrets.token_urlsafe(32)
        ours, stock, floor = start_ours(f"s3://{root}", secret), start_stock(), start_floor(f"s3://{root}")
        servers = [ours, stock, floor]
        answer = answerers(ours, stock, floor, secret)
        server_of = {side: ours if side in OURS else floor if side.startswith("floor") else stock for side in SIDES}
        store = Store(f"s3://{root}")
        samples = {side: Sample(side) for side in sides}
        for side in sides:
            events = create_events(fs, root, warmup, posted=side not in UNPOSTED)
            await run_round(side, answer[side], events, moto, server_of[side], store, None)
        answered: list[Request] = []
        setup = 0.0
        for _ in range(rounds):
            for side in sides:
                started = time.perf_counter()
                events = create_events(fs, root, answers, posted=side not in UNPOSTED)
                setup += time.perf_counter() - started
                await run_round(side, answer[side], events, moto, server_of[side], store, samples[side])
                answered += events
        present, good = await read_back(fs, root, store, answered, READ_BACK)
        notes = [f"{s.name}: {s.note}" for s in servers]
        return list(samples.values()), notes, (present, good), len(answered), setup
    finally:
        for server in servers:
            server.stop()
        fake.stop()
        moto.stop()


ENDPOINTS = {
    "form": "ours `POST /form/<id>?sig=…`",
    "api": "ours `POST /api/v1/events/<id>/response`",
    "api-unposted": "ours, the same, on events with no chat message to update",
    "slack": "ours `POST /slack/events` (signed click; acks before writing)",
    "floor": "floor: bare aiohttp, the requests of an answer with no chat message (`_floor.py`)",
    "floor-put": "floor: bare aiohttp, stock's one PUT (`_floor.py`)",
    "stock": "stock `POST /submit/json`",
}


def heading(args: argparse.Namespace, setup: float) -> list[str]:
    """The result file's title, machine, command and set-up, and the table's header."""
    return [
        f"# Ack latency, {args.answers} concurrent answers on S3 (moto server): ours vs stock flyteplugins-hitl",
        "",
        *machine_lines(["moto", "s3fs", "obstore", "aiohttp", "slack-bolt", "fastapi", "uvicorn", "flyteplugins-hitl"]),
        f"- command: `python bench/s3_ack.py --answers {args.answers} --rounds {args.rounds} --warmup {args.warmup} "
        f"--sides {' '.join(args.sides)}`",
        f"- load: {args.rounds} alternating rounds x {args.answers} fresh pending bool events per endpoint, all "
        f"{args.answers} answers in flight at once; {args.warmup} warm-up answers each; events written straight "
        f"to S3 ({setup:.1f} s of set-up in all)",
        "- store: one bucket on moto's S3 server (child process, loopback); ours via obstore (`Store`), stock via "
        "flyte.storage (obstore); our replica warm: it listed the round's events once before the round",
        "- our bot runs with Slack on and its reconciler off (`HITL_CHATOPS_RECONCILE_SECONDS=0`): only the answer "
        "path is measured",
        "",
        "| endpoint | answers | errors | server CPU ms/answer | S3 requests per answer before the ack | in all "
        "| moto CPU ms/answer | ack p50 ms | ack p99 ms | acks/s | written/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]


def report(
    samples: list[Sample],
    notes: list[str],
    checked: tuple[int, int],
    total: int,
    setup: float,
    args: argparse.Namespace,
) -> list[str]:
    present, good = checked
    lines = heading(args, setup)
    for s in samples:
        lines.append(
            f"| {ENDPOINTS[s.side]} | {s.answers} | {s.errors} | {s.cpu_ms:.2f} | {s.before_ack:.2f} "
            f"| {s.requests_per_answer:.2f} | {s.moto_cpu_ms:.1f} | {s.ms(50):.0f} | {s.ms(99):.0f} "
            f"| {statistics.median(s.per_round):.0f} | {statistics.median(s.written_per_round):.0f} |"
        )
    by = {s.side: s for s in samples}
    stock = by["stock"]
    ours_sides = [side for side in OURS if side in by]
    ratios = "; ".join(
        f"{side} p50 {by[side].ms(50) / stock.ms(50):.2f}x, p99 {by[side].ms(99) / stock.ms(99):.2f}x"
        for side in ours_sides
    )
    cpu = "; ".join(f"{side} {by[side].cpu_ms / stock.cpu_ms:.2f}x" for side in ours_sides)
    lines += ["", f"**ours/stock server CPU per answer: {cpu}** (below 1 favours ours)", ""]
    lines += floor_lines(by)
    lines += [
        f"**ours/stock ack latency: {ratios}** (below 1 favours ours)",
        "",
        "S3 requests per answer, by method and object: "
        + "; ".join(
            f"{s.side}: " + ", ".join(f"{n / s.answers:.2f} {m}" for m, n in sorted(s.by_object.items()) if n)
            for s in samples
        )
        + " (Slack rows include the write after the ack).",
        "",
        f"Answers in the bucket: {present} of {total}; of {min(READ_BACK, total)} picked at random, "
        f"{good} read back through our `Store` as True. Status codes: "
        + "; ".join(f"{s.side} {dict(s.statuses)}" for s in samples)
        + ".",
        "",
        "Per answer, ours reads no request.json (the replica read it once before; it never changes), no "
        "response.json (the exclusive create refuses a second answer by itself; the response is read only when "
        "an answer is refused), and makes one exclusive-create PUT of response.json (`If-None-Match: *`) before "
        "the ack. After the ack, two jobs run side by side on the store's I/O threads: the outcome's entry in "
        "`hitl-history/` (a PUT), then the pending marker's DELETE (markers dropped together share one bulk "
        "`POST ?delete`); and one LIST (prefix `messages/`) with one GET of the event's chat message record "
        "(none on `api-unposted` events), then the message's `chat.update`. Stock does one unconditional PUT to "
        "whatever path the client sent. The floor (`_floor.py`) makes `api-unposted`'s requests, or stock's one "
        "PUT, from a bare aiohttp handler through obstore's sync API on a thread pool, as `Store` must, with "
        "the two after the ack in one pool call (one thread trip fewer than ours). "
        "Acks/s and written/s are medians over rounds; they differ only for "
        "Slack, whose written/s runs until the last pending marker is gone (polled every 50 ms). CPU is "
        "user+system of the server process and of moto's process over the round, from `/proc`.",
        "",
        "How the servers ran:",
        *(f"- {note}" for note in notes),
    ]
    return lines


def median_ratio(a: Sample, b: Sample) -> float:
    """The median over rounds of a's CPU per answer over b's (each pair measured minutes apart at most)."""
    return statistics.median(x / y for x, y in zip(a.cpu_per_round, b.cpu_per_round, strict=True))


def floor_lines(by: dict[str, Sample]) -> list[str]:
    """Server CPU per answer against the floors: how much is the requests, how much our code."""
    stock, floor, put = by["stock"], by.get("floor"), by.get("floor-put")
    parts = []
    if floor is not None and "api-unposted" in by:
        parts.append(f"ours (api-unposted)/floor {by['api-unposted'].cpu_ms / floor.cpu_ms:.2f}x")
    if floor is not None:
        parts.append(f"floor/stock {floor.cpu_ms / stock.cpu_ms:.2f}x")
    if put is not None:
        parts.append(f"floor-put/stock {put.cpu_ms / stock.cpu_ms:.2f}x")
    if floor is not None and put is not None:
        parts.append(f"floor/floor-put {floor.cpu_ms / put.cpu_ms:.2f}x")
    if not parts:
        return []
    sides = [side for side in ("api-unposted", "floor", "floor-put", "stock") if side in by]
    rounds = "; ".join(f"{side} " + " / ".join(f"{ms:.2f}" for ms in by[side].cpu_per_round) for side in sides)
    pairs = [("api-unposted", "floor"), ("api-unposted", "stock"), ("floor", "stock"), ("floor-put", "stock")]
    medians = "; ".join(f"{a}/{b} {median_ratio(by[a], by[b]):.2f}x" for a, b in pairs if a in by and b in by)
    return [
        f"**Against the floor, server CPU per answer: {'; '.join(parts)}**",
        "",
        f"Server CPU ms/answer round by round (rounds alternate between sides): {rounds}. "
        f"Median of the rounds' ratios: {medians}.",
        "",
    ]


def main() -> None:
    parser = bench_parser(__doc__, "s3_ack.md")
    parser.add_argument("--answers", type=int, default=200, help="events (and concurrent answers) per round")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(DEFAULT_SIDES))
    args = parser.parse_args()
    samples, notes, good, total, setup = asyncio.run(bench(args.answers, args.rounds, args.warmup, args.sides))
    lines = report(samples, notes, good, total, setup, args)
    publish(args.out, lines)


if __name__ == "__main__":
    main()

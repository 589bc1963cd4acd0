"""Signed Slack clicks: our `POST /slack/events` (slack_bolt) vs stock flyteplugins-hitl's `POST /submit/json`.

Child processes on loopback: our bot with Slack on (HTTP mode, `SLACK_API_URL` pointing at the
tests' fake Web API, `tests/fakes/slack.py`, in a child of its own), stock `flyteplugins.hitl._app:app`
under uvicorn, and three peers, each in a process: a handler that only reads and answers, a bolt app
configured as ours whose listener only acks, and the work floor: that bolt app doing only the work a
click cannot skip (a durable exclusive create of response.json and one `chat.update`, see `work_floor`). Every
round creates fresh pending bool events (ours with the record of their posted Slack message, so
every answer updates it, as in production) and fires one click per event, shaped like Slack's, all
in flight at once (default 200); rounds alternate ours/stock. Each server has its own store folder
on the same filesystem.

Measured per click: the ack latency (HTTP response time; Slack wants it under 3 s). Our bot acks
before it writes (bolt runs the listener on after `ack()`), so throughput is measured end to end:
from the first click sent until every response.json exists in the store (for stock the HTTP
response already means written). Our CPU also covers the `chat.update`s that follow. Finally
every answer is read back through our `Store`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    LoadSample,
    bench_parser,
    create_events,
    machine_lines,
    per_round_ratios,
    publish,
    record_slack_messages,
    slack_click_body,
    store_request,
)
from _peer import Server, spawn, start_ours, start_slack, start_stock, thread_cpu_seconds
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from hitl_chatops.bot.disk_worker import DiskWorker
from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.server import tune_gc
from hitl_chatops.bot.store import Store
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, signed_headers

FLOORS = ("floor", "bolt")  # servers that only ack
WORK = "work-floor"  # bolt, then only what a click cannot skip (`work_floor`)
UPDATING = ("ours", WORK)  # servers that chat.update the clicked message
REQUEST_ID = re.compile(r"[0-9a-f-]{36}")


# -- the peers, each in a process of its own --------------------------------------------------


def bolt_like_ours(client: AsyncWebClient) -> AsyncApp:
    """A bolt app configured as ours: signature check (bolt's own), `process_before_response`."""
    return AsyncApp(client=client, signing_secret=SIGNING_SECRET, process_before_response=True)


def serve_peers(port: int, api_url: str, folder: str = "") -> None:
    """The peers that ack: `POST /slack/events` reads the body and answers 200, nothing else;
    `POST /bolt/events` runs the request through a bolt app configured as ours (signature check,
    payload parsing, middleware, a listener) whose listener only acks. Given a store folder,
    `POST /work/events` is the work floor (`work_floor`). Slack's Web API is the fake at `api_url`.
    """

    async def floor(request: web.Request) -> web.Response:
        await request.read()
        return web.Response()

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    bolt = bolt_like_ours(AsyncWebClient(token=BOT_TOKEN, base_url=f"{api_url}/"))

    @bolt.action(re.compile(".*"))
    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_post("/slack/events", floor)
    app.router.add_post("/bolt/events", dispatcher(bolt))
    what = "one handler reads the body and answers 200, one runs bolt to an ack"
    if folder:
        work, session = work_floor(api_url, Path(folder))
        app.router.add_post("/work/events", dispatcher(work))
        app.cleanup_ctx.append(session)
        what = "bolt to an ack, then one durable exclusive create and one chat.update"
    print(f"aiohttp: {what} (backlog and garbage collection as ours: `tune_gc`)", flush=True)

    async def tuned(_: web.Application) -> None:
        tune_gc()

    app.on_startup.append(tuned)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=2048)


def dispatcher(bolt: AsyncApp) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler that hands the request to `bolt` (bolt's own aiohttp adapter)."""

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    return handle


def start_peer(name: str, api_url: str, *work: str) -> Server:
    """The peers' script in a child process; `work` (a store folder) adds the work floor."""
    script = str(Path(__file__).resolve())
    return spawn(name, lambda port: [sys.executable, script, "--serve-peers", str(port), api_url, *work], "/health")


# -- the work floor: what a click cannot skip, with the same libraries and our disk worker ------


def answered_message(folder: Path) -> tuple[str, list[dict[str, Any]]]:
    """The text and blocks of an answered bool event as ours renders it, built once: the update's payload."""
    from hitl_chatops.adapters.slack import _blocks
    from hitl_chatops.bot.protocol import Responder, Response, utcnow
    from hitl_chatops.bot.view import event_view

    request = store_request(Store(folder.as_uri()))
    response = Response(
        value=True,
        request_id=request.request_id,
        data_type="bool",
        responder=Responder(platform="slack", user_id="U0BENCH0000", user_name="u0bench0000"),
        responded_at=utcnow(),
        via="slack",
    )
    view = event_view(request, response)
    return _blocks.summary_text(view), [block.to_dict() for block in _blocks.ended_blocks(view)]


def work_floor(api_url: str, folder: Path) -> tuple[AsyncApp, Callable[[web.Application], AsyncIterator[None]]]:
    """Bolt configured as ours, whose listener acks, then does only what a click cannot skip.

    That is: a durable exclusive create of the event's response.json (our disk worker's group commit:
    temp file, one `syncfs` per batch, hard link), then one `chat.update` of the clicked message
    through slack_sdk's client on one pooled session, with a payload built at start. No reads, no
    checks beyond the id's shape, no models. Also the bolt app and the lifespan of its session.
    """
    logger = logging.getLogger("slack_sdk.web.async_client")
    logger.setLevel(logging.WARNING)  # as ours: slack_sdk formats debug lines unless the level is set
    client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{api_url}/", logger=logger)
    bolt = bolt_like_ours(client)
    writes = DiskWorker()
    text, blocks = answered_message(folder)
    events = os.path.join(folder, "hitl-requests")
    running: set[asyncio.Task[None]] = set()

    async def answer(body: dict[str, Any], request_id: str, value: bool) -> None:
        user = body["user"]
        response = {
            "value": value,
            "request_id": request_id,
            "data_type": "bool",
            "responder": {"platform": "slack", "user_id": user["id"], "user_name": user["username"]},
            "responded_at": datetime.now(UTC).isoformat(),
            "via": "slack",
        }
        path = os.path.join(events, request_id, "response.json")
        await writes.put(path, json.dumps(response).encode(), durable=True, publish=os.link)
        where = body["container"]
        update = {"channel": where["channel_id"], "ts": where["message_ts"], "text": text, "blocks": blocks}
        await client.api_call("chat.update", json=update)

    @bolt.action(re.compile(".*"))
    async def ack_then_work(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        request_id, _, pick = str(action["value"]).partition("|")
        if REQUEST_ID.fullmatch(request_id):  # no client text shapes a path
            task = asyncio.create_task(answer(body, request_id, pick == "true"))
            running.add(task)
            task.add_done_callback(running.discard)

    async def session(_: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as client.session:
            yield

    return bolt, session


# -- load --------------------------------------------------------------------------------------


def raw_post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One complete HTTP/1.1 request, built before the clock starts (Slack signs, not the bot)."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def click_slack(event: Request, n: int, path: str = "/slack/events") -> bytes:
    """A signed click, as Slack sends it, on `path`."""
    body = slack_click_body(event, n)
    return raw_post(path, body.encode(), signed_headers(body))


def click_stock(event: Request, _: int) -> bytes:
    body = {"request_id": event.request_id, "value": "true", "data_type": "bool", "response_path": event.response_path}
    return raw_post("/submit/json", json.dumps(body).encode(), {"Content-Type": "application/json"})


async def send(port: int, request: bytes) -> tuple[float, bool]:
    """Latency and success of one request on its own connection, read to the server's close.

    Raw asyncio streams keep the load generator cheap: on a small machine an HTTP client library
    would take CPU from the servers it is measuring.
    """
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    reply = await reader.read()
    writer.close()
    return time.perf_counter() - started, reply.startswith(b"HTTP/1.1 200")


async def all_written(events: list[Request]) -> None:
    """Poll the store folder until every event has its response.json (a minute at most).

    A poll stats files only up to the first one still missing, so waiting costs the load generator
    almost no CPU (stat-ing every missing file every 2 ms took CPU from the servers it measures).
    """
    missing = deque(Path(e.response_path) for e in events)
    deadline = time.monotonic() + 60
    while missing:
        while missing and missing[0].exists():
            missing.popleft()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(missing)} answers never written")
        await asyncio.sleep(0.002)


async def updates_sent(fake: Server, total: int) -> None:
    """Wait until the fake Slack has received `total` `chat.update` calls (a minute at most)."""
    port = int(fake.url.rsplit(":", 1)[1])
    ask = b"GET /fake/calls/chat.update HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    deadline = time.monotonic() + 60
    while True:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(ask)
        seen = int((await reader.read()).partition(b"\r\n\r\n")[2])
        writer.close()
        if seen >= total:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{total - seen} message updates never sent")
        await asyncio.sleep(0.01)


async def run_round(
    server: Server, events: list[Request], sample: LoadSample | None, settle: Callable[[], Awaitable[None]] | None
) -> None:
    """One click per event, every click in flight at once.

    Throughput stops when the last answer is written. The CPU count also covers what `settle` waits
    for (the message updates, sent after the answer), so none of that work spills into the next round.
    """
    if server.name == "stock":
        requests = [click_stock(event, n) for n, event in enumerate(events)]
    else:
        path = {"bolt": "/bolt/events", WORK: "/work/events"}.get(server.name, "/slack/events")
        requests = [click_slack(event, n, path) for n, event in enumerate(events)]
    port = int(server.url.rsplit(":", 1)[1])
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    results = await asyncio.gather(*(send(port, request) for request in requests))
    if server.name not in FLOORS:  # they write nothing
        await all_written(events)
    elapsed = time.perf_counter() - started
    if settle is not None:
        await settle()
    if sample is not None:
        sample.cpu_seconds += server.cpu_seconds() - cpu_before
        sample.latencies += [latency for latency, _ in results]
        sample.errors += sum(not ok for _, ok in results)
        sample.seconds += elapsed
        sample.per_round.append(len(events) / elapsed)


async def read_back(stores: dict[str, Store], answered: list[tuple[str, Request]]) -> int:
    """How many answers our `Store` reads back as True (ours also with the Slack responder)."""
    good = 0
    for name, event in answered:
        response = await stores[name].get_response(event.request_id)
        good += response is not None and response.value is True
    return good


@dataclass
class Measured:
    """What `bench` measured, for `report`."""

    samples: dict[str, LoadSample]
    notes: list[str]
    good: int  # answers read back as True
    total: int  # of all answered
    fake_ms: float  # the fake Slack's CPU per click of ours (its chat.updates)
    threads: tuple[float, float]  # ours' CPU seconds: its event loop thread, its other threads (the disk thread)
    per_round: dict[str, list[float]]  # CPU ms per click in each round, by server


async def bench(clicks: int, rounds: int, warmup: int) -> Measured:
    # One store folder per server, on the same filesystem: our bot's reconciler then sees only its
    # own events, not stock's (whose pending markers stock never drops) or the floors' (never answered).
    folder = Path(tempfile.mkdtemp(prefix="hitl-bench-slack-"))
    stores = {name: Store((folder / name).as_uri()) for name in ("ours", "stock", *FLOORS, WORK)}
    secret = secrets.token_urlsafe(32)
    fake = start_slack()
    api_url = f"{fake.url}/api"
    os.environ.update({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": api_url})
    servers: list[Server] = []
    updates = 0  # chat.update calls ours and the work floor owe the fake so far: one per answered event
    fake_cpu = 0.0
    loop_cpu = other_cpu = 0.0  # ours, by thread
    per_round: dict[str, list[float]] = {}

    async def events_for(server: Server, count: int) -> list[Request]:
        """Fresh pending events; ours also gets each event's posted message, which its answer updates."""
        nonlocal updates
        events = await create_events(stores[server.name], count)
        if server.name == "ours":
            await record_slack_messages(stores["ours"], events)
        if server.name in UPDATING:
            updates += count
        return events

    def settle(server: Server) -> Callable[[], Awaitable[None]] | None:
        return (lambda: updates_sent(fake, updates)) if server.name in UPDATING else None

    try:
        servers = [
            start_ours((folder / "ours").as_uri(), secret),
            start_stock(),
            *(start_peer(name, api_url) for name in FLOORS),
            start_peer(WORK, api_url, str(folder / WORK)),
        ]
        samples = {s.name: LoadSample(s.name) for s in servers}
        answered: list[tuple[str, Request]] = []
        for server in servers:
            await run_round(server, await events_for(server, warmup), None, settle(server))
        for _ in range(rounds):
            for server in servers:
                batch = await events_for(server, clicks)
                fake_before, threads_before = fake.cpu_seconds(), thread_cpu_seconds(server.process.pid)
                cpu_before = samples[server.name].cpu_seconds
                await run_round(server, batch, samples[server.name], settle(server))
                spent_ms = (samples[server.name].cpu_seconds - cpu_before) * 1000 / clicks
                per_round.setdefault(server.name, []).append(spent_ms)
                if server.name == "ours":
                    fake_cpu += fake.cpu_seconds() - fake_before
                    pid, spent = server.process.pid, thread_cpu_seconds(server.process.pid)
                    loop_cpu += spent[pid] - threads_before[pid]
                    other_cpu += sum(cpu - threads_before.get(tid, 0.0) for tid, cpu in spent.items() if tid != pid)
                answered += [(server.name, event) for event in batch] if server.name not in FLOORS else []
        good = await read_back(stores, answered)
        notes = [f"{s.name}: {s.note}" for s in servers]
        fake_ms = fake_cpu * 1000 / samples["ours"].count
        return Measured(samples, notes, good, len(answered), fake_ms, (loop_cpu, other_cpu), per_round)
    finally:
        for server in [*servers, fake]:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)  # some 15,000 small files a run


def report(measured: Measured, args: argparse.Namespace) -> list[str]:
    samples = list(measured.samples.values())
    ours, stock = samples[:2]
    endpoints = {
        "ours": "`POST /slack/events` (signed block_actions, bolt)",
        "stock": "`POST /submit/json`",
        "floor": "`POST /slack/events` (read, answer 200)",
        "bolt": "`POST /bolt/events` (bolt, listener only acks)",
        WORK: "`POST /work/events` (bolt, ack, durable create, `chat.update`)",
    }
    lines = [
        "# Slack clicks: ours (signed, via slack_bolt) vs stock flyteplugins-hitl `/submit/json`",
        "",
        *machine_lines(["aiohttp", "slack-bolt", "slack-sdk", "fastapi", "uvicorn", "flyteplugins-hitl"]),
        f"- load: {args.rounds} alternating rounds x {args.clicks} distinct bool events per server, "
        f"all {args.clicks} clicks in flight at once; {args.warmup} warm-up clicks each (not counted)",
        "- store: a local folder per server on one filesystem; Slack Web API: the tests' fake "
        "(`tests/fakes/slack.py`) in a child process on loopback",
        "",
        "| server | endpoint | clicks | errors | ack p50 ms | ack p99 ms | written/s (end to end) | CPU ms/click |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [s.row(endpoints[s.name], unit=" (acks/s)" if s.name in FLOORS else "") for s in samples]
    lines += [
        "",
        per_round_ratios("written/s", ours.per_round, stock.per_round),
        "",
        ours.versus(stock),
        "",
        f"Answers read back through our `Store` as True: {measured.good} of {measured.total} "
        "(ours, stock and the work floor).",
        "",
        *floor_lines(measured),
        "",
        "What each side does per click: ours verifies Slack's HMAC signature and timestamp, parses the "
        "form-encoded payload (shaped like Slack's, with the clicked message's blocks: about 4 KB), runs "
        "bolt's middleware, acks, then reads request.json, checks answered / deadline / responders, "
        "exclusive-creates response.json (temp file, one sync per batch, hard link), drops the pending "
        "marker and, in the background, reads the event's message record and `chat.update`s that message "
        "through slack_sdk. Stock converts the value and overwrites whatever `response_path` the client "
        "names, unauthenticated. Ours' CPU per click includes the update (each round waits for all of "
        f"them); the fake Slack's own CPU for those calls, {measured.fake_ms:.2f} ms per click, is not counted.",
        "",
        "How the servers ran:",
        *(f"- {note}" for note in measured.notes),
        "- child processes on 127.0.0.1, no uvloop/httptools; uvicorn 1 worker, access log off",
    ]
    return lines


def floor_lines(measured: Measured) -> list[str]:
    """What the three floors say: any Python server, bolt alone, and bolt plus the work a click cannot skip."""
    ours, stock, floor, bolt, work = (measured.samples[name] for name in ("ours", "stock", "floor", "bolt", WORK))
    loop_ms, other_ms = (seconds * 1000 / ours.count for seconds in measured.threads)
    return [
        f"The floor is what this machine allows any Python server under this load: p99 {floor.ms(99):.0f} ms "
        f"for a handler that does nothing; ours acks at {ours.ms(99) / floor.ms(99):.1f}x the floor's p99 and "
        f"uses {ours.cpu_ms / floor.cpu_ms:.1f}x its CPU per click.",
        "",
        f"Bolt alone, configured as ours with a listener that only acks, acks {bolt.throughput:.0f} clicks/s at "
        f"{bolt.cpu_ms:.2f} ms CPU per click: {bolt.throughput / stock.throughput:.2f}x stock's throughput and "
        f"{bolt.cpu_ms / stock.cpu_ms:.2f}x its CPU per click, before any of our work. It is the ceiling for any "
        "bolt-based handler on this machine.",
        "",
        f"The work floor is that bolt app whose listener acks, then does only what a click cannot skip, with the "
        "same libraries and, of ours, only the disk worker that makes the write durable: a durable exclusive "
        "create of response.json (temp file, one `syncfs` per batch, hard link: `bot/disk_worker.py`, as ours) "
        "and one `chat.update` of the clicked message through slack_sdk's "
        "client on one pooled session, with blocks built at start. It reads nothing, checks nothing but the id's "
        "shape, renders nothing and indexes nothing, which ours does (the event and its message record read, "
        "who may answer and the value checked, the answered message rendered and validated by slack_sdk's "
        f"models, the outcome indexed, the pending marker dropped). It uses {work.cpu_ms:.2f} ms CPU per click.",
        "",
        f"**ours/bolt-only: CPU per click {ours.cpu_ms / bolt.cpu_ms:.1f}x** (issue 17's target: 2x); "
        f"**ours/work floor: {ours.cpu_ms / work.cpu_ms:.1f}x; "
        f"work floor/bolt-only: {work.cpu_ms / bolt.cpu_ms:.1f}x**, "
        "the least any bolt app that writes the answer durably and updates the message can reach here. Of ours' "
        f"{ours.cpu_ms:.2f} ms, {loop_ms:.2f} ms are its event loop thread (HTTP, bolt, checks, the message update) "
        f"and {other_ms:.2f} ms its other threads: the disk thread's durable writes (temp file, `syncfs`, link).",
        "",
        round_ratios(measured.per_round),
    ]


def round_ratios(per_round: dict[str, list[float]]) -> str:
    """The three CPU ratios in each round (each round runs every server once, one after another)."""
    rounds = list(zip(per_round["ours"], per_round["bolt"], per_round[WORK], strict=True))
    cpu = "; ".join(f"{o:.2f} / {b:.2f} / {w:.2f}" for o, b, w in rounds)

    def spread(ratios: list[float]) -> str:
        return f"{min(ratios):.1f} to {max(ratios):.1f}x"

    return (
        f"Per round, CPU ms per click (ours / bolt / work floor): {cpu}. Over the rounds, ours/bolt-only "
        f"{spread([o / b for o, b, _ in rounds])}, ours/work floor {spread([o / w for o, _, w in rounds])}, "
        f"work floor/bolt-only {spread([w / b for _, b, w in rounds])}."
    )


def main() -> None:
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--serve-peers":
        serve_peers(int(sys.argv[2]), *sys.argv[3:])
        return
    parser = bench_parser(__doc__, "slack_clicks.md")
    parser.add_argument("--clicks", type=int, default=200, help="events (and concurrent clicks) per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    publish(args.out, report(asyncio.run(bench(args.clicks, args.rounds, args.warmup)), args))


if __name__ == "__main__":
    main()

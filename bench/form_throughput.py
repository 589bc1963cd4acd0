"""Answer throughput: our `POST /form/<id>?sig=...` vs stock flyteplugins-hitl's `POST /submit/json`.

Both servers run side by side in one bench run (each in its own child process, see `_peer.py`)
and write into the same local store folder; rounds alternate ours/stock so drift (page cache,
CPU boost, a noisy neighbour) hits both alike. Every answer goes to a distinct pending event,
and afterwards every response file is read back through our `Store`, so the bench also proves
both servers wrote answers our `wait()` accepts.

Ours does more per answer, by design: verify the link's HMAC, read request.json, check that
nobody answered, check the deadline, validate against min/max, exclusive-create response.json
(temp file, batched sync, hard link), drop the pending marker, render a page. Stock converts the value
and overwrites whatever `response_path` the client names.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path

import aiohttp
from _common import LoadSample, bench_parser, create_events, machine_lines, per_round_ratios, publish
from _peer import Server, start_ours, start_stock

from hitl_chatops.bot.links import form_url
from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.store import Store

ANSWER = 7
EVENT = {"prompt": "How many replicas?", "data_type": "int", "min_value": 1, "max_value": 10}


async def answer_ours(session: aiohttp.ClientSession, server: Server, secret: str, event: Request) -> bool:
    url = form_url(server.url, secret, event.request_id)
    async with session.post(url, data={"value": str(ANSWER)}) as reply:
        await reply.read()
        return reply.status == 200


async def answer_stock(session: aiohttp.ClientSession, server: Server, _: str, event: Request) -> bool:
    body = {
        "request_id": event.request_id,
        "value": ANSWER,
        "data_type": "int",
        "response_path": event.response_path,
    }
    async with session.post(f"{server.url}/submit/json", json=body) as reply:
        await reply.read()
        return reply.status == 200


async def run_round(
    server: Server, secret: str, events: list[Request], concurrency: int, sample: LoadSample | None
) -> None:
    """Answer every event once with `concurrency` clients in flight; record into `sample` if given."""
    answer = answer_ours if server.name == "ours" else answer_stock
    queue = iter(events)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for event in queue:
                started = time.perf_counter()
                ok = await answer(session, server, secret, event)
                elapsed = time.perf_counter() - started
                if sample is not None:
                    sample.latencies.append(elapsed)
                    sample.errors += not ok

        started, cpu_before = time.perf_counter(), server.cpu_seconds()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        if sample is not None:
            elapsed = time.perf_counter() - started
            sample.cpu_seconds += server.cpu_seconds() - cpu_before
            sample.seconds += elapsed
            sample.per_round.append(len(events) / elapsed)


async def check_answers(store: Store, events: list[Request]) -> int:
    """How many events have a response our `Store` reads back as the typed answer."""
    gate = asyncio.Semaphore(32)

    async def ok(event: Request) -> bool:
        async with gate:
            response = await store.get_response(event.request_id)
        return response is not None and response.value == ANSWER and response.status == "completed"

    return sum(await asyncio.gather(*map(ok, events)))


async def bench(events: int, concurrency: int, rounds: int, warmup: int) -> tuple[list[LoadSample], list[str], int]:
    folder = Path(tempfile.mkdtemp(prefix="hitl-bench-store-"))
    store_url = folder.as_uri()
    store = Store(store_url)
    secret = secrets.token_urlsafe(32)
    servers = [start_ours(store_url, secret), start_stock()]
    try:
        samples = {s.name: LoadSample(s.name) for s in servers}
        answered: list[Request] = []
        for server in servers:
            await run_round(server, secret, await create_events(store, warmup, **EVENT), concurrency, None)
        for _ in range(rounds):
            for server in servers:
                batch = await create_events(store, events, **EVENT)
                await run_round(server, secret, batch, concurrency, samples[server.name])
                answered += batch
        readable = await check_answers(store, answered)
        return list(samples.values()), [f"{s.name}: {s.note}" for s in servers], readable - len(answered)
    finally:
        for server in servers:
            server.stop()


def report(samples: list[LoadSample], notes: list[str], unreadable: int, args: argparse.Namespace) -> list[str]:
    ours, stock = samples
    lines = [
        "# Form answer throughput: ours vs stock flyteplugins-hitl",
        "",
        *machine_lines(["aiohttp", "fastapi", "uvicorn", "flyte", "flyteplugins-hitl"]),
        f"- load: {args.rounds} alternating rounds x {args.events} distinct events per server, "
        f"{args.concurrency} concurrent aiohttp clients, {args.warmup} warm-up answers each (not counted)",
        "- store: one local folder (ext4 temp dir) shared by both servers",
        "",
        "| server | endpoint | answers | errors | p50 ms | p99 ms | answers/s | server CPU ms/answer |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    endpoints = {"ours": "`POST /form/<id>?sig=…` (form-encoded `value`)", "stock": "`POST /submit/json`"}
    lines += [s.row(endpoints[s.name]) for s in samples]
    lines += [
        "",
        per_round_ratios("answers/s", ours.per_round, stock.per_round),
        "",
        ours.versus(stock),
        "",
        f"Responses read back through our `Store` as value {ANSWER}: "
        + ("all" if unreadable == 0 else f"{unreadable} missing or wrong"),
        "",
        "How the servers ran:",
        *(f"- {note}" for note in notes),
        "- both in child processes on 127.0.0.1, no uvloop/httptools installed; uvicorn 1 worker, access log off",
    ]
    return lines


def main() -> None:
    parser = bench_parser(__doc__, "form_throughput.md")
    parser.add_argument("--events", type=int, default=500, help="distinct events per server per round")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    samples, notes, unreadable = asyncio.run(bench(args.events, args.concurrency, args.rounds, args.warmup))
    lines = report(samples, notes, unreadable, args)
    publish(args.out, lines)
    print(json.dumps({s.name: {"p50_ms": s.ms(50), "p99_ms": s.ms(99), "per_s": s.throughput} for s in samples}))


if __name__ == "__main__":
    main()

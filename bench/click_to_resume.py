"""Answer → task resumed, in real Flyte local runs, against the poll interval.

`flyte.init()`, then for each poll interval P and each side, `--runs` times: `flyte.run` a task
in a thread; the task asks (ours: `new_event(..., poll_interval_seconds=P)` with our bot in a
child process; stock: flyteplugins-hitl's own `wait_for_input_event` loop on a request written
to the same local store, since stock's `Event.create` cannot run locally) and waits. The bench
answers over HTTP (ours: `POST /api/v1/events/<id>/response` with the bearer token; stock:
`POST /submit/json` to its app in a child process) and times from the answer's HTTP response
to (1) the task's `wait` returning and (2) `flyte.run` returning in the caller's thread.

The answer is sent at a stratified phase of the poll loop: with n runs, at (k + 0.5)/n x P after
the task's first poll (k = 0..n-1, shuffled), the same phases for both sides. The mean over the
runs is then a sharp estimate of the expected wait, P/2 plus one poll's read and the run's
teardown, where n random phases would leave it to chance.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import flyte
from _common import bench_parser, machine_lines, publish, store_request
from _peer import Server, start_ours, start_stock

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.protocol import Request
from hitl_chatops.bot.store import Store
from tests.fakes.flyte import Run

env = flyte.TaskEnvironment(name="hitl-bench-resume")
_started: dict[str, tuple[float, threading.Event]] = {}  # run key -> (first poll time, set once polling)


def _mark_polling(key: str) -> None:
    """Tell the driver (same process: local runs execute here) that the wait loop is about to poll."""
    _, ready = _started[key]
    _started[key] = (time.perf_counter(), ready)
    ready.set()


@env.task
async def ours_waits(key: str, poll: float) -> float:
    """Our plugin as a user writes it; returns the moment `wait` returned."""
    event = await hitl.new_event.aio("bench_resume", data_type=bool, prompt="Go?", poll_interval_seconds=poll)
    _mark_polling(key)
    await event.wait.aio()
    return time.perf_counter()


@env.task
async def stock_waits(key: str, request_id: str, response_path: str, poll: float) -> float:
    """Stock flyteplugins-hitl's poll loop (what its `Event.wait` runs), unchanged."""
    from flyteplugins.hitl._event import wait_for_input_event  # type: ignore[import-untyped]

    # Stock's loop is a `flyte.trace` typed `poll_interval_seconds: int`: a float is refused, so
    # a fractional P runs the same loop body undecorated (`__wrapped__`); whole P run as shipped.
    loop = wait_for_input_event if poll.is_integer() else wait_for_input_event.__wrapped__
    _mark_polling(key)
    await loop("bench_resume", request_id, response_path, 3600, int(poll) if poll.is_integer() else poll)
    return time.perf_counter()


@dataclass
class Sample:
    side: str
    poll: float
    to_wait: list[float] = field(default_factory=list)
    to_run: list[float] = field(default_factory=list)
    errors: int = 0
    phases: list[float] = field(default_factory=list)


async def answer_ours(session: aiohttp.ClientSession, server: Server, secret: str, request_id: str) -> bool:
    headers = {"Authorization": f"Bearer {secret}"}
    url = f"{server.url}/api/v1/events/{request_id}/response"
    async with session.post(url, json={"value": True, "responder": "bench"}, headers=headers) as reply:
        await reply.read()
        return reply.status == 201


async def answer_stock(session: aiohttp.ClientSession, server: Server, request: Request) -> bool:
    body = {
        "request_id": request.request_id,
        "value": "true",
        "data_type": "bool",
        "response_path": request.response_path,
    }
    async with session.post(f"{server.url}/submit/json", json=body) as reply:
        await reply.read()
        return reply.status == 200


async def one_run(
    side: str, poll: float, store: Store, servers: dict[str, Server], secret: str, sample: Sample
) -> None:
    key = f"{side}-{poll}-{len(sample.to_wait) + sample.errors}-{random.random()}"
    ready = threading.Event()
    _started[key] = (0.0, ready)
    before = set(await store.pending_ids())
    if side == "ours":
        run = Run(ours_waits, key, poll)
    else:
        request = store_request(store, event_name="bench_resume", prompt="Go?")
        await store.put_request(request)
        run = Run(stock_waits, key, request.request_id, request.response_path, poll)
    if not await asyncio.to_thread(ready.wait, 60):
        raise TimeoutError(f"{side} run never started polling: {run.error!r}")
    first_poll, _ = _started.pop(key)
    if side == "ours":
        new = set(await store.pending_ids()) - before
        assert len(new) == 1, f"expected one new pending event, saw {len(new)}"
        request_id = new.pop()
    phase = sample.phases.pop() if sample.phases else random.random()
    await asyncio.sleep(max(0.0, first_poll + phase * poll - time.perf_counter()))
    async with aiohttp.ClientSession() as session:
        if side == "ours":
            ok = await answer_ours(session, servers["ours"], secret, request_id)
        else:
            ok = await answer_stock(session, servers["stock"], request)
    answered = time.perf_counter()
    await asyncio.to_thread(run.join, 60)
    if not ok or run.result is None:
        sample.errors += 1
        return
    sample.to_wait.append(float(run.result) - answered)
    sample.to_run.append(run.returned - answered)


async def bench(polls: list[float], runs: int) -> tuple[list[Sample], list[str]]:
    folder = Path(tempfile.mkdtemp(prefix="hitl-bench-resume-"))
    secret = secrets.token_urlsafe(32)
    os.environ.update(
        {"HITL_CHATOPS_STORE": folder.as_uri(), "HITL_CHATOPS_SECRET": secret, "HITL_CHATOPS_LOG_FORMAT": "text"}
    )
    servers = {"ours": start_ours(folder.as_uri(), secret), "stock": start_stock()}
    os.environ["HITL_CHATOPS_URL"] = servers["ours"].url
    try:
        flyte.init()
        store = Store(folder.as_uri())
        phases = [(k + 0.5) / runs for k in range(runs)]
        random.shuffle(phases)
        samples = [Sample(side, poll, phases=list(phases)) for poll in polls for side in ("ours", "stock")]
        for side in ("ours", "stock"):  # warm-up: imports, first run's set-up
            await one_run(side, 1.0, store, servers, secret, Sample(side, 1.0))
        for _ in range(runs):
            for sample in samples:  # alternate sides and intervals so drift hits all alike
                await one_run(sample.side, sample.poll, store, servers, secret, sample)
        return samples, [f"{s.name}: {s.note}" for s in servers.values()]
    finally:
        for server in servers.values():
            server.stop()


def report(samples: list[Sample], notes: list[str], args: argparse.Namespace) -> list[str]:
    lines = [
        "# Answer → task resumed in a Flyte local run, vs the poll interval",
        "",
        *machine_lines(["flyte", "flyteplugins-hitl", "aiohttp"]),
        f"- command: `python bench/click_to_resume.py --polls {' '.join(str(p) for p in args.polls)} "
        f"--runs {args.runs}`",
        f"- {args.runs} runs per side and interval, alternating, after one warm-up run each; the answer lands "
        "(k + 0.5)/n x P after the first poll (stratified phases, the same for both sides); store: one local folder",
        "",
        "| side | poll P s | runs | errors | answer→`wait` returns: mean s | median | min | max "
        "| answer→`flyte.run` returns: mean s | median | mean / P |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in samples:
        if not s.to_wait:
            lines.append(f"| {s.side} | {s.poll} | 0 | {s.errors} | - | - | - | - | - | - | - |")
            continue
        run_mean = statistics.mean(s.to_run)
        lines.append(
            f"| {s.side} | {s.poll} | {len(s.to_wait)} | {s.errors} | {statistics.mean(s.to_wait):.3f} "
            f"| {statistics.median(s.to_wait):.3f} | {min(s.to_wait):.3f} | {max(s.to_wait):.3f} "
            f"| {run_mean:.3f} | {statistics.median(s.to_run):.3f} | {run_mean / s.poll:.2f} |"
        )
    by_key = {(s.side, s.poll): s for s in samples}
    ratios = []
    for poll in args.polls:
        ours, stock = by_key[("ours", poll)], by_key[("stock", poll)]
        if ours.to_run and stock.to_run:
            mean = statistics.mean(ours.to_run) / statistics.mean(stock.to_run)
            median = statistics.median(ours.to_run) / statistics.median(stock.to_run)
            ratios.append(f"P={poll} s: mean {mean:.2f}x, median {median:.2f}x")
    lines += [
        "",
        f"**ours/stock, answer→run returns: {'; '.join(ratios)}** (below 1 favours ours)",
        "",
        "Expected: about P/2 (the answer waits for the next poll) plus one storage read and the local "
        "run's teardown; mean / P should be near 0.5. Both loops sleep a full P between polls; nothing "
        "pushes the answer to the task, so the interval, not the code, sets the latency.",
        "",
        "Stock's loop is a `flyte.trace` typed `poll_interval_seconds: int`, so Flyte refuses P=0.5 "
        "(`Type conversion failed ... Expected type int`): stock cannot poll faster than once a second. "
        "For fractional P the bench runs stock's loop body undecorated (`wait_for_input_event.__wrapped__`); "
        "whole P run exactly as shipped, trace included.",
        "",
        "How the servers ran:",
        *(f"- {note}" for note in notes),
    ]
    return lines


def main() -> None:
    parser = bench_parser(__doc__, "click_to_resume.md")
    parser.add_argument("--polls", type=float, nargs="+", default=[0.5, 2.0])
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()
    samples, notes = asyncio.run(bench(args.polls, args.runs))
    lines = report(samples, notes, args)
    publish(args.out, lines)


if __name__ == "__main__":
    main()

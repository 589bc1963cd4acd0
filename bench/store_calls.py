"""CPU per S3 request in our process: `Store` (obstore's sync API on its I/O threads) vs obstore's async API.

Where an answer's CPU goes on S3 (`s3_ack.py`): each storage request our bot makes costs its
process some CPU, and stock flyteplugins-hitl makes its one request through flyte.storage, which
calls obstore's async API. `Store` calls obstore's sync API on its own threads instead (the async
one can abort the process at exit, see `bot/backends/objects.py`). This measures both, alternating, against
moto's S3 server in a child process: `--calls` requests in flight at once (as 200 answers are),
CPU of this process (all threads: ours, obstore's tokio threads) per request.

Rows, each the request an answer makes: the exclusive create of response.json (before the ack),
the outcome's PUT to `hitl-history/`, the LIST of the event's `messages/` (empty here), and a GET
of an absent object (a poll before the answer). The async side makes the same request with the
same client options through `put_async` / `list` stream / `get_async`.

Then what a trip to the I/O threads costs by itself: `Backend._run` of a 0.5 ms sleep (a thread that
waits, as one waiting on a request does) less the same sleep called inline; and a PUT through
`Store` with 4, 8, 16 and 32 I/O threads (the pool is swapped for the row), alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from _common import bench_parser, machine_lines, publish
from _peer import BUCKET, MotoChild, process_cpu_seconds

HOP_SLEEP = 0.0005  # seconds a thread waits in the hop row: about one loopback request
POOL_SIZES = (4, 8, 16, 32)
Calls = Callable[[], Awaitable[Any]]


def cases(store: Any) -> dict[str, tuple[Calls, Calls]]:
    """Each request as (ours through `Store`, the same request through obstore's async API)."""
    objects, body = store.backend.client, b'{"value": true}'

    def key(folder: str) -> str:
        return store._path(folder, str(uuid.uuid4()))

    async def absent_async() -> None:
        with contextlib.suppress(FileNotFoundError):  # obstore's NotFoundError
            await objects.get_async(store.backend.key(key("missing")))

    async def listing_async() -> list[Any]:
        return [meta async for page in objects.list(prefix=store.backend.key(key("messages"))) for meta in page]

    return {
        "exclusive create (PUT `If-None-Match: *`)": (
            lambda: store.backend.create(key("created"), body),
            lambda: objects.put_async(store.backend.key(key("created")), body, mode="create", use_multipart=False),
        ),
        "PUT": (
            lambda: store.backend.put(key("outcomes"), body),
            lambda: objects.put_async(store.backend.key(key("outcomes")), body, use_multipart=False),
        ),
        "LIST (empty prefix)": (lambda: store.messages(str(uuid.uuid4())), listing_async),
        "GET of an absent object (404)": (lambda: store.backend.get(key("missing")), absent_async),
    }


async def cpu_per_call(calls: int, make: Calls) -> float:
    """ms of this process's CPU per request, `calls` of them in flight at once."""
    coroutines = [make() for _ in range(calls)]
    started = process_cpu_seconds(os.getpid())
    await asyncio.gather(*coroutines)
    return (process_cpu_seconds(os.getpid()) - started) / calls * 1000


def inline_sleep_ms(calls: int) -> float:
    started = process_cpu_seconds(os.getpid())
    for _ in range(calls):
        time.sleep(HOP_SLEEP)
    return (process_cpu_seconds(os.getpid()) - started) / calls * 1000


async def threads(store: Any, args: argparse.Namespace) -> dict[str, list[float]]:
    """ms of CPU per hop to the I/O threads, and per PUT by pool size (`calls` in flight), each over rounds."""
    from concurrent.futures import ThreadPoolExecutor

    from hitl_chatops.bot.backends import base as module

    def put() -> Awaitable[None]:
        return store.backend.put(store._path("outcomes", str(uuid.uuid4())), b"{}")  # type: ignore[no-any-return]

    results: dict[str, list[float]] = {"hop": [], **{f"PUT, {n} I/O threads": [] for n in POOL_SIZES}}
    default, pools = module._IO_THREADS, {n: ThreadPoolExecutor(n) for n in POOL_SIZES}
    try:
        for _ in range(args.rounds):
            hop = await cpu_per_call(args.calls, lambda: store.backend._run(time.sleep, HOP_SLEEP))
            results["hop"].append(hop - inline_sleep_ms(args.calls // 4))
            for n, pool in pools.items():
                module._IO_THREADS = pool
                await cpu_per_call(20, put)  # the pool's threads started
                results[f"PUT, {n} I/O threads"].append(await cpu_per_call(args.calls, put))
    finally:
        module._IO_THREADS = default
        for pool in pools.values():
            pool.shutdown()
    return results


async def bench(
    args: argparse.Namespace,
) -> tuple[dict[str, tuple[list[float], list[float]]], dict[str, list[float]]]:
    from hitl_chatops.bot.store import Store

    moto = MotoChild.start()
    try:
        store = Store(f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}/hitl")
        results: dict[str, tuple[list[float], list[float]]] = {}
        for name, (ours, stock) in cases(store).items():
            await cpu_per_call(20, ours)  # warm-up: connections, threads
            await cpu_per_call(20, stock)
            results[name] = ([], [])
            for _ in range(args.rounds):
                results[name][0].append(await cpu_per_call(args.calls, ours))
                results[name][1].append(await cpu_per_call(args.calls, stock))
        return results, await threads(store, args)
    finally:
        moto.stop()


def report(
    results: dict[str, tuple[list[float], list[float]]], pools: dict[str, list[float]], args: argparse.Namespace
) -> list[str]:
    lines = [
        "# CPU per S3 request: `Store` (obstore sync API on its I/O threads) vs obstore's async API",
        "",
        *machine_lines(["obstore", "moto"]),
        f"- command: `python bench/store_calls.py --calls {args.calls} --rounds {args.rounds}`",
        f"- {args.calls} requests in flight at once, {args.rounds} alternating rounds per row, median shown; "
        "CPU = this process, all threads (clock ticks of 10 ms: ±0.025 ms per request at 400)",
        "",
        "| request | `Store` ms/request | obstore async ms/request | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, (ours, stock) in results.items():
        a, b = statistics.median(ours), statistics.median(stock)
        lines.append(f"| {name} | {a:.3f} | {b:.3f} | {a / b:.2f}x |")
    lines += [
        "",
        "| the I/O threads (`Store`) | ms of CPU per call |",
        "| --- | ---: |",
        f"| one hop alone: `Backend._run` of a {HOP_SLEEP * 1000:.1f} ms sleep, less the sleep inline "
        f"| {statistics.median(pools.pop('hop')):.3f} |",
        *(f"| {name} | {statistics.median(values):.3f} |" for name, values in pools.items()),
    ]
    return lines


def main() -> None:
    parser = bench_parser(__doc__, "store_calls.md")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    lines = report(*asyncio.run(bench(args)), args)
    lines.append(f"\nRun time: {time.perf_counter() - started:.0f} s.")
    publish(args.out, lines)


if __name__ == "__main__":
    main()

"""Storage requests per poll: our `Event.wait` vs stock flyteplugins-hitl's `wait_for_input_event`.

Both loops poll the same S3 response path on moto's S3 server (a child process that counts every
HTTP request it receives, see `_peer.MotoChild`). Ours reads through `Store` (obstore);
stock through `flyte.storage` (obstore), pointed at the same server with `FLYTE_AWS_ENDPOINT`.

For each side: N polls of an unanswered event (a wrapper around the loop's read call counts the
reads and raises after the Nth, ending the loop), then one wait on an answered event (returns on
its first poll).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from _common import bench_parser, machine_lines, publish, store_request
from _peer import BUCKET, MotoChild


@dataclass
class Row:
    side: str
    state: str
    polls: int
    requests: Counter[str]

    @property
    def per_poll(self) -> float:
        return sum(self.requests.values()) / self.polls if self.polls else 0.0


class EnoughPolls(Exception):
    """Raised by the read wrapper after the Nth read: ends the loop from inside, on any event loop."""


class Polls:
    """Counts completed reads of a wrapped coroutine function; stops the loop after `target` reads.

    `Event.wait.aio` is syncified (it may run on flyte's own loop thread), so neither an
    asyncio.Event nor task cancellation from this loop would reach it; an exception does.
    """

    def __init__(self, target: int | None) -> None:
        self.count = 0
        self.target = target

    def wrap(self, func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            result = await func(*args, **kwargs)
            self.count += 1
            if self.target is not None and self.count >= self.target:
                raise EnoughPolls()
            return result

        return counted


async def count_polls(moto: MotoChild, loop: Callable[[], Awaitable[Any]]) -> Counter[str]:
    """Run one wait loop until it returns (answered) or the wrapper stops it; count what reached S3."""
    moto.reset()
    with contextlib.suppress(EnoughPolls):
        await asyncio.wait_for(loop(), 60)
    return moto.requests()


async def bench(polls: int, interval: float) -> list[Row]:
    import flyte
    import flyte.storage
    from flyteplugins.hitl import _event as stock_event  # type: ignore[import-untyped]

    from hitl_chatops.bot.protocol import Request, Responder, Response
    from hitl_chatops.bot.store import Store
    from hitl_chatops.plugin import Event

    moto = MotoChild.start()
    try:
        url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}/hitl"
        os.environ["HITL_CHATOPS_STORE"] = url
        flyte.init()
        store = Store(url)

        async def new_request() -> Request:
            request = store_request(store, event_name="bench_poll", prompt="Go?")
            await store.put_request(request)
            return request

        async def answer(request: Request) -> None:
            responder = Responder(platform="api", user_id="bench")
            response = Response(value=True, request_id=request.request_id, data_type="bool", responder=responder)
            await store.put_response(response)

        original_read = Store.get_response
        original_exists = flyte.storage.exists
        stock_loop = stock_event.wait_for_input_event.__wrapped__  # float interval; see click_to_resume.py

        async def run_ours(request: Request, answered: bool) -> Row:
            counter = Polls(None if answered else polls)
            Store.get_response = counter.wrap(original_read)  # type: ignore[method-assign,assignment]
            try:
                event = Event(request, bool, interval, None)
                requests = await count_polls(moto, event.wait.aio)
            finally:
                Store.get_response = original_read  # type: ignore[method-assign]
            return Row("ours", "answered" if answered else "unanswered", counter.count, requests)

        async def run_stock(request: Request, answered: bool) -> Row:
            counter = Polls(None if answered else polls)
            flyte.storage.exists = counter.wrap(original_exists)  # type: ignore[assignment]
            try:

                async def loop() -> Any:
                    return await stock_loop("bench_poll", request.request_id, request.response_path, 3600, interval)

                requests = await count_polls(moto, loop)
            finally:
                flyte.storage.exists = original_exists
            return Row("stock", "answered" if answered else "unanswered", counter.count, requests)

        request = await new_request()
        await run_ours(request, False)  # warm-up: clients, connection pools, credentials
        await run_stock(request, False)
        rows = [await run_ours(request, False), await run_stock(request, False)]
        await answer(request)
        rows += [await run_ours(request, True), await run_stock(request, True)]
        return rows
    finally:
        moto.stop()


def report(rows: list[Row], args: argparse.Namespace) -> list[str]:
    lines = [
        "# Storage requests per poll on S3 (moto server): our `Event.wait` vs stock `wait_for_input_event`",
        "",
        *machine_lines(["moto", "obstore", "flyte", "flyteplugins-hitl"]),
        f"- command: `python bench/polling_requests.py --polls {args.polls} --interval {args.interval}`",
        "- counted: every HTTP request that reached moto's S3 server while the loop ran (a WSGI counter in "
        "the moto child process); ours reads with obstore (`Store`), stock with flyte.storage "
        "(obstore via `FLYTE_AWS_ENDPOINT`)",
        "",
        "| side | event | polls | S3 requests | by method | requests per poll |",
        "| --- | --- | ---: | ---: | --- | ---: |",
    ]
    for row in rows:
        methods = ", ".join(f"{n} {m}" for m, n in sorted(row.requests.items()))
        lines.append(
            f"| {row.side} | {row.state} | {row.polls} | {sum(row.requests.values())} | {methods} "
            f"| {row.per_poll:.2f} |"
        )
    by_key = {(r.side, r.state): r for r in rows}
    ratios = "; ".join(
        f"{state} {by_key[('ours', state)].per_poll / by_key[('stock', state)].per_poll:.2f}x"
        for state in ("unanswered", "answered")
    )
    lines += [
        "",
        f"**ours/stock requests per poll: {ratios}** (below 1 favours ours)",
        "",
        "Per poll, stock calls `flyte.storage.exists` (HEAD; a missing key also LISTs `<key>/` to rule "
        "out a directory) and, once it exists, `get_stream` (HEAD + GET). Ours calls `Store.get_response`, "
        "one obstore `get`: a single GET (404 while unanswered), with no HEAD to size the object first and "
        "no LIST fallback.",
    ]
    return lines


def main() -> None:
    parser = bench_parser(__doc__, "polling_requests.md")
    parser.add_argument("--polls", type=int, default=20, help="polls of the unanswered event per side")
    parser.add_argument("--interval", type=float, default=0.05, help="poll interval in seconds")
    args = parser.parse_args()
    rows = asyncio.run(bench(args.polls, args.interval))
    lines = report(rows, args)
    publish(args.out, lines)


if __name__ == "__main__":
    main()

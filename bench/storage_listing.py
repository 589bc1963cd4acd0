"""Pending listing on an S3 server: our `hitl-pending/` index vs a naive scan of every event.

moto's S3 server runs in a child process on loopback (see `_peer.MotoChild`; `polling_requests.py`
and `s3_ack.py` use it too). Setup writes answered events (request.json + response.json) and pending
events (request.json + `hitl-pending/<id>` marker) straight through s3fs `pipe` in batches, the
same objects the plugin and the bot write, only faster than one `put_request` at a time.

Measured, alternating, each repeated `--repeats` times (median reported):

- ours, ids: `Store.pending_ids()`: one LIST of `hitl-pending/` (O(pending));
- ours, events: `HitlService.pending()` on a fresh `Store` (nothing cached): that LIST plus one
  read per pending request.json;
- naive, ids: `fs.find("hitl-requests/")` (every object of every event ever made, paginated by
  1,000 keys), then ids with a request.json minus ids with a response.json;
- naive, events: the naive ids plus the same reads, also on a fresh `Store`.

The naive scan is what a bot without an index must do (stock flyteplugins-hitl has no listing
at all: its app only answers the ids a form link carries).

Then, at scale (`--open`, default 10,000 open events written with `Store.put_request`, 64 at a
time: moto creates about 340 objects/s, so this takes a minute): `HitlService.pending()` cold (a
fresh `Store`: the listing plus one read per request, 32 at a time) and warm (the same service
again: the listing only), with the CPU time of this process (obstore's threads included) and the
growth of its resident memory once the 10,000 requests are cached.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from _common import bench_parser, create_events, event_objects, machine_lines, publish
from _peer import BUCKET, MotoChild, s3fs_client

SHARDS = 16


def populate(fs: Any, root: str, answered: int, pending: int, batch: int = 500) -> float:
    """Write the events in `pipe` batches (s3fs sends each batch concurrently); returns seconds."""
    objects: dict[str, bytes] = {}
    for n in range(answered + pending):
        objects.update(event_objects(root, answered=n < answered))
    items = list(objects.items())
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        fs.pipe(dict(items[start : start + batch]))
    return time.perf_counter() - started


# -- the two ways to list ------------------------------------------------------------------------


def naive_pending_ids(fs: Any, root: str) -> list[str]:
    """Every object under hitl-requests/, then request ids minus answered ids."""
    requests, responses = set(), set()
    for path in fs.find(f"{root}/hitl-requests"):
        parts = path.rsplit("/", 2)
        if parts[-1] == "request.json":
            requests.add(parts[-2])
        elif parts[-1] == "response.json":
            responses.add(parts[-2])
    return sorted(requests - responses)


async def naive_pending_events(fs: Any, root: str, store: Any) -> list[Any]:
    ids = await asyncio.to_thread(naive_pending_ids, fs, root)
    gate = asyncio.Semaphore(32)  # the same read concurrency HitlService.pending() uses

    async def load(request_id: str) -> Any:
        async with gate:
            return await store.get_request(request_id)

    return list(await asyncio.gather(*map(load, ids)))


@dataclass
class Row:
    name: str
    what: str
    seconds: list[float]
    requests: Counter[str]
    found: int
    cpu: list[float] = field(default_factory=list)
    moto_cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def rss_mib() -> tuple[float, float]:
    """This process's VmRSS and RssAnon, MiB."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status.read().splitlines() if ":" in line)
    return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "RssAnon"))  # type: ignore[return-value]


@dataclass
class Scale:
    open_events: int
    setup_seconds: float
    rows: list[Row]
    rss_before: tuple[float, float]
    rss_after: tuple[float, float]


async def bench_scale(moto: MotoChild, open_events: int, repeats: int) -> Scale:
    """pending() over `open_events` open events: cold (fresh Store) and warm (the same service again)."""
    import gc

    from hitl_chatops.bot.service import HitlService
    from hitl_chatops.bot.store import Store

    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}/hitl"
    started = time.perf_counter()
    await create_events(Store(url), open_events, concurrency=64)
    setup = time.perf_counter() - started
    rows = [
        Row("ours", "`Store.pending_ids()` (LIST hitl-pending/)", [], Counter(), 0),
        Row("ours", "`HitlService.pending()`, cold (fresh `Store`: listing + one read per request)", [], Counter(), 0),
        Row("ours", "`HitlService.pending()`, warm (the same replica again)", [], Counter(), 0),
        Row("idea", f"{SHARDS} prefix listings at once (`hitl-pending/0`…`f`), in place of the one", [], Counter(), 0),
        Row("floor", "obstore's own listing of `hitl-pending/`, 1,000 keys a page, no code of ours", [], Counter(), 0),
        Row("floor", "one LIST of an empty prefix in the same bucket (moto's cost of any request)", [], Counter(), 0),
    ]
    ids, cold, warm, sharded, bare, empty = rows
    before = after = (0.0, 0.0)
    for repeat in range(repeats):
        gc.collect()
        if repeat == 0:  # later repeats reuse memory the allocator kept: only the first shows the growth
            before = rss_mib()
        service = HitlService(Store(url), secret="bench-secret-0123456789", form_base_url="http://127.0.0.1")
        await _timed(moto, ids, service.store.pending_ids)
        await _timed(moto, sharded, functools.partial(sharded_pending_ids, service.store))
        await _timed(moto, bare, functools.partial(bare_listing, service.store, "hitl-pending"))
        await _timed(moto, empty, functools.partial(bare_listing, service.store, "nothing-here"))
        await _timed(moto, cold, service.pending)
        for _ in range(3):
            await _timed(moto, warm, service.pending)
        gc.collect()
        if repeat == 0:
            after = rss_mib()  # with the 10,000 requests cached
        del service
    return Scale(open_events, setup, rows, before, after)


async def sharded_pending_ids(store: Any) -> list[str]:
    """The pending index as 16 concurrent listings, one per first hex digit of the request ids.

    obstore's prefixes match whole path segments, so each is a listing of the index that starts
    after `hitl-pending/<digit>` (S3's StartAfter) and stops at the next digit: one request per
    listing while a digit holds fewer than 1,000 markers. Evaluated here, not used by `Store`.
    """
    objects, folder = store.backend.client, store.backend.key(store._path("hitl-pending"))
    digits = "0123456789abcdef"

    def one(first: str, stop: str) -> list[str]:
        found = []
        for page in objects.list(prefix=folder, offset=f"{folder}/{first}", chunk_size=1000):
            for meta in page:
                if meta["path"] >= f"{folder}/{stop}":
                    return found
                found.append(meta["path"].rsplit("/", 1)[-1])
        return found

    stops = [*digits[1:], "g"]
    shards = await asyncio.gather(*(asyncio.to_thread(one, a, b) for a, b in zip(digits, stops, strict=True)))
    return [request_id for shard in shards for request_id in shard]


async def bare_listing(store: Any, folder: str) -> list[str]:
    """Every key under `folder` straight from obstore (what any client of this server pays)."""
    objects, prefix = store.backend.client, store.backend.key(store._path(folder))

    def pages() -> list[str]:
        return [meta["path"] for page in objects.list(prefix=prefix, chunk_size=1000) for meta in page]

    return await asyncio.to_thread(pages)


async def _timed(moto: MotoChild, row: Row, call: Any) -> None:
    moto.reset()
    moto_cpu = moto.cpu_seconds()
    cpu, started = time.process_time(), time.perf_counter()
    row.found = len(await call())
    row.seconds.append(time.perf_counter() - started)
    row.cpu.append(time.process_time() - cpu)
    row.requests = moto.requests()
    row.moto_cpu.append(moto.cpu_seconds() - moto_cpu)


async def bench(args: argparse.Namespace) -> tuple[list[Row], float, int, Scale]:
    answered, pending, repeats = args.answered, args.pending, args.repeats
    from hitl_chatops.bot.service import HitlService
    from hitl_chatops.bot.store import Store

    moto = MotoChild.start()
    try:
        fs = s3fs_client()
        root = f"{BUCKET}/{uuid.uuid4().hex[:12]}/hitl"
        setup_seconds = populate(fs, root, answered, pending)
        objects = len(fs.find(f"{root}"))
        store = Store(f"s3://{root}")

        def cold() -> Store:
            """A fresh Store: `Store` keeps requests it has read in memory, so a reused one would
            measure cache hits; a new one is a new replica, or the first listing after start."""
            return Store(f"s3://{root}")

        async def ours_ids() -> int:
            return len(await store.pending_ids())

        async def ours_events() -> int:
            service = HitlService(cold(), secret="bench-secret-0123456789", form_base_url="http://127.0.0.1")
            return len(await service.pending())

        async def naive_ids() -> int:
            return len(await asyncio.to_thread(naive_pending_ids, fs, root))

        async def naive_events() -> int:
            return len(await naive_pending_events(fs, root, cold()))

        cases = [
            ("ours", "`Store.pending_ids()` (LIST hitl-pending/)", ours_ids),
            ("naive", "`find` hitl-requests/ + set difference", naive_ids),
            ("ours", "`HitlService.pending()`, cold (index + read each request)", ours_events),
            ("naive", "naive ids + read each request, cold", naive_events),
        ]
        rows = [Row(name, what, [], Counter(), 0) for name, what, _ in cases]
        await ours_ids()  # warm-up: connection pools of both clients, imports (cold() clients stay cold)
        await asyncio.to_thread(fs.ls, root)
        for _ in range(repeats):
            for row, (_, _, call) in zip(rows, cases, strict=True):
                moto.reset()
                started = time.perf_counter()
                row.found = await call()
                row.seconds.append(time.perf_counter() - started)
                row.requests = moto.requests()
        scale = await bench_scale(moto, args.open, args.scale_repeats)
        return rows, setup_seconds, objects, scale
    finally:
        moto.stop()


def report(rows: list[Row], setup: float, objects: int, scale: Scale, args: argparse.Namespace) -> list[str]:
    lines = [
        "# Pending listing on S3 (moto server): `hitl-pending/` index vs naive scan",
        "",
        *machine_lines(["moto", "obstore", "s3fs", "fsspec", "flyte"]),
        f"- command: `python bench/storage_listing.py --answered {args.answered} --pending {args.pending} "
        f"--repeats {args.repeats} --open {args.open} --scale-repeats {args.scale_repeats}`",
        f"- store: moto {_moto_version()} S3 server in a child process on loopback; {args.answered} answered + "
        f"{args.pending} pending events = {objects} objects, written with s3fs `pipe` in {setup:.1f} s",
        f"- each case run {args.repeats} times, alternating; median shown; requests = HTTP requests that "
        "reached moto during one run",
        "",
        "| side | what | found | median s | min s | max s | S3 requests per listing |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        requests = ", ".join(f"{n} {m}" for m, n in sorted(row.requests.items()))
        lines.append(
            f"| {row.name} | {row.what} | {row.found} | {row.median:.4f} | {min(row.seconds):.4f} "
            f"| {max(row.seconds):.4f} | {requests} |"
        )
    ours_ids, naive_ids, ours_events, naive_events = rows
    lines += [
        "",
        f"**naive/ours time: ids {naive_ids.median / ours_ids.median:.0f}x, "
        f"events (with the {ours_events.found} request reads) {naive_events.median / ours_events.median:.1f}x** "
        "(how many times slower the scan is)",
        "",
        "The index costs one LIST whatever the history; the scan pages through every request and "
        "response ever written (1,000 keys per LIST page) and grows with it. Reading the pending "
        "request.json files costs both sides the same GETs, which is why the events ratio is smaller.",
        "",
        "Our reads go through obstore: one GET per request.json (the naive side's reads too: they use our "
        "`Store`); the naive scan's `find` is s3fs.",
    ]
    return lines + scale_report(scale)


def scale_report(scale: Scale) -> list[str]:
    lines = [
        "",
        f"## `pending()` at {scale.open_events:,} open events",
        "",
        f"- {scale.open_events:,} events written with `Store.put_request`, 64 at a time, in "
        f"{scale.setup_seconds:.1f} s; cold measured {len(scale.rows[1].seconds)} times (a fresh `Store` each), "
        "warm 3 times after each cold run; median shown; CPU = this process (all threads, obstore's included)",
        "",
        "| what | found | median s | max s | CPU s (median) | moto CPU s (median) | S3 requests per call |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in scale.rows:
        requests = ", ".join(f"{n} {m}" for m, n in sorted(row.requests.items())) or "none"
        lines.append(
            f"| {row.what} | {row.found} | {row.median:.3f} | {max(row.seconds):.3f} "
            f"| {statistics.median(row.cpu):.3f} | {statistics.median(row.moto_cpu):.3f} | {requests} |"
        )
    (rss0, anon0), (rss1, anon1) = scale.rss_before, scale.rss_after
    ids, _, warm, sharded, bare, empty = scale.rows
    per_list = [statistics.median(r.moto_cpu) / max(1, r.requests["LIST"]) * 1000 for r in (ids, sharded)]
    lines += [
        "",
        f"moto spends {per_list[0]:.0f} ms of CPU on each LIST of the index (one page of 1,000 keys), and "
        f"{per_list[1]:.0f} ms on each of the {SHARDS} prefix listings (about {ids.found // SHARDS} keys each): "
        "each ranged listing returns a full page from its start key (only the keys before the next digit are "
        "used), and moto's one process serves them one at a time. "
        f"So {SHARDS} listings at once take {sharded.median / ids.median:.2f}x the time of the {ids.requests['LIST']} "
        "pages in a row here; on S3, which serves listings in parallel, they should take about one page's time "
        "(not measured here).",
        "",
        f"**warm `pending()` at {scale.open_events:,} open events: {warm.median * 1000:.0f} ms** "
        f"(target < 300 ms); cold {scale.rows[1].median:.1f} s.",
        "",
        f"Where the floor is, in the same run: obstore alone lists the same {ids.requests['LIST']} pages in "
        f"{bare.median * 1000:.0f} ms (warm `pending()` takes {warm.median / bare.median:.2f}x that; our CPU per "
        f"call is {statistics.median(warm.cpu) * 1000:.0f} ms), while a LIST that finds nothing costs moto "
        f"{statistics.median(empty.moto_cpu) * 1000:.0f} ms of CPU: moto's cost is per key it returns, "
        f"{statistics.median(bare.moto_cpu) / max(1, bare.found) * 1e6:.0f} µs each, so listing "
        f"{scale.open_events:,} markers costs it {statistics.median(bare.moto_cpu):.2f} s of CPU whatever the client "
        "or the layout (the 16 ranged listings return full pages and cost more). A fresh list of what is pending "
        "cannot be under 300 ms on this server; answering from a copy that is not re-read (stale by up to a "
        "reconciler period) could, and is not done: a person asking what is pending should see what is pending now.",
        "",
        f"Resident memory of this process with the {scale.open_events:,} requests cached: VmRSS {rss0:.0f} → "
        f"{rss1:.0f} MiB (+{rss1 - rss0:.0f} MiB), RssAnon {anon0:.0f} → {anon1:.0f} MiB (+{anon1 - anon0:.0f} MiB). "
        "The cache keeps at most 20,000 requests (oldest first out).",
    ]
    return lines


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def main() -> None:
    parser = bench_parser(__doc__, "storage_listing.md")
    parser.add_argument("--answered", type=int, default=2000)
    parser.add_argument("--pending", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--open", type=int, default=10_000, help="open events for the pending() scale case")
    parser.add_argument("--scale-repeats", type=int, default=2)
    args = parser.parse_args()
    rows, setup, objects, scale = asyncio.run(bench(args))
    lines = report(rows, setup, objects, scale, args)
    publish(args.out, lines)


if __name__ == "__main__":
    main()

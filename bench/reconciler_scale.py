"""Reconciler cost per pass on S3 (moto server) at 100, 1,000 and 10,000 open events, 1 and 3 replicas.

moto's S3 server runs in a child process and counts every request it receives (`_peer.MotoChild`).
Open events are written once, growing the same bucket prefix from one size to the next, with
`Store.put_request` 64 at a time (moto creates about 340 objects/s, so 10,000 events, 20,000
objects, take about a minute; nothing faster is both real S3 and the objects the plugin writes).

Replicas are `Reconciler`s in this process, each with its own `Store` and `HitlService` (its own
client and caches, as separate pods have) and no chat platform, so a pass costs only storage.
For each size and replica count, fresh replicas write their heartbeats and make their first pass
(cold: each reads every event once), write their heartbeats again and make one warm pass each (a
running replica's heartbeats are never older than a minute), then the next wall-clock slots are
stepped through as `run` does (`take_turn`): a slot's owner makes the pass, the others do nothing.
Reported per slot (= per interval, for the replica set): S3 requests and the CPU of this process
(obstore's threads included).

The peer, measured in the same run: the reconciler before issue 17, whose every pass on every
replica listed `hitl-pending/` and read each open event's response.json (its warm cost; run here
as that loop, one replica: a replica set multiplies it by its size).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from _common import bench_parser, create_events, machine_lines, publish
from _peer import BUCKET, MotoChild

if TYPE_CHECKING:
    from hitl_chatops.bot.reconciler import Reconciler
    from hitl_chatops.bot.store import Store

SLOTS = 6


@dataclass
class Row:
    events: int
    replicas: int
    cold_requests: float = 0.0  # per replica
    cold_seconds: float = 0.0
    idle_requests: list[int] = field(default_factory=list)  # per slot
    idle_cpu: list[float] = field(default_factory=list)  # per pass (slots with a pass)
    idle_seconds: list[float] = field(default_factory=list)
    passes: int = 0
    by_method: Counter[str] = field(default_factory=Counter)

    @property
    def target(self) -> float:
        return 1 + self.events / 1000


@dataclass
class Peer:
    events: int
    requests: int = 0
    cpu: float = 0.0
    seconds: float = 0.0


def replica(url: str) -> Reconciler:
    from hitl_chatops.bot.reconciler import Reconciler
    from hitl_chatops.bot.service import HitlService
    from hitl_chatops.bot.store import Store

    service = HitlService(Store(url), secret="bench-secret-0123456789", form_base_url="http://127.0.0.1")
    return Reconciler(service, 15)


async def measure(moto: MotoChild, url: str, events: int, count: int) -> Row:
    row = Row(events, count)
    replicas = [replica(url) for _ in range(count)]
    for r in replicas:
        await r.beat()
    moto.reset()
    started = time.perf_counter()
    for r in replicas:
        await r.step()  # cold: reads every event once, and learns the others' heartbeats
    row.cold_seconds = (time.perf_counter() - started) / count
    row.cold_requests = sum(moto.requests().values()) / count
    for r in replicas:
        await r.beat()
    for r in replicas:
        await r.step()  # learns the fresh heartbeats, as each replica's own last pass would have
    slot0 = int(time.time() // 15) + 1  # the next slots: heartbeats count for 2 minutes
    for slot in range(slot0, slot0 + SLOTS):
        moto.reset()
        cpu, started = time.process_time(), time.perf_counter()
        reports = [await r.take_turn(slot * 15 + 1) for r in replicas]
        passes = sum(report is not None for report in reports)
        assert passes == 1, f"slot {slot}: {passes} passes"
        row.idle_cpu.append(time.process_time() - cpu)
        row.idle_seconds.append(time.perf_counter() - started)
        counts = moto.requests()
        row.idle_requests.append(sum(counts.values()))
        row.by_method += counts
        row.passes += passes
    for r in replicas:
        await r.service.store.drop_replica(r.replica_id)
    return row


async def peer(moto: MotoChild, store: Store) -> Peer:
    """The pass before issue 17, warm (requests cached): list the index, read each response.json."""
    moto.reset()
    cpu, started = time.process_time(), time.perf_counter()
    ids = await store.pending_ids()
    for request_id in ids:
        await store.get_request(request_id)
        await store.get_response(request_id)
    return Peer(len(ids), sum(moto.requests().values()), time.process_time() - cpu, time.perf_counter() - started)


async def bench(sizes: list[int]) -> tuple[list[Row], list[Peer], list[float]]:
    from hitl_chatops.bot.store import Store

    moto = MotoChild.start()
    try:
        url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}/hitl"
        store = Store(url)
        rows, peers, setup, written = [], [], [], 0
        for size in sizes:
            started = time.perf_counter()
            await create_events(store, size - written, concurrency=64)
            setup.append(time.perf_counter() - started)
            written = size
            for count in (1, 3):
                rows.append(await measure(moto, url, size, count))
            await peer(moto, store)  # warm its request cache first, as the old reconciler's was
            peers.append(await peer(moto, store))
        return rows, peers, setup
    finally:
        moto.stop()


def report(rows: list[Row], peers: list[Peer], setup: list[float], args: argparse.Namespace) -> list[str]:
    lines = [
        "# Reconciler cost per pass on S3 (moto server): 100 to 10,000 open events, 1 and 3 replicas",
        "",
        *machine_lines(["moto", "obstore"]),
        f"- command: `python bench/reconciler_scale.py --sizes {' '.join(map(str, args.sizes))}`",
        "- open events written with `Store.put_request`, 64 at a time: "
        + ", ".join(f"{n:,} in {s:.0f} s" for n, s in zip(args.sizes, setup, strict=True))
        + " (each size adds to the previous one)",
        f"- per size and replica count: fresh replicas (own `Store`, own caches, no chat platform), heartbeats, "
        f"a cold first pass each, heartbeats and a warm pass each, then the next {SLOTS} slots stepped as `run` "
        "does; requests = HTTP requests moto received; CPU = this process",
        "",
        "| open events | replicas | requests per interval, idle (set) | target 1 + N/1000 | CPU ms per pass "
        "| pass ms | cold pass: requests per replica | cold pass s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.events:,} | {row.replicas} | {statistics.mean(row.idle_requests):.1f} | {row.target:.1f} "
            f"| {statistics.median(row.idle_cpu) * 1000:.1f} | {statistics.median(row.idle_seconds) * 1000:.0f} "
            f"| {row.cold_requests:.0f} | {row.cold_seconds:.1f} |"
        )
    lines += [
        "",
        "Idle requests by method (all slots): "
        + "; ".join(
            f"{r.events:,}x{r.replicas}: " + ", ".join(f"{n} {m}" for m, n in sorted(r.by_method.items())) for r in rows
        ),
        "",
        "The peer, the pass before this change (warm; every replica made it every interval):",
        "",
        "| open events | requests per pass, one replica | per interval, 3 replicas | CPU ms per pass | pass ms |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in peers:
        cpu, seconds = p.cpu * 1000, p.seconds * 1000
        lines.append(f"| {p.events:,} | {p.requests} | {3 * p.requests} | {cpu:.0f} | {seconds:.0f} |")
    ratios = []
    for p in peers:
        ours = next(r for r in rows if r.events == p.events and r.replicas == 3)
        ratios.append(f"{p.events:,}: {3 * p.requests / statistics.mean(ours.idle_requests):.0f}x fewer")
    lines += [
        "",
        f"**3 replicas, idle, requests per interval, before/after: {'; '.join(ratios)}**",
        "",
        "An idle pass is one listing of `hitl-outbox/`, `hitl-owed-signals/`, `hitl-pending/` and "
        "`hitl-replicas/` (adjacent in key order, so one paginated ListObjectsV2 from `hitl-outbox` that stops "
        "at `hitl-requests/`): one request per 1,000 keys, plus the page that shows where the markers end; "
        "`hitl-history/`, which grows with every outcome, sorts before them and is never listed. Each replica "
        "also rewrites its "
        "heartbeat every 4 intervals (once a minute at 15 s): 1/4 request per interval per replica, not in these "
        "slots. A "
        "changed event costs its reads on the replica whose turn sees it first: request.json and response.json "
        "once, then claims and posts as before.",
    ]
    return lines


def main() -> None:
    parser = bench_parser(__doc__, "reconciler_scale.md")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    args = parser.parse_args()
    rows, peers, setup = asyncio.run(bench(args.sizes))
    publish(args.out, report(rows, peers, setup, args))


if __name__ == "__main__":
    main()

"""Crash loops: how late deadlines close while SIGKILLed replicas leave heartbeats behind, old rule vs new.

moto's S3 server runs in a child process and counts every request it receives (`_peer.MotoChild`).
Each replica is a child process running one `Reconciler` at a 1 s interval, with its own `Store`
and `HitlService` and no chat platform (this script as `child`); a crash is SIGKILL, so it leaves
its heartbeat behind as a crashed pod does. Each child prints the number of live replicas its
reconciler counts whenever that changes, and each stale-heartbeat sweep.

Per rule, on a fresh prefix: 3 replicas start; then, ROUNDS times, the two newest are SIGKILLed
and two new ones start (each round waits for the new ones' first pass), leaving 2 x ROUNDS
heartbeats of crashed replicas. Each new replica has a new id, as a new pod has (`hitl-chatops
serve` restarted in place, same host and port, keeps its id and leaves no heartbeat behind).
Right after the last crash, EVENTS pending events are written with deadlines every half interval
from 1 interval on; once all are closed (or after a cap), a steady window counts requests.
Reported: each event's lateness (its expiry claim's `claimed_at` minus its deadline, in
intervals), when every survivor counted 3 replicas again, the heartbeats left in `hitl-replicas/`,
passes per interval and requests per replica in the steady window. Then `LARGE` replicas start on
another prefix, with no crash, for the same steady window: a set whose turns come to each replica
less often than its heartbeats.

The peer, measured in the same run: the reconciler of `BEFORE` (main before issue 26), loaded from
git into the child: heartbeats every 40 of a replica's own passes, stale after interval x 40 x 2.5
x (known replicas, crashed ones included). Everything scales with the interval: at the default
15 s, multiply the seconds by 15.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
import types
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import REPO, bench_parser, machine_lines, publish, store_request
from _peer import BUCKET, MotoChild

if TYPE_CHECKING:
    from hitl_chatops.bot.store import Store

BEFORE = "df2f419"  # main before issue 26
RULES = {"before": f"main@{BEFORE}: stale after interval x 100 x known replicas", "new": "this branch"}
INTERVAL = 1.0
ROUNDS = 3
EVENTS = 40
STEADY_INTERVALS = 16  # four heartbeat periods of the new rule (four minutes at 15 s)
LARGE = 6  # a set whose turns come to each replica less often than its heartbeats
CAP_SECONDS = 60.0
SCRIPT = str(Path(__file__).resolve())


# -- the child: one replica ----------------------------------------------------------------------


def reconciler_class(rule: str) -> Any:
    """This tree's `Reconciler`, or `BEFORE`'s, compiled from git as a module of the same package."""
    if rule == "new":
        from hitl_chatops.bot.reconciler import Reconciler

        return Reconciler
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:bot/reconciler.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType("hitl_chatops.bot.reconciler_before")
    module.__package__ = "hitl_chatops.bot"
    sys.modules[module.__name__] = module
    exec(compile(source, f"{BEFORE}:bot/reconciler.py", "exec"), module.__dict__)
    return module.Reconciler


class ServiceBefore:
    """`HitlService` as `BEFORE`'s reconciler calls it: posting and updating copies were the service's
    then (`post`, `owes`, `settling`, `update_messages`, `repairs`), and are `service.delivery`'s now."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self.service if hasattr(self.service, name) else self.service.delivery, name)


def believed(reconciler: Any) -> int:
    """The live replicas the reconciler counts (this branch: `live`; before: its sorted list)."""
    if hasattr(reconciler, "live"):
        return len(reconciler.live(time.time()))
    return len(reconciler._replicas)


class Sweeps(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "stale heartbeats removed":
            print(json.dumps({"at": time.time(), "swept": getattr(record, "replicas", 0)}), flush=True)


async def child(rule: str) -> None:
    from hitl_chatops.bot.service import HitlService
    from hitl_chatops.bot.store import Store

    logging.getLogger("hitl_chatops.bot.reconciler").addHandler(Sweeps())
    logging.getLogger("hitl_chatops.bot.reconciler").setLevel(logging.INFO)
    service = HitlService(
        Store(os.environ["HITL_CHATOPS_STORE"]), secret="bench-secret-0123456789", form_base_url="http://127.0.0.1"
    )
    reconciler = reconciler_class(rule)(service if rule == "new" else ServiceBefore(service), INTERVAL)
    task = asyncio.create_task(reconciler.run())
    last = 0
    while not task.done():
        if (count := believed(reconciler)) != last:
            print(json.dumps({"at": time.time(), "replicas": count}), flush=True)
            last = count
        await asyncio.sleep(INTERVAL / 20)
    await task


# -- the parent ----------------------------------------------------------------------------------


@dataclass
class Replica:
    process: asyncio.subprocess.Process
    counts: list[tuple[float, int]] = field(default_factory=list)  # (time, live replicas counted)
    swept: list[int] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None
    expect: int = 2
    killed: bool = False
    learned: asyncio.Event = field(default_factory=asyncio.Event)  # it counted `expect` replicas

    @classmethod
    async def start(cls, rule: str, url: str, expect: int = 2) -> Replica:
        env = {**os.environ, "HITL_CHATOPS_STORE": url}
        process = await asyncio.create_subprocess_exec(
            sys.executable, SCRIPT, "child", rule, env=env, stdout=asyncio.subprocess.PIPE
        )
        replica = cls(process, expect=expect)
        replica.reader = asyncio.create_task(replica._read())
        return replica

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            message = json.loads(line)
            if "replicas" in message:
                self.counts.append((message["at"], message["replicas"]))
                if message["replicas"] >= self.expect:
                    self.learned.set()
            else:
                self.swept.append(message["swept"])

    def kill(self) -> None:
        if not self.killed:
            self.process.send_signal(signal.SIGKILL)
            self.killed = True

    def counting_three_since(self) -> float | None:
        """Since when the child has counted 3 live replicas without a change (None: not at the end)."""
        since = None
        for at, count in self.counts:
            since = None if count != 3 else since or at
        return since


@dataclass
class Result:
    rule: str
    heartbeats_after_crashes: int = 0
    heartbeats_at_end: int = 0
    forgotten_after: float | None = None  # seconds from the last crash until every survivor counted 3
    counted_at_end: list[int] = field(default_factory=list)
    early: list[float] = field(default_factory=list)  # lateness in intervals, deadlines <= 8 intervals after
    late: list[float] = field(default_factory=list)
    unexpired: int = 0
    steady: Counter[str] = field(default_factory=Counter)
    sweeps: int = 0
    swept: int = 0


def due_events(store: Store, first: datetime) -> list[Any]:
    events = []
    for n in range(EVENTS):
        deadline = first + timedelta(seconds=INTERVAL * n / 2)
        request = store_request(store, now=deadline - timedelta(seconds=10))
        events.append(request.model_copy(update={"deadline": deadline, "timeout_seconds": 10}))
    return events


async def scenario(moto: MotoChild, rule: str) -> Result:
    from hitl_chatops.bot.protocol import utcnow
    from hitl_chatops.bot.store import Store

    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}/hitl"
    store = Store(url)
    result = Result(rule)
    survivor, *crashing = replicas = [await Replica.start(rule, url) for _ in range(3)]
    await asyncio.gather(*(r.learned.wait() for r in replicas))
    await asyncio.sleep(2 * INTERVAL)
    for _ in range(ROUNDS):
        for replica in crashing:
            replica.kill()
        crashed_at = time.time()
        crashing = [await Replica.start(rule, url) for _ in range(2)]
        replicas += crashing
        await asyncio.gather(*(r.learned.wait() for r in crashing))
    live = [survivor, *crashing]
    result.heartbeats_after_crashes = len((await store.listing()).replicas)

    first = utcnow() + timedelta(seconds=INTERVAL)
    events = due_events(store, first)
    await asyncio.gather(*map(store.put_request, events))
    for _ in range(int(CAP_SECONDS / INTERVAL)):
        if not await store.pending_ids():
            break
        await asyncio.sleep(INTERVAL)
    for event in events:
        claim = await store.get_claim(event.request_id, "expired")
        if claim is None:
            result.unexpired += 1
            continue
        lateness = (claim.claimed_at - event.deadline).total_seconds() / INTERVAL
        early = event.deadline <= datetime.fromtimestamp(crashed_at, UTC) + timedelta(seconds=8 * INTERVAL)
        (result.early if early else result.late).append(lateness)

    result.steady = await steady(moto)
    result.heartbeats_at_end = len((await store.listing()).replicas)
    await stop(replicas)
    result.counted_at_end = [r.counts[-1][1] for r in live]
    since = [r.counting_three_since() for r in live]
    if None not in since:
        result.forgotten_after = max(0.0, max(at for at in since if at is not None) - crashed_at)
    result.sweeps = sum(len(r.swept) for r in replicas)
    result.swept = sum(sum(r.swept) for r in replicas)
    return result


async def steady(moto: MotoChild) -> Counter[str]:
    """Requests by object kind in `STEADY_INTERVALS` idle intervals."""
    moto.reset()
    await asyncio.sleep(STEADY_INTERVALS * INTERVAL)
    return moto.requests(by_object=True)


async def stop(replicas: list[Replica]) -> None:
    for replica in replicas:
        replica.kill()
        await replica.process.wait()
        assert replica.reader is not None
        await replica.reader


async def large_set(moto: MotoChild, rule: str) -> Counter[str]:
    """`LARGE` replicas, no crash: the steady window once each counts them all."""
    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}/hitl"
    replicas = [await Replica.start(rule, url, expect=LARGE) for _ in range(LARGE)]
    await asyncio.gather(*(r.learned.wait() for r in replicas))
    counts = await steady(moto)
    await stop(replicas)
    return counts


async def bench() -> tuple[list[Result], dict[str, Counter[str]]]:
    moto = MotoChild.start()
    try:
        results = [await scenario(moto, rule) for rule in RULES]
        return results, {rule: await large_set(moto, rule) for rule in RULES}
    finally:
        moto.stop()


def spread(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * len(ordered)))]
    return f"{statistics.median(ordered):.1f} / {p90:.1f} / {ordered[-1]:.1f}"


def forgotten(result: Result) -> str:
    if result.forgotten_after is None:
        return "never"
    return f"{result.forgotten_after / INTERVAL:.1f} intervals"


def steady_row(rule: str, size: int, counts: Counter[str]) -> str:
    """Passes per interval, then requests per replica per 4 intervals (a minute at 15 s)."""
    per = 4 / STEADY_INTERVALS / size
    listings, beats = counts.get("LIST (listing)", 0), counts.get("PUT hitl-replicas/", 0)
    relists = counts.get("LIST (heartbeat listing)", 0)
    return (
        f"| {RULES[rule]} | {size} | {listings / STEADY_INTERVALS:.2f} | {beats * per:.2f} | {relists * per:.2f} "
        f"| {sum(counts.values()) * per:.2f} |"
    )


def report(results: list[Result], large: dict[str, Counter[str]]) -> list[str]:
    lines = [
        "# Crash loops: deadlines and heartbeats while SIGKILLed replicas leave heartbeats behind",
        "",
        *machine_lines(["moto", "obstore"]),
        "- command: `python bench/reconciler_crashes.py`",
        f"- per rule: 3 replicas (child processes, {INTERVAL:g} s interval, S3 on moto), then {ROUNDS} rounds of "
        f"SIGKILLing the two newest and starting two new ones, with new ids as new pods have ({2 * ROUNDS} "
        f"crashed replicas); {EVENTS} events "
        f"due every half interval from 1 interval after the crash loop; then {STEADY_INTERVALS} idle intervals. "
        f"Then {LARGE} replicas, no crash, {STEADY_INTERVALS} idle intervals",
        "- lateness: the expiry claim's `claimed_at` minus the deadline, in intervals (p50 / p90 / max); "
        "a pass that sees an event past its deadline closes it. Everything scales with the interval: "
        "at the default 15 s, 1 interval is 15 s",
        "",
        "| rule | heartbeats after the crashes | every survivor counts 3, after the last SIGKILL "
        "| counted at the end | heartbeats at the end | lateness, due within 8 intervals of the last SIGKILL "
        "| lateness, due later | not closed |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {RULES[r.rule]} | {r.heartbeats_after_crashes} | {forgotten(r)} | {r.counted_at_end} "
            f"| {r.heartbeats_at_end} | {spread(r.early)} | {spread(r.late)} | {r.unexpired} |"
        )
    lines += [
        "",
        f"Idle sets ({STEADY_INTERVALS} intervals; requests per replica per 4 intervals, a minute at 15 s):",
        "",
        "| rule | replicas | passes per interval | heartbeat writes | heartbeat-only listings | all requests |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(steady_row(r.rule, 3, r.steady) for r in results),
        *(steady_row(rule, LARGE, counts) for rule, counts in large.items()),
    ]
    before, new = results
    lines += [
        "",
        f"**After {2 * ROUNDS} crashes, the survivors count 3 replicas again {forgotten(new)} after the last "
        f"SIGKILL (at most 8: 2 minutes at 15 s), against {forgotten(before)} before; deadlines due later close "
        f"{spread(new.late)} intervals late (p50 / p90 / max), against {spread(before.late)} before.**",
        "",
        f"Stale heartbeats removed: {new.swept} in {new.sweeps} bulk deletes (one per pass that finds any); "
        f"before, none ({before.heartbeats_at_end} heartbeats for 3 replicas at the end). Deadlines due in the "
        "first 8 intervals after the last SIGKILL may still fall in a crashed replica's slot, its last heartbeat "
        "not yet 2 periods old. The heartbeat-only listings are those of a replica whose last listing is too old "
        "to tell a stopped replica from one that beat since (sets whose turns come to it less often than its "
        "heartbeats).",
    ]
    return lines


def main() -> None:
    if sys.argv[1:2] == ["child"]:
        asyncio.run(child(sys.argv[2]))
        return
    parser = bench_parser(__doc__, "reconciler_crashes.md")
    args = parser.parse_args()
    publish(args.out, report(*asyncio.run(bench())))


if __name__ == "__main__":
    main()

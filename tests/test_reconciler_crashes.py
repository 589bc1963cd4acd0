"""Replicas that crash without a goodbye (SIGKILL, OOM, a lost node) stop holding reconciler turns.

A heartbeat two beat periods old (8 intervals) is a replica that stopped: every replica drops it at
that moment, without a request, however many stopped, and the next pass deletes its heartbeat.
Heartbeat ages are set on the store folder's files (their mtime is what a listing reports), or
reached by real crashes of `hitl-chatops serve` processes on moto; outcomes are asserted, never times.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hitl_chatops.bot.reconciler import Reconciler
from hitl_chatops.bot.server import free_port
from hitl_chatops.bot.service import HitlService
from hitl_chatops.bot.store import REPLICAS, Store, new_request_id
from tests.conftest import AUTH, SECRET
from tests.fakes.events import make_request
from tests.test_cli import CLI


def replica(store: Store, interval: float = 15) -> Reconciler:
    return Reconciler(HitlService(store, secret=SECRET, form_base_url="http://x"), interval)


async def heartbeat(store: Store, replica_id: str, at: float) -> None:
    """A heartbeat written at `at` (Unix time), as a listing of the folder will report it."""
    await store.put_replica(replica_id)
    os.utime(Path(store.root) / REPLICAS / replica_id, (at, at))


def believed(reconciler: Reconciler) -> float | None:
    return reconciler.service.metrics.registry.get_sample_value("hitl_reconciler_replicas")


async def test_replicas_that_stopped_lose_their_turns_and_heartbeats_however_many(store_url: str) -> None:
    store = Store(store_url)
    replicas = [replica(store) for _ in range(3)]
    for reconciler in replicas:
        await reconciler.beat()
    now = time.time()
    for _ in range(6):  # crashed more than 2 minutes (8 intervals of 15 s) after their last heartbeat
        await heartbeat(store, new_request_id(), now - 121)
    late = new_request_id()
    await heartbeat(store, late, now - 90)  # a heartbeat a beat late: still counted, for 30 s more

    await replicas[0].step()  # its pass deletes the stale heartbeats
    folder = set((await store.listing()).replicas)
    assert folder == {late, *(r.replica_id for r in replicas)}
    for reconciler in replicas[1:]:
        await reconciler.step()
    assert {len(r.live(now)) for r in replicas} == {4}
    later = now + 31  # the late one is 2 minutes old now: every replica drops it at once, without a listing
    assert {len(r.live(later)) for r in replicas} == {3}
    slots = [later + 15 * n for n in range(6)]
    assert [sum(r.my_turn(at) for r in replicas) for at in slots] == [1] * 6
    assert [sum(r.my_turn(at) for at in slots) for r in replicas] == [2, 2, 2]


async def test_a_listing_too_old_to_tell_is_renewed_before_a_turn_and_a_missed_heartbeat_needs_none(
    store_url: str,
) -> None:
    """1 s interval: heartbeats every 4 s, stale at 8 s. A heartbeat that was on time at the last listing
    and looks stale now was most likely renewed: the replica lists again rather than take that slot.
    One already a beat late when listed is dropped on time alone (no listing: a replica joining since
    stays unknown)."""
    store = Store(store_url)
    mine, other = replica(store, 1), replica(store, 1)
    listed = time.time()
    await heartbeat(store, other.replica_id, listed - 1)
    stopped = new_request_id()
    await heartbeat(store, stopped, listed - 7)  # 3 s past its next beat when listed
    await mine.step()
    assert len(mine.live(listed)) == 3

    joined = new_request_id()
    await heartbeat(store, joined, listed)
    at = first_slot_of(
        other, [mine.replica_id, other.replica_id], after=listed + 1.5
    )  # `stopped` is stale, `other` is not
    assert await mine.take_turn(at) is None and believed(mine) == 2  # `joined` unseen: nothing was listed

    for renewed in (other.replica_id, joined):  # both beat again since
        await heartbeat(store, renewed, listed + 6)
    at = first_slot_of(
        other, [mine.replica_id, other.replica_id, joined], after=listed + 7.5
    )  # its last seen heartbeat is stale
    assert await mine.take_turn(at) is None, "took the turn of a replica whose heartbeat was renewed"
    assert believed(mine) == 3


def first_slot_of(owner: Reconciler, live: list[str], after: float) -> float:
    """A time from `after` on whose 1 s slot belongs to `owner` among the `live` ids (sorted, round-robin)."""
    order = sorted(live)
    at = after
    while order[int(at) % len(order)] != owner.replica_id:
        at += 1
    return at


async def test_a_replica_whose_heartbeat_was_removed_writes_it_again_on_its_next_pass(store_url: str) -> None:
    """A replica silent for 2 minutes (a paused VM) has its heartbeat deleted by another's pass, maybe just
    after writing it again: its own next listing shows it missing, and it writes it at once."""
    store = Store(store_url)
    reconciler = replica(store)
    await reconciler.beat()
    (Path(store.root) / REPLICAS / reconciler.replica_id).unlink()
    await reconciler.take_turn(time.time(), first=True)
    assert list((await store.listing()).replicas) == [reconciler.replica_id]


def test_a_reconciler_collected_with_its_closed_loop_goes_quietly(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A program that closes its loop under a running bot (a local Flyte run's in-process bot): the
    reconciler's coroutine is closed when collected and must not try to run anything on that loop."""
    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda hook: unraisable.append(repr(hook.exc_value)))
    loop = asyncio.new_event_loop()
    reconciler = replica(Store(store_url), 1)
    loop.run_until_complete(asyncio.wait([loop.create_task(reconciler.run())], timeout=0.5))
    loop.close()
    del reconciler, loop
    gc.collect()
    assert unraisable == []


# -- real processes, SIGKILLed ------------------------------------------------------------------


class Bot:
    """`hitl-chatops serve` in its own process on loopback (stderr kept in `log` for a failure's message)."""

    def __init__(self, env: dict[str, str], log: Path, port: int = 0) -> None:
        self.port = port or free_port("127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen([CLI, "serve", "--port", str(self.port)], env=env, stderr=stderr)

    async def ready(self, http: aiohttp.ClientSession, seconds: float = 60) -> Bot:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                async with http.get(f"{self.url}/healthz") as reply:
                    if reply.status == 200:
                        return self
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"bot did not start: {self.log.read_text()}")

    async def metric(self, http: aiohttp.ClientSession, name: str) -> float | None:
        """A sample of its /metrics, e.g. `hitl_reconciler_replicas`: the live replicas its reconciler counts."""
        async with http.get(f"{self.url}/metrics", headers=AUTH) as reply:
            text = await reply.text()
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
        return next((s.value for s in samples if s.name == name), None)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def env(s3_store_url: str) -> dict[str, str]:
    """A bot process's environment: the test's S3 store on moto, a 1 s reconciler interval."""
    return {**os.environ, "HITL_CHATOPS_RECONCILE_SECONDS": "1", "HITL_CHATOPS_LOG_FORMAT": "text"}


@pytest.fixture
def bots() -> Iterator[list[Bot]]:
    """Started bots; whatever still runs is stopped (SIGTERM, their goodbye) after the test."""
    started: list[Bot] = []
    yield started
    for bot in started:
        if bot.process.poll() is None:
            bot.process.terminate()
    for bot in started:
        bot.process.wait(timeout=30)


async def test_a_bot_restarted_in_place_takes_its_own_heartbeat_back(
    s3_store_url: str, env: dict[str, str], bots: list[Bot], tmp_path: Path
) -> None:
    """A container restarted in its pod (same host name, same port) is the same replica: no ghost."""
    store = Store(s3_store_url)
    async with aiohttp.ClientSession() as http:
        bots.append(crashed := await Bot(env, tmp_path / "first.log").ready(http))
        for _ in range(100):  # until its heartbeat is written (at start, before its first pass)
            if heartbeats := list((await store.listing()).replicas):
                break
            await asyncio.sleep(0.1)
        crashed.kill()
        bots.append(restarted := await Bot(env, tmp_path / "second.log", crashed.port).ready(http))
        for _ in range(100):  # until its first pass is done: its heartbeat was written before
            if await restarted.metric(http, "hitl_reconciler_last_pass_timestamp_seconds"):
                break
            await asyncio.sleep(0.1)
        assert await restarted.metric(http, "hitl_reconciler_replicas") == 1
    assert list((await store.listing()).replicas) == heartbeats


async def test_survivors_of_a_crash_loop_count_three_replicas_sweep_the_ghosts_and_expire_events(
    s3_store_url: str, env: dict[str, str], bots: list[Bot], tmp_path: Path
) -> None:
    """Three replicas at a 1 s interval; two are SIGKILLed and restarted as new pods (new ports), twice
    each: four ghosts."""
    store = Store(s3_store_url)
    events = [make_request(store, timeout=2) for _ in range(10)]

    async def start(http: aiohttp.ClientSession, count: int) -> list[Bot]:
        new = [Bot(env, tmp_path / f"bot-{len(bots) + n}.log") for n in range(count)]
        bots.extend(new)
        return list(await asyncio.gather(*(bot.ready(http) for bot in new)))

    async with aiohttp.ClientSession() as http:
        survivor, *crashing = await start(http, 3)
        for event in events[:5]:
            await store.put_request(event)
        for _ in range(2):
            for bot in crashing:
                bot.kill()
            crashing = await start(http, 2)
        for event in events[5:]:
            await store.put_request(event)
        live = [survivor, *crashing]

        async def state() -> tuple[list[float | None], int, int]:
            counts = [await bot.metric(http, "hitl_reconciler_replicas") for bot in live]
            expired, _ = await store.outcomes("expired", limit=len(events))
            return counts, len((await store.listing()).replicas), len(expired)

        for _ in range(180):  # a bound on the wait (90 s), not a measure: ghosts go 8 s after their last beat
            if (found := await state()) == ([3, 3, 3], 3, len(events)):
                break
            await asyncio.sleep(0.5)

    counts, heartbeats, expired = found
    assert counts == [3, 3, 3], f"the survivors count other than the 3 live replicas: {found}"
    assert heartbeats == 3, f"crashed replicas' heartbeats were left in hitl-replicas/: {found}"
    assert expired == len(events) and await store.pending_ids() == []
    assert all(bot.process.poll() is None for bot in live)

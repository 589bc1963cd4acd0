"""Event creation overhead on a local store: our `new_event` vs stock flyteplugins-hitl's storage write.

Measured inside one real Flyte local run (`flyte.init()`, `flyte.run`), where `new_event` is
called in practice, so the numbers include what a task pays: argument checks, the
`flyte.trace` step, settings, the store writes, and the notify call.

Variants, interleaved in rounds so drift hits all alike:
- `new_event`, bot notified: `HITL_CHATOPS_URL` points at our bot in a child process; each event
  is one HTTP notify over loopback that the bot answers after reading the request back.
- store write only: `Store.put_request` (request.json + pending marker), which is what
  `new_event` does when it has no bot to notify. `new_event` itself always notifies in a local
  run (with no `HITL_CHATOPS_URL` it starts a bot in-process), so this is how "without a bot" is
  measured.
- stock: `flyte.storage.put_stream` of the same request JSON, as stock `Event.create` writes it
  (its app deployment is not counted), plus the `os.makedirs` a local folder needs first (stock
  alone fails with ENOENT on a local path; object stores need no folders).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import flyte
import flyte.storage
from _common import bench_parser, machine_lines, percentile, publish, store_request
from _peer import start_ours

import hitl_chatops.plugin as hitl
from hitl_chatops.bot.config import load_settings
from hitl_chatops.bot.store import Store

VARIANTS = {
    "ours_notify": "our `new_event`, bot notified over HTTP",
    "ours_store": "our store write only (`new_event` without a bot to notify)",
    "stock": "stock: `flyte.storage.put_stream` of the same JSON",
    "settings": "diagnostic: one `load_settings()` (`new_event` calls it once)",
}

EVENT = {"prompt": "How many replicas?", "data_type": "int", "min_value": 1, "max_value": 10}

env = flyte.TaskEnvironment("hitl-bench-event-creation")


@env.task
async def measure(bot_url: str, per_round: int, rounds: int, warmup: int) -> str:
    """Time each variant per event; returns {variant: [seconds, ...]} as JSON."""
    os.environ["HITL_CHATOPS_URL"] = bot_url
    store = Store(os.environ["HITL_CHATOPS_STORE"])

    async def ours_notify() -> None:
        event = await hitl.new_event.aio("bench", int, prompt="How many replicas?", min_value=1, max_value=10)
        assert event.form_url

    async def ours_store() -> None:
        await store.put_request(store_request(store, **EVENT))

    async def stock() -> None:
        request = store_request(store, **EVENT)
        os.makedirs(os.path.dirname(request.request_path), exist_ok=True)
        await flyte.storage.put_stream(request.model_dump_json().encode(), to_path=request.request_path)

    async def settings() -> None:
        load_settings()

    calls: dict[str, Callable[[], Awaitable[None]]] = {
        "ours_notify": ours_notify,
        "ours_store": ours_store,
        "stock": stock,
        "settings": settings,
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    # A local run prints every event's form link to stderr; keep 600 links off the terminal.
    with contextlib.redirect_stderr(io.StringIO()):
        for call in calls.values():
            for _ in range(warmup):
                await call()
        for _ in range(rounds):
            for name, call in calls.items():
                for _ in range(per_round):
                    started = time.perf_counter()
                    await call()
                    times[name].append(time.perf_counter() - started)
    return json.dumps(times)


def report(times: dict[str, list[float]], args: argparse.Namespace, note: str) -> list[str]:
    stock_mean = statistics.fmean(times["stock"])
    stock_p99 = percentile(times["stock"], 99)
    lines = [
        "# Event creation overhead on a local store: ours vs stock flyteplugins-hitl",
        "",
        *machine_lines(["flyte", "flyteplugins-hitl", "aiohttp", "fsspec"]),
        f"- load: {args.rounds} interleaved rounds x {args.events // args.rounds} events per variant "
        f"({args.warmup} warm-up each, not counted), sequential, inside one Flyte local run task",
        "- store: a local folder (ext4 temp dir); our writes go to a temp file, synced (one syncfs per "
        "batch), then renamed or linked",
        "",
        "| variant | events | mean ms | p50 ms | p99 ms | mean vs stock | p99 vs stock |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label in VARIANTS.items():
        samples = times[name]
        mean = statistics.fmean(samples)
        p99 = percentile(samples, 99)
        lines.append(
            f"| {label} | {len(samples)} | {mean * 1000:.3f} | {percentile(samples, 50) * 1000:.3f} "
            f"| {p99 * 1000:.3f} | {mean / stock_mean:.1f}x | {p99 / stock_p99:.1f}x |"
        )
    lines += [
        "",
        "What each variant includes:",
        "- `new_event`, bot notified: argument checks, settings from env, the `flyte.trace` step, request.json "
        "and pending marker written, POST `/api/v1/events/<id>/notify` to the bot (202 after it reads the "
        "request back), the signed form link.",
        "- store write only: request.json + pending marker, each to a temp file, synced (the marker is "
        "not), then renamed; the same `Store` code the bot uses.",
        "- stock: one `put_stream` of our request JSON (a superset of stock's) plus `os.makedirs`.",
        "- the form link each local-run event prints to stderr went to an in-memory buffer during the measurement.",
        f"- {note}",
    ]
    return lines


def main() -> None:
    parser = bench_parser(__doc__, "event_creation.md")
    parser.add_argument("--events", type=int, default=600, help="events per variant, split over the rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="hitl-bench-store-"))
    secret = secrets.token_urlsafe(32)
    os.environ["HITL_CHATOPS_STORE"] = folder.as_uri()
    os.environ["HITL_CHATOPS_SECRET"] = secret
    bot = start_ours(folder.as_uri(), secret)
    try:
        flyte.init()
        run = flyte.run(
            measure, bot_url=bot.url, per_round=args.events // args.rounds, rounds=args.rounds, warmup=args.warmup
        )
        times: dict[str, list[float]] = json.loads(run.outputs()[0])
    finally:
        bot.stop()
    note = f"bot: child process on loopback ({bot.note})"
    lines = report(times, args, note)
    publish(args.out, lines)


if __name__ == "__main__":
    main()

"""Shared bench helpers, in this process: pending events to answer, statistics, the result file.

The child processes (our bot, the stock app, the fakes' servers) are in `_peer.py`; the fakes
themselves (moto, Slack, ...) are the tests' (`tests/fakes/`). `hitl_chatops` is imported only when
an event is built, so a script can set its environment first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from _peer import REPO  # and the repo root on the path, for `tests.fakes`

from tests.fakes.events import make_request

if TYPE_CHECKING:
    from hitl_chatops.bot.protocol import MessageRef, Request
    from hitl_chatops.bot.store import Store

RESULTS = REPO / "bench" / "results"

BENCH_EVENT: dict[str, Any] = {"event_name": "bench", "prompt": "Deploy?", "timeout": 3600}


# -- pending events ------------------------------------------------------------------------------


def store_request(store: Store, **fields: Any) -> Request:
    """A pending bool event due in an hour, at the paths `store` uses (not written yet); `fields` override
    (e.g. `now`, `data_type="int", min_value=1, max_value=10`)."""
    return make_request(store, **(BENCH_EVENT | fields))


async def create_events(store: Store, count: int, *, concurrency: int = 32, **fields: Any) -> list[Request]:
    """`count` pending events (see `store_request` for `fields`), written through `store`, `concurrency` at a time."""
    from hitl_chatops.bot.protocol import utcnow

    now = utcnow()
    events = [store_request(store, now=now, **fields) for _ in range(count)]
    gate = asyncio.Semaphore(concurrency)

    async def put(event: Request) -> None:
        async with gate:
            await store.put_request(event)

    await asyncio.gather(*map(put, events))
    return events


def event_objects(root: str, answered: bool, *, posted: bool = False) -> dict[str, bytes]:
    """The S3 objects of one bool event under `root` as the plugin and bot write them (request, response or marker).

    `posted` adds the record of the Slack message the bot posted (`slack_message()`), which an answer updates.
    """
    from hitl_chatops.bot.protocol import Responder, Response, utcnow

    now = utcnow()
    request = store_request(_paths(root), now=now)
    request_id = request.request_id
    folder = f"{root}/hitl-requests/{request_id}"
    objects = {f"{folder}/request.json": request.model_dump_json().encode()}
    if answered:
        response = Response(
            value=True,
            request_id=request_id,
            data_type="bool",
            responder=Responder(platform="api", user_id="bench"),
            responded_at=now,
            via="api",
        )
        objects[f"{folder}/response.json"] = response.model_dump_json().encode()
    else:
        marker = {"created_at": now.isoformat(), "deadline": request.deadline.isoformat()}
        objects[f"{root}/hitl-pending/{request_id}"] = json.dumps(marker).encode()
    if posted:
        message = slack_message()
        objects[f"{folder}/messages/slack-{message.key}.json"] = message.model_dump_json().encode()
    return objects


@cache
def _paths(root: str) -> Store:
    """A `Store` at `s3://root`, used only for the paths it gives an event (it makes no request)."""
    from hitl_chatops.bot.store import Store

    return Store(f"s3://{root}")


SLACK_CHANNEL, SLACK_TS = "C0BENCH", "1700000000.000100"


def slack_message() -> MessageRef:
    """The record of the Slack message the bot posted for an event: what an answer `chat.update`s."""
    from hitl_chatops.bot.protocol import MessageRef

    data = {"channel": SLACK_CHANNEL, "ts": SLACK_TS}
    return MessageRef(platform="slack", key=f"{SLACK_CHANNEL}-{SLACK_TS}", data=data)


async def record_slack_messages(store: Store, events: Sequence[Request]) -> None:
    """Each event gets the message record the bot writes when it posts, so every answer updates it."""
    await asyncio.gather(*(store.put_message(event.request_id, slack_message()) for event in events))


def slack_click_body(request: Request, n: int) -> str:
    """A Slack `block_actions` click on the event's Approve button by user `U0BENCH<n>`, form-encoded, unsigned.

    Shaped like Slack's own: it carries the whole message clicked in (our blocks for the event), so
    the bot parses as much as it would in production (about 4 KB).
    """
    from hitl_chatops.adapters.slack._blocks import ANSWER_ACTION, action_value, event_blocks

    user = f"U0BENCH{n:04d}"
    form = f"https://hitl.example.com/form/{request.request_id}?sig={'0' * 43}"
    blocks = [block.to_dict() for block in event_blocks(request, form)]
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T0BENCH"},
        "api_app_id": "A0BENCH",
        "token": "verification-token-unused",
        "container": {
            "type": "message",
            "message_ts": SLACK_TS,
            "channel_id": SLACK_CHANNEL,
            "is_ephemeral": False,
        },
        "trigger_id": "1700000000100.1234567890.0123456789abcdef0123456789abcdef",
        "team": {"id": "T0BENCH", "domain": "bench"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": SLACK_CHANNEL, "name": "deploys"},
        "message": {
            "type": "message",
            "subtype": "bot_message",
            "text": "Deploy?",
            "ts": SLACK_TS,
            "bot_id": "B0BENCH",
            "blocks": blocks,
        },
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0BENCH/1700000000100/abcdefABCDEF0123456789",
        "actions": [
            {
                "action_id": f"{ANSWER_ACTION}_0",
                "block_id": blocks[-1]["block_id"],
                "text": {"type": "plain_text", "text": "Approve", "emoji": True},
                "value": action_value(request.request_id, "true"),
                "style": "primary",
                "type": "button",
                "action_ts": "1700000000.200000",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})


# -- statistics ----------------------------------------------------------------------------------


@dataclass
class LoadSample:
    """One server's measurements under load, over all its rounds (one latency per answer)."""

    name: str
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    per_round: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """Server CPU (user + system, all threads) per answer."""
        return self.cpu_seconds / self.count * 1000 if self.count else 0.0

    def ms(self, pct: float) -> float:
        return percentile(self.latencies, pct) * 1000

    def versus(self, peer: LoadSample) -> str:
        """The bold summary of this side against `peer`, as ratios (above 1 = this side is higher)."""
        return (
            f"**{self.name}/{peer.name}: throughput {self.throughput / peer.throughput:.2f}x, "
            f"p50 latency {self.ms(50) / peer.ms(50):.2f}x, p99 latency {self.ms(99) / peer.ms(99):.2f}x, "
            f"server CPU per answer {self.cpu_ms / peer.cpu_ms:.2f}x** "
            "(throughput above 1 and the others below 1 favour ours)"
        )

    def row(self, endpoint: str, *, unit: str = "") -> str:
        """A row of the load table: server | endpoint | count | errors | p50 ms | p99 ms | per s | CPU ms."""
        return (
            f"| {self.name} | {endpoint} | {self.count} | {self.errors} | {self.ms(50):.1f} | {self.ms(99):.1f} "
            f"| {self.throughput:.0f}{unit} | {self.cpu_ms:.2f} |"
        )


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: with 500 samples, p99 is the 5th slowest, not an interpolation."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def per_round_ratios(label: str, ours: Sequence[float], stock: Sequence[float]) -> str:
    """'Per round, LABEL (ours / stock, ratio): o / s (r x); ... Median round ratio: m x.'"""
    import statistics

    ratios = [o / s for o, s in zip(ours, stock, strict=True)]
    rounds = "; ".join(f"{o:.0f} / {s:.0f} ({r:.2f}x)" for o, s, r in zip(ours, stock, ratios, strict=True))
    return f"Per round, {label} (ours / stock, ratio): {rounds}. Median round ratio: {statistics.median(ratios):.2f}x."


# -- the result file -----------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git_revision() -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, check=True)
        return out.stdout.decode().strip()
    return "unknown"


def _version(name: str) -> str:
    try:
        return version(name)
    except Exception:
        return "absent"


def machine_lines(packages: Sequence[str]) -> list[str]:
    """Markdown bullet lines: date, machine, Python, versions; what a reader needs to compare runs."""
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {_cpu_model()}, "
        f"{platform.system()} {platform.release()}",
        f"- load average at start (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- python: {platform.python_version()} ({platform.python_implementation()})",
        f"- hitl-chatops: git {_git_revision()}; {versions}",
    ]


def bench_parser(doc: str | None, out: str) -> argparse.ArgumentParser:
    """A script's parser: its docstring's first line as description, and `--out` (default `out`)."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--out", default=out, help="file name under bench/results/")
    return parser


def write_result(name: str, lines: Sequence[str]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text("\n".join(lines) + "\n")
    return path


def publish(name: str, lines: Sequence[str]) -> Path:
    """Write the result file `bench/results/NAME` and print the report and where it went."""
    path = write_result(name, lines)
    print("\n".join(lines))
    print(f"\nwritten to {path}")
    return path

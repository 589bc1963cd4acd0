"""Idle memory: `hitl-chatops serve` with Slack and Teams loaded vs the stock flyteplugins-hitl app.

Each server is started as deployed, in its own process: ours through the `hitl-chatops serve`
console script with Slack (HTTP mode, `SLACK_API_URL` at the fake Web API from
`tests/fakes/slack.py`) and the Teams emulator enabled; stock as `bench/_peer.py stock`
(uvicorn serving `flyteplugins.hitl._app:app`). For context, ours also runs once with no chat
platform. When `/healthz` (stock: `/health`) answers, the bench waits `--idle` seconds and reads
VmRSS, RssAnon and VmHWM from `/proc/<pid>/status`; then it sends one request per surface (form
page, signed Slack request, Teams activity; stock: its form page) and reads them again.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from _common import bench_parser, machine_lines, publish
from _peer import spawn, start_stock

from tests.fakes.slack import SIGNING_SECRET, FakeSlack, signed_headers

FIELDS = ("VmRSS", "RssAnon", "VmHWM")


@dataclass
class Sample:
    name: str
    idle: list[dict[str, int]] = field(default_factory=list)
    warm: list[dict[str, int]] = field(default_factory=list)

    def mib(self, which: str, key: str) -> float:
        values = [s[key] for s in getattr(self, which)]
        return statistics.median(values) / 1024 if values else 0.0


def memory(pid: int) -> dict[str, int]:
    """kB values of the fields we report, straight from the kernel."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in FIELDS:
            found[name] = int(rest.split()[0])
    return found


def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.read()
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except urllib.error.URLError:
        return -1  # shown in the report; a shared machine once took a free port back mid-run


def touch_ours(url: str, chat: bool) -> list[int]:
    """One request per surface, so lazily built parts (bolt's auth.test, the Agents SDK's adapter) exist."""
    statuses = [http(f"{url}/api/v1/events", headers={"Authorization": "Bearer wrong"})]
    if chat:
        body = json.dumps({"type": "url_verification", "challenge": "bench", "token": "x"})
        headers = signed_headers(body) | {"Content-Type": "application/json"}
        statuses.append(http(f"{url}/slack/events", body.encode(), headers))
        activity = {
            "type": "conversationUpdate",
            "id": "1",
            "channelId": "emulator",
            "serviceUrl": "http://127.0.0.1:9/",
            "from": {"id": "user1"},
            "recipient": {"id": "bot"},
            "conversation": {"id": "conv1"},
            "membersAdded": [],
        }
        statuses.append(
            http(f"{url}/api/messages", json.dumps(activity).encode(), {"Content-Type": "application/json"})
        )
    return statuses


def run_ours(name: str, chat: bool, fake_url: str, idle: float, sample: Sample) -> list[int]:
    folder = tempfile.mkdtemp(prefix="hitl-bench-rss-")
    env = {
        "HITL_CHATOPS_STORE": Path(folder).as_uri(),
        "HITL_CHATOPS_SECRET": secrets.token_urlsafe(32),
    }
    if chat:
        env |= {
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": f"{fake_url}/api",
            "HITL_CHATOPS_TEAMS_EMULATOR": "true",
        }
    console_script = str(Path(sys.executable).parent / "hitl-chatops")
    server = spawn(
        name,
        lambda port: [console_script, "serve", "--port", str(port)],
        "/healthz",
        env,
        note=False,
        quiet=True,
        seconds=60,
    )
    try:
        time.sleep(idle)
        sample.idle.append(memory(server.process.pid))
        statuses = touch_ours(server.url, chat)
        time.sleep(1)
        sample.warm.append(memory(server.process.pid))
        return statuses
    finally:
        server.stop()


def run_stock(idle: float, sample: Sample) -> list[int]:
    server = start_stock()  # returns once /health answers
    try:
        time.sleep(idle)
        sample.idle.append(memory(server.process.pid))
        statuses = [http(f"{server.url}/form/00000000-0000-0000-0000-000000000000")]
        time.sleep(1)
        sample.warm.append(memory(server.process.pid))
        return statuses
    finally:
        server.stop()


def bench(idle: float, repeats: int) -> tuple[list[Sample], dict[str, list[int]], int]:
    fake = FakeSlack().start()
    samples = {
        "ours-all": Sample("ours: `hitl-chatops serve`, Slack + Teams emulator"),
        "ours-core": Sample("ours: `hitl-chatops serve`, no chat platform"),
        "stock": Sample("stock: `flyteplugins.hitl._app:app` under uvicorn"),
    }
    statuses: dict[str, list[int]] = {}
    try:
        for _ in range(repeats):
            statuses["ours-all"] = run_ours("ours-all", True, fake.url, idle, samples["ours-all"])
            statuses["stock"] = run_stock(idle, samples["stock"])
            statuses["ours-core"] = run_ours("ours-core", False, fake.url, idle, samples["ours-core"])
        auth_tests = len(fake.of("auth.test"))
    finally:
        fake.stop()
    return list(samples.values()), statuses, auth_tests


def report(
    samples: list[Sample], statuses: dict[str, list[int]], auth_tests: int, args: argparse.Namespace
) -> list[str]:
    lines = [
        "# Idle RSS: `hitl-chatops serve` (Slack + Teams) vs stock flyteplugins-hitl app",
        "",
        *machine_lines(
            [
                "aiohttp",
                "slack-bolt",
                "microsoft-agents-hosting-core",
                "fastapi",
                "uvicorn",
                "flyte",
                "flyteplugins-hitl",
            ]
        ),
        f"- command: `python bench/idle_rss.py --idle {args.idle} --repeats {args.repeats}`",
        f"- each server started {args.repeats} times (alternating), measured {args.idle:.0f} s after its health check "
        "answered, then again 1 s after one request per surface; medians shown, MiB from `/proc/<pid>/status`",
        "",
        "| server | idle VmRSS MiB | idle RssAnon MiB | after requests VmRSS MiB | after requests VmHWM MiB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s in samples:
        lines.append(
            f"| {s.name} | {s.mib('idle', 'VmRSS'):.1f} | {s.mib('idle', 'RssAnon'):.1f} "
            f"| {s.mib('warm', 'VmRSS'):.1f} | {s.mib('warm', 'VmHWM'):.1f} |"
        )
    ours, core, stock = samples
    lines += [
        "",
        f"**ours (all adapters) / stock, idle VmRSS: {ours.mib('idle', 'VmRSS') / stock.mib('idle', 'VmRSS'):.2f}x; "
        f"after requests: {ours.mib('warm', 'VmRSS') / stock.mib('warm', 'VmRSS'):.2f}x** "
        f"(ours without chat platforms: {core.mib('idle', 'VmRSS') / stock.mib('idle', 'VmRSS'):.2f}x)",
        "",
        "Requests sent after the idle reading (HTTP status): "
        + "; ".join(f"{name}: {', '.join(map(str, codes))}" for name, codes in statuses.items())
        + f". The fake Slack Web API saw {auth_tests} `auth.test` calls.",
        "",
        "Ours: the unauthorized `GET /api/v1/events` (401), a signed Slack `url_verification` (bolt's "
        "first request), a Teams emulator `conversationUpdate` (the Agents SDK's CloudAdapter, no auth). "
        "Stock: its form page for an unknown id. Stock's process imports flyte (its lifespan calls "
        "`flyte.init_in_cluster`); ours imports slack_bolt, slack_sdk, the Microsoft 365 Agents SDK and "
        "pydantic, but not flyte.",
    ]
    return lines


def main() -> None:
    parser = bench_parser(__doc__, "idle_rss.md")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before the reading")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    samples, statuses, auth_tests = bench(args.idle, args.repeats)
    lines = report(samples, statuses, auth_tests, args)
    publish(args.out, lines)


if __name__ == "__main__":
    main()

"""Shared bench helpers: serve our bot and the stock flyteplugins-hitl app, describe the machine.

Each server runs in its own child process, as it would be deployed, so the load generator in
the parent never competes with a server for the same GIL and both are measured the same way.
Run directly only as the child: `python bench/_peer.py stock|ours --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
STOCK_LIFESPAN_AS_IS = "stock lifespan as shipped (`flyte.init_in_cluster`) succeeded locally"
STOCK_LIFESPAN_REPLACED = (
    "stock lifespan failed locally (`flyte.init_in_cluster`); served with it replaced by one that calls `flyte.init()`"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A server child process on loopback; `note` says how it was started (for the result file)."""

    name: str
    url: str
    process: subprocess.Popen[str]
    note: str = ""

    def cpu_seconds(self) -> float:
        """User+system CPU of the server process (all threads) so far: robust on a shared machine."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _spawn(kind: str, health_path: str, env: dict[str, str]) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), kind, "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    note = process.stdout.readline().strip()  # the child's only stdout line, written before it serves
    server = Server(kind, f"http://127.0.0.1:{port}", process, note)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {process.returncode} before it was ready")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(server.url + health_path, timeout=1) as reply,
        ):
            if reply.status == 200:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{kind} server did not answer {health_path} within 30 s")


def start_ours(store_url: str, secret: str) -> Server:
    """Our bot (`hitl_chatops.bot.server.serve`, what `hitl-chatops serve` runs), no chat platform."""
    return _spawn("ours", "/healthz", {"HITL_CHATOPS_STORE": store_url, "HITL_CHATOPS_SECRET": secret})


def start_stock() -> Server:
    """Stock `flyteplugins.hitl._app:app` under uvicorn; it writes wherever `response_path` says."""
    return _spawn("stock", "/health", {})


# -- the children ------------------------------------------------------------------------


def _run_ours(port: int) -> None:
    from hitl_chatops.bot.config import load_settings
    from hitl_chatops.bot.server import serve

    settings = load_settings(host="127.0.0.1", port=port, log_format="text")
    print("hitl_chatops.bot.server.serve (aiohttp), logging at WARNING", flush=True)
    asyncio.run(serve(settings))


def _run_stock(port: int) -> None:
    """Serve the stock app unchanged when its lifespan works here; otherwise swap only the lifespan."""
    import flyte
    import uvicorn
    from flyteplugins.hitl._app import app  # type: ignore[import-untyped]

    async def probe() -> None:
        await flyte.init_in_cluster.aio()

    note = STOCK_LIFESPAN_AS_IS
    try:
        asyncio.run(probe())
    except Exception:

        @contextlib.asynccontextmanager
        async def local_lifespan(_: Any) -> AsyncIterator[None]:
            await flyte.init.aio()
            yield

        app.router.lifespan_context = local_lifespan
        note = STOCK_LIFESPAN_REPLACED
    print(note, flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- reporting ---------------------------------------------------------------------------


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: with 500 samples, p99 is the 5th slowest, not an interpolation."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


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


def _version(name: str) -> str:
    try:
        return version(name)
    except Exception:
        return "absent"


def write_result(name: str, lines: Sequence[str]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["ours", "stock"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    (_run_ours if args.kind == "ours" else _run_stock)(args.port)


if __name__ == "__main__":
    main()

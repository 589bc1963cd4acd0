"""Shared bench helpers, the other processes: our bot, the stock flyteplugins-hitl app, the fakes' servers.

Each server runs in its own child process, as it would be deployed, so the load generator in
the parent never competes with a server for the same GIL and both are measured the same way.
The fakes (moto's S3, Slack's Web API) are the tests' own (`tests/fakes/`), run here as children.
Run directly only as the child: `python bench/_peer.py stock|ours|floor|moto|slack --port N`.
Reporting and event-building helpers live in `_common.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STOCK_LIFESPAN_AS_IS = "stock lifespan as shipped (`flyte.init_in_cluster`) succeeded locally"
STOCK_LIFESPAN_REPLACED = (
    "stock lifespan failed locally (`flyte.init_in_cluster`); served with it replaced by one that calls `flyte.init()`"
)
BUCKET = "hitl-bench"
REPO = Path(__file__).resolve().parent.parent
# `tests.fakes` importable, here and in the children. They are imported only where they are used:
# a server child (ours, stock) must load nothing but its own modules, or its memory and CPU would lie.
sys.path.insert(0, str(REPO))


def process_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process (all threads) so far, from `/proc/<pid>/stat`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User+system CPU of each live thread of a process so far, by thread id (the main thread's is `pid`)."""
    seconds = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError):  # the thread ended since the listing
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def stop_process(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """Terminate, and kill if it has not exited within `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Server:
    """A server child process on loopback; `note` says how it was started (for the result file)."""

    name: str
    url: str
    process: subprocess.Popen[str]
    note: str = ""

    def cpu_seconds(self) -> float:
        """User+system CPU of the server process (all threads) so far: robust on a shared machine."""
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        stop_process(self.process)


def spawn(
    name: str,
    args: Callable[[int], list[str]],
    health_path: str,
    env: dict[str, str] | None = None,
    *,
    note: bool = True,
    quiet: bool = False,
    seconds: float = 30,
) -> Server:
    """Start `args(port)` on a free port and return once `health_path` answers 200.

    With `note`, the child's first stdout line (written before it serves) is the server's note;
    without it stdout is discarded. `quiet` discards stderr too.
    """
    from tests.fakes.loopback import free_port

    port = free_port()
    process = subprocess.Popen(
        args(port),
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE if note else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if quiet else None,
        text=True,
    )
    first_line = ""
    if note:
        assert process.stdout is not None
        first_line = process.stdout.readline().strip()
    server = Server(name, f"http://127.0.0.1:{port}", process, first_line)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} server exited with {process.returncode} before it was ready")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(server.url + health_path, timeout=1) as reply,
        ):
            if reply.status == 200:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} server did not answer {health_path} within {seconds:.0f} s")


def _spawn(kind: str, health_path: str, env: dict[str, str] | None = None, **options: Any) -> Server:
    """This file as the child (`python bench/_peer.py KIND --port N`)."""
    script = str(Path(__file__).resolve())
    return spawn(kind, lambda port: [sys.executable, script, kind, "--port", str(port)], health_path, env, **options)


def start_ours(store_url: str, secret: str) -> Server:
    """Our bot (`hitl_chatops.bot.server.serve`, what `hitl-chatops serve` runs), no chat platform."""
    env = {"HITL_CHATOPS_STORE": store_url, "HITL_CHATOPS_SECRET": secret}
    return _spawn("ours", "/healthz", env)


def start_floor(store_url: str) -> Server:
    """`_floor.py`: a bare aiohttp server making only an answer's storage requests, under `store_url`."""
    return _spawn("floor", "/health", {"HITL_CHATOPS_STORE": store_url})


def start_stock() -> Server:
    """Stock `flyteplugins.hitl._app:app` under uvicorn; it writes wherever `response_path` says."""
    return _spawn("stock", "/health")


# -- the fakes' servers in child processes ------------------------------------------------------


class MotoChild(Server):
    """moto's S3 server (`tests/fakes/s3.py`) with the bucket `BUCKET`, in its own process, so it never
    shares our GIL; it counts every request by method (ListObjectsV2 as LIST) and by object kind
    (`PUT response.json`). `start` also points this process's `Store`, s3fs and flyte.storage at it.
    """

    @property
    def endpoint(self) -> str:
        return self.url

    @classmethod
    def start(cls) -> MotoChild:
        from tests.fakes.s3 import aws_env

        server = _spawn("moto", f"/{BUCKET}", note=False, quiet=True)  # ready once the bucket is made
        child = cls(server.name, server.url, server.process)
        child.reset()
        os.environ.update(aws_env(child.endpoint, flyte_storage=True))
        return child

    def requests(self, *, by_object: bool = False) -> Counter[str]:
        """Requests since the last reset by method, or by method and object kind (`PUT response.json`)."""
        from tests.fakes.s3 import COUNTS

        with urllib.request.urlopen(self.endpoint + COUNTS, timeout=10) as reply:
            counts = Counter(json.loads(reply.read()))
        return Counter({k: n for k, n in counts.items() if (" " in k) == by_object})

    def reset(self) -> None:
        from tests.fakes.s3 import COUNTS

        request = urllib.request.Request(self.endpoint + COUNTS, method="DELETE")
        with urllib.request.urlopen(request, timeout=10):
            pass


def start_slack() -> Server:
    """Slack's Web API (`tests/fakes/slack.py`) in its own process; `GET /fake/calls/METHOD` counts its calls."""
    return _spawn("slack", "/fake/calls/auth.test", note=False)


def s3fs_client() -> Any:
    """A fresh s3fs instance with no listing cache, for the benches' set-up writes (our `Store` is obstore)."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


# -- the children ------------------------------------------------------------------------


def _run_ours(port: int) -> None:
    from hitl_chatops.bot.adapter import load_bot_settings
    from hitl_chatops.bot.server import serve

    settings = load_bot_settings(host="127.0.0.1", port=port, log_format="text")
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


def _run_floor(port: int) -> None:
    from _floor import run

    run(port)


def _run_moto(port: int) -> None:
    """The tests' moto, counting by method and by object kind, until killed."""
    from tests.fakes.s3 import Moto, by_method

    def labels(method: str, path: str, query: str) -> list[str]:
        [kind] = by_method(method, path, query)
        return [kind, f"{kind} {_object_kind(path, query)}"]

    Moto(BUCKET, port=port, labels=labels).start()
    threading.Event().wait()


def _object_kind(path: str, query: str) -> str:
    """What a request touched: `request.json`, `response.json`, `hitl-pending/`, `messages/`, ..."""
    if "delete" in query:
        return "(bulk delete)"
    if "list-type" in query:
        return "(heartbeat listing)" if "hitl-replicas" in query else "(listing)"
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".json") and "/messages/" not in path:
        return name
    folders = ("messages", "claims", "hitl-pending", "hitl-outbox", "hitl-replicas", "hitl-history")
    folders += ("hitl-owed-signals",)
    for folder in folders:
        if f"/{folder}/" in path:
            return f"{folder}/"
    return "other"


def _run_slack(port: int) -> None:
    """The tests' fake Slack Web API, until killed."""
    from tests.fakes.slack import FakeSlack

    FakeSlack().start(port)
    threading.Event().wait()


_CHILDREN: dict[str, Callable[[int], None]] = {
    "ours": _run_ours,
    "stock": _run_stock,
    "floor": _run_floor,
    "moto": _run_moto,
    "slack": _run_slack,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=list(_CHILDREN))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    _CHILDREN[args.kind](args.port)


if __name__ == "__main__":
    main()

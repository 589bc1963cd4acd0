"""Shared bench helpers, the other processes: our bot, the stock flyteplugins-hitl app, moto's S3 server.

Each server runs in its own child process, as it would be deployed, so the load generator in
the parent never competes with a server for the same GIL and both are measured the same way.
Run directly only as the child: `python bench/_peer.py stock|ours|floor|moto --port N`.
Reporting and event-building helpers live in `_common.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STOCK_LIFESPAN_AS_IS = "stock lifespan as shipped (`flyte.init_in_cluster`) succeeded locally"
STOCK_LIFESPAN_REPLACED = (
    "stock lifespan failed locally (`flyte.init_in_cluster`); served with it replaced by one that calls `flyte.init()`"
)
BUCKET = "hitl-bench"
_COUNTER = "/__bench__/requests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


# -- moto's S3 server in a child process, counting requests -------------------------------------


def aws_env(endpoint: str) -> dict[str, str]:
    """Point our `Store` and the set-up's s3fs (AWS_*) and flyte.storage (FLYTE_AWS_*) at one loopback server."""
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata on loopback: botocore would stall
        "FLYTE_AWS_ENDPOINT": endpoint,
        "FLYTE_AWS_ACCESS_KEY_ID": "testing",
        "FLYTE_AWS_SECRET_ACCESS_KEY": "testing",
    }


class MotoChild(Server):
    """moto's S3 server (werkzeug, threaded) in its own process, so it never shares our GIL.

    A WSGI middleware counts every request by method (ListObjectsV2 as LIST);
    `GET /__bench__/requests` returns the counts, `DELETE` resets them. Nothing else about moto is changed.
    `start` also points this process's `Store`, s3fs and flyte.storage at it (`aws_env`).
    """

    @property
    def endpoint(self) -> str:
        return self.url

    @classmethod
    def start(cls) -> MotoChild:
        server = _spawn("moto", _COUNTER, note=False, quiet=True)
        child = cls(server.name, server.url, server.process)
        child.reset()
        os.environ.update(aws_env(child.endpoint))
        return child

    def requests(self, *, by_object: bool = False) -> Counter[str]:
        """Requests since the last reset by method, or by method and object kind (`PUT response.json`)."""
        with urllib.request.urlopen(self.endpoint + _COUNTER, timeout=10) as reply:
            counts = Counter(json.loads(reply.read()))
        return Counter({k: n for k, n in counts.items() if (" " in k) == by_object})

    def reset(self) -> None:
        request = urllib.request.Request(self.endpoint + _COUNTER, method="DELETE")
        with urllib.request.urlopen(request, timeout=10):
            pass


def s3fs_client() -> Any:
    """A fresh s3fs instance with no listing cache, for the benches' set-up writes (our `Store` is obstore)."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


def make_bucket(name: str = BUCKET) -> None:
    fs = s3fs_client()
    if not fs.exists(name):
        fs.mkdir(name)


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


def _run_floor(port: int) -> None:
    from _floor import run

    run(port)


def _run_moto(port: int) -> None:
    """moto's own WSGI app behind a request counter, access log off."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    counts: Counter[str] = Counter()
    lock = threading.Lock()
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        if environ.get("PATH_INFO") == _COUNTER:
            with lock:
                if environ["REQUEST_METHOD"] == "DELETE":
                    counts.clear()
                body = json.dumps(dict(counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return iter([body])
        method = environ["REQUEST_METHOD"]
        query = environ.get("QUERY_STRING", "")
        if method == "GET" and "list-type" in query:
            method = "LIST"  # ListObjectsV2: a GET on the bucket, counted apart from object GETs
        with lock:
            counts[method] += 1
            counts[f"{method} {_object_kind(environ.get('PATH_INFO', ''), query)}"] += 1
        return moto_app(environ, start_response)  # type: ignore[no-any-return]

    class Quiet(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    make_server("127.0.0.1", port, app, threaded=True, request_handler=Quiet).serve_forever()


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


_CHILDREN: dict[str, Callable[[int], None]] = {
    "ours": _run_ours,
    "stock": _run_stock,
    "floor": _run_floor,
    "moto": _run_moto,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=list(_CHILDREN))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    _CHILDREN[args.kind](args.port)


if __name__ == "__main__":
    main()

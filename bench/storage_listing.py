"""Pending listing on an S3 server: our `hitl-pending/` index vs a naive scan of every event.

moto's S3 server runs in a child process on loopback (see `MotoChild`; `polling_requests.py` and
`s3_ack.py` reuse it). Setup writes answered events (request.json + response.json) and pending
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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from _peer import free_port, machine_lines, write_result

BUCKET = "hitl-bench"
_COUNTER = "/__bench__/requests"


# -- moto's S3 server in a child process, counting requests -------------------------------------


def aws_env(endpoint: str) -> dict[str, str]:
    """Point s3fs (AWS_*) and flyte.storage's obstore (FLYTE_AWS_*) at the same loopback server."""
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata on loopback: botocore would stall
        "FLYTE_AWS_ENDPOINT": endpoint,
        "FLYTE_AWS_ACCESS_KEY_ID": "testing",
        "FLYTE_AWS_SECRET_ACCESS_KEY": "testing",
    }


@dataclass
class MotoChild:
    """moto's S3 server (werkzeug, threaded) in its own process, so it never shares our GIL.

    A WSGI middleware counts every request by method (ListObjectsV2 as LIST);
    `GET /__bench__/requests` returns the counts, `DELETE` resets them. Nothing else about moto is changed.
    """

    endpoint: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls) -> MotoChild:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-moto", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        child = cls(f"http://127.0.0.1:{port}", process)
        for _ in range(600):
            with contextlib.suppress(OSError):
                child.reset()
                os.environ.update(aws_env(child.endpoint))
                return child
            time.sleep(0.05)
        child.stop()
        raise RuntimeError("moto did not start within 30 s")

    def requests(self) -> Counter[str]:
        with urllib.request.urlopen(self.endpoint + _COUNTER, timeout=10) as reply:
            return Counter(json.loads(reply.read()))

    def reset(self) -> None:
        request = urllib.request.Request(self.endpoint + _COUNTER, method="DELETE")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def serve_moto(port: int) -> None:
    """The child: moto's own WSGI app behind a request counter, access log off."""
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
        if method == "GET" and "list-type" in environ.get("QUERY_STRING", ""):
            method = "LIST"  # ListObjectsV2: a GET on the bucket, counted apart from object GETs
        with lock:
            counts[method] += 1
        return moto_app(environ, start_response)  # type: ignore[no-any-return]

    class Quiet(MotoRequestHandler):  # type: ignore[misc]
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    make_server("127.0.0.1", port, app, threaded=True, request_handler=Quiet).serve_forever()


def s3fs_client() -> Any:
    """A fresh s3fs instance with no listing cache (what our Store builds, too)."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


def make_bucket(name: str = BUCKET) -> None:
    fs = s3fs_client()
    if not fs.exists(name):
        fs.mkdir(name)


# -- setup: events written straight to S3 -------------------------------------------------------


def event_objects(root: str, answered: bool) -> dict[str, bytes]:
    """The objects of one event as the plugin and bot write them (request, response or marker)."""
    from hitl_chatops.bot.protocol import Request, Responder, Response, utcnow

    request_id = str(uuid.uuid4())
    now = utcnow()
    folder = f"{root}/hitl-requests/{request_id}"
    request = Request(
        request_id=request_id,
        event_name="bench",
        prompt="Deploy?",
        data_type="bool",
        request_path=f"s3://{folder}/request.json",
        response_path=f"s3://{folder}/response.json",
        created_at=now,
        deadline=now + timedelta(hours=1),
        timeout_seconds=3600,
    )
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
    return objects


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

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


async def bench(answered: int, pending: int, repeats: int) -> tuple[list[Row], float, int]:
    from hitl_chatops.bot.service import HitlService
    from hitl_chatops.bot.store import Store

    moto = MotoChild.start()
    try:
        make_bucket()
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
        return rows, setup_seconds, objects
    finally:
        moto.stop()


def report(rows: list[Row], setup: float, objects: int, args: argparse.Namespace) -> list[str]:
    lines = [
        "# Pending listing on S3 (moto server): `hitl-pending/` index vs naive scan",
        "",
        *machine_lines(["moto", "s3fs", "fsspec", "flyte"]),
        f"- command: `python bench/storage_listing.py --answered {args.answered} --pending {args.pending} "
        f"--repeats {args.repeats}`",
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
        "Each request.json read is a HEAD and a GET: s3fs's `cat_file` asks for the size first whenever "
        "its `max_concurrency` is above 1 (the default, 10), to decide on a ranged parallel download. "
        "`S3FileSystem(max_concurrency=1)` in `Store` would make every read one GET.",
    ]
    return lines


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-moto":
        serve_moto(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answered", type=int, default=2000)
    parser.add_argument("--pending", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="storage_listing.md", help="file name under bench/results/")
    args = parser.parse_args()
    rows, setup, objects = asyncio.run(bench(args.answered, args.pending, args.repeats))
    lines = report(rows, setup, objects, args)
    path = write_result(args.out, lines)
    print("\n".join(lines))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()

"""One thread for local-folder writes, with group commit: answers that arrive together share one sync.

A local write of a request or answer must reach the disk before it counts, and it must never be
seen half-written. So each one is a temp file beside its target, synced, then linked (exclusive)
or renamed into place. Done one by one on a thread pool, the syncs and the GIL contention of the
pool's threads cost more CPU than everything else an answer does. Here one daemon thread drains
everything queued since its last round: it writes the batch's temp files, syncs them with one
`syncfs` (Linux; elsewhere `fsync` per file), publishes them, and wakes each waiting loop once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any, TypeVar

__all__ = ["DISK", "DiskWorker"]

T = TypeVar("T")
Publish = Callable[[str, str], None]  # os.link (exclusive create) or os.replace (overwrite)


@dataclass
class _Job:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    func: Callable[[], Any] | None = None  # a plain blocking call, or else a file to put:
    path: str = ""
    data: bytes = b""
    durable: bool = False
    publish: Publish = os.replace
    tmp: str = ""
    fd: int = -1


class DiskWorker:
    """`run(func)` and `put(...)` run on the disk thread; their results come back to the caller's loop."""

    def __init__(self) -> None:
        self._start_empty()

    def _start_empty(self) -> None:
        """Also run in a forked child: its thread did not survive, queued jobs belong to the parent's
        loops, and a lock held by a parent thread at the fork would stay locked forever."""
        self._queue: SimpleQueue[_Job] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def run(self, func: Callable[[], T]) -> T:
        """`func()` on the disk thread (for removals and other small blocking calls)."""
        return await self._submit(lambda loop, future: _Job(loop, future, func=func))  # type: ignore[no-any-return]

    async def put(self, path: str, data: bytes, *, durable: bool, publish: Publish) -> None:
        """Write `data` to a temp file beside `path`, sync it if `durable`, then `publish(tmp, path)`.

        Raises what `publish` raises (FileExistsError from an exclusive link); no temp file is left.
        """
        await self._submit(
            lambda loop, future: _Job(loop, future, path=path, data=data, durable=durable, publish=publish)
        )

    async def _submit(self, job: Callable[[asyncio.AbstractEventLoop, asyncio.Future[Any]], _Job]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(job(loop, future))
        self._ensure_thread()
        return await future

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # first use
                self._thread = threading.Thread(target=self._drain, name="hitl-disk", daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            with contextlib.suppress(Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            _settle_all(_run_batch(batch))


def _run_batch(batch: list[_Job]) -> list[tuple[_Job, Any, BaseException | None]]:
    """Plain calls and temp files first, then one sync for every durable file, then publish."""
    done: list[tuple[_Job, Any, BaseException | None]] = []
    files: list[_Job] = []
    for job in batch:
        try:
            if job.func is not None:
                done.append((job, job.func(), None))
            else:
                _write_temp(job)
                files.append(job)
        except Exception as error:  # handed to the waiting coroutine, which re-raises it
            done.append((job, None, error))
    durable = [job for job in files if job.durable]
    sync_error = _sync([job.fd for job in durable]) if durable else None
    for job in files:
        try:
            os.close(job.fd)
            if job.durable and sync_error is not None:
                raise OSError(sync_error.errno, f"sync failed: {sync_error.strerror}")
            job.publish(job.tmp, job.path)
            done.append((job, None, None))
        except Exception as error:
            done.append((job, None, error))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(job.tmp)
    return done


def _write_temp(job: _Job) -> None:
    folder = os.path.dirname(job.path)
    job.tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        job.fd = os.open(job.tmp, flags, 0o666)
    except FileNotFoundError:  # the first file in this folder: one mkdir, not one per write
        os.makedirs(folder, exist_ok=True)
        job.fd = os.open(job.tmp, flags, 0o666)
    try:
        view = memoryview(job.data)
        while view:
            view = view[os.write(job.fd, view) :]
    except BaseException:
        os.close(job.fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(job.tmp)
        raise


def _sync(fds: list[int]) -> OSError | None:
    """Make the data behind `fds` durable: one `syncfs` per filesystem, else `fsync` each."""
    try:
        if _syncfs is not None:
            for fd in {os.fstat(fd).st_dev: fd for fd in fds}.values():
                if _syncfs(fd) != 0:
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            return None
        for fd in fds:
            _datasync(fd)
        return None
    except OSError as error:
        return error


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's `syncfs(2)` (Linux); Python's `os` has no binding for it.

    `CDLL(None)` is the process's own symbol table, which holds libc: no `find_library`, which
    would run `ldconfig` in a subprocess at import.
    """
    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


_syncfs = _load_syncfs()
# macOS has no fdatasync; fsync is the portable (and stronger) equivalent.
_datasync = getattr(os, "fdatasync", os.fsync)


def _settle_all(done: list[tuple[_Job, Any, BaseException | None]]) -> None:
    by_loop: defaultdict[asyncio.AbstractEventLoop, list[tuple[_Job, Any, BaseException | None]]] = defaultdict(list)
    for outcome in done:
        by_loop[outcome[0].loop].append(outcome)
    for loop, outcomes in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed; nobody waits any more
            loop.call_soon_threadsafe(_settle, outcomes)


def _settle(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    for job, result, error in outcomes:
        if job.future.done():  # the caller was cancelled; the job ran all the same
            continue
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)


DISK = DiskWorker()
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=DISK._start_empty)

"""The disk thread: results and errors reach the right caller on any event loop; files land whole or not at all."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import threading
from pathlib import Path

import pytest

from hitl_chatops.bot import disk_worker
from hitl_chatops.bot.disk_worker import DiskWorker


async def test_jobs_run_in_order_and_errors_reach_their_caller() -> None:
    worker = DiskWorker()
    ran: list[int] = []

    def job(n: int) -> int:
        if n == 3:
            raise FileExistsError(f"job {n}")
        ran.append(n)
        return n * n

    results = await asyncio.gather(*(worker.run(lambda n=n: job(n)) for n in range(6)), return_exceptions=True)
    assert results[:3] == [0, 1, 4] and results[4:] == [16, 25]
    assert isinstance(results[3], FileExistsError) and str(results[3]) == "job 3"
    assert ran == [0, 1, 2, 4, 5]


def test_each_event_loop_gets_its_own_answers() -> None:
    """The plugin's in-process bot and a Flyte task each run their own loop against one worker."""
    worker = DiskWorker()
    seen: dict[str, list[str]] = {}

    def loop_body(name: str) -> None:
        async def main() -> list[str]:
            return await asyncio.gather(*(worker.run(lambda i=i: f"{name}-{i}") for i in range(50)))

        seen[name] = asyncio.run(main())

    threads = [threading.Thread(target=loop_body, args=(name,)) for name in ("bot", "task")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {name: [f"{name}-{i}" for i in range(50)] for name in ("bot", "task")}


async def test_a_cancelled_caller_leaves_the_worker_serving() -> None:
    worker = DiskWorker()
    gate = threading.Event()
    blocked = asyncio.ensure_future(worker.run(lambda: gate.wait(10)))
    queued = asyncio.ensure_future(worker.run(lambda: "after"))
    await asyncio.sleep(0.05)
    blocked.cancel()
    gate.set()
    assert await queued == "after"
    assert await worker.run(lambda: "still here") == "still here"


def test_a_closed_loop_does_not_stop_the_worker() -> None:
    worker = DiskWorker()
    gate = threading.Event()

    async def leave_early() -> None:
        job = asyncio.ensure_future(worker.run(lambda: gate.wait(10)))
        await asyncio.sleep(0.05)
        job.cancel()

    asyncio.run(leave_early())  # its loop is closed before the job finishes
    gate.set()
    assert asyncio.run(worker.run(lambda: 42)) == 42


@pytest.fixture(params=["syncfs", "fsync each"])
def worker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> DiskWorker:
    """A worker syncing the Linux way (one syncfs per batch) or the portable way (fsync per file)."""
    if request.param == "fsync each":
        monkeypatch.setattr(disk_worker, "_syncfs", None)
    else:
        assert disk_worker._syncfs is not None, "glibc's syncfs should be found on Linux"
    return DiskWorker()


async def test_a_batch_of_puts_lands_whole_and_the_first_link_wins(worker: DiskWorker, tmp_path: Path) -> None:
    targets = [str(tmp_path / f"event-{n}" / "response.json") for n in range(100)]
    await asyncio.gather(
        *(worker.put(t, f"answer {n}".encode(), durable=True, publish=os.link) for n, t in enumerate(targets))
    )
    with pytest.raises(FileExistsError):
        await worker.put(targets[0], b"too late", durable=True, publish=os.link)
    await worker.put(targets[1], b"replaced", durable=False, publish=os.replace)
    contents = await worker.run(lambda: [Path(t).read_bytes() for t in targets])
    assert contents[0] == b"answer 0" and contents[1] == b"replaced" and contents[99] == b"answer 99"
    assert await worker.run(lambda: [p.name for p in tmp_path.rglob(".tmp-*")]) == []


async def test_a_failed_sync_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that cannot sync: the writer hears so, and no half-made answer appears."""

    def broken_disk(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(disk_worker, "_syncfs", None)
    monkeypatch.setattr(disk_worker, "_datasync", broken_disk)
    worker = DiskWorker()
    target = tmp_path / "response.json"
    with pytest.raises(OSError, match="sync failed"):
        await worker.put(str(target), b"answer", durable=True, publish=os.link)
    await worker.put(str(tmp_path / "marker"), b"{}", durable=False, publish=os.replace)  # needs no sync
    assert await worker.run(lambda: sorted(p.name for p in tmp_path.iterdir())) == ["marker"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_gets_a_working_worker_even_if_the_fork_caught_its_lock(tmp_path: Path) -> None:
    target = tmp_path / "from-child.json"
    asyncio.run(disk_worker.DISK.put(str(tmp_path / "warm"), b"1", durable=False, publish=os.replace))
    with disk_worker.DISK._lock:  # another thread is starting the disk thread at the moment of the fork
        pid = os.fork()
        if pid == 0:  # the child: a put must work, not hang on the inherited lock
            signal.alarm(5)  # a hang kills the child (and fails the test) instead of hanging the suite
            try:
                put = disk_worker.DISK.put(str(target), b"child", durable=True, publish=os.link)
                asyncio.run(asyncio.wait_for(put, 5))
                os._exit(0)
            except BaseException:
                os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert target.read_bytes() == b"child"

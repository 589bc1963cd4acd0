"""The disk thread: results and errors reach the right caller, on any event loop, whatever a caller does."""

from __future__ import annotations

import asyncio
import threading

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
    assert asyncio.run(worker.run(lambda: 42)) == 42  # type: ignore[arg-type]

"""The floor of an answer on S3: a bare aiohttp server that makes only the storage requests an answer needs.

None of our code: for each `POST /answer/<id>` it makes, through obstore's sync API on a thread
pool (the way `bot/store.py` must call obstore, see its docstring), the exclusive-create PUT of the
event's response.json and acks; after the ack, the PUT of an outcome-index entry and the LIST of the
event's (empty) `messages/` in one pool call, then the pending marker's DELETE (markers dropped
while one DELETE is in flight go out together, one bulk request). That is what our answer must
make on S3 (`s3_ack.py`), with nothing else around it: no auth, no validation, no models, no logs.
`POST /put/<id>` makes stock flyteplugins-hitl's single unconditional PUT the same way.

Run as a child of `_peer.py` (`python bench/_peer.py floor --port N`), with `HITL_CHATOPS_STORE`
set to the bench's `s3://bucket/prefix` root and moto's endpoint in `AWS_ENDPOINT_URL_S3`.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from obstore.store import from_url

POOL = ThreadPoolExecutor(max_workers=32)  # as `bot/store.py`'s I/O threads


def app() -> web.Application:
    bucket, _, root = os.environ["HITL_CHATOPS_STORE"].removeprefix("s3://").partition("/")
    store = from_url(f"s3://{bucket}", client_options={"allow_http": True})
    deletes: list[str] = []
    deleting = False
    background: set[asyncio.Task[None]] = set()

    def after_ack(request_id: str) -> None:
        millis = int(time.time() * 1000)
        store.put(f"{root}/hitl-history/completed/{millis:016d}-{request_id}", b"{}", use_multipart=False)
        next(iter(store.list(prefix=f"{root}/hitl-requests/{request_id}/messages", chunk_size=1000)), None)

    async def settle(request_id: str) -> None:
        nonlocal deleting
        await asyncio.get_running_loop().run_in_executor(POOL, after_ack, request_id)
        deletes.append(f"{root}/hitl-pending/{request_id}")
        if deleting:  # the DELETE under way takes this marker with the next batch
            return
        deleting = True
        try:
            while deletes:
                batch = deletes[:1000]
                del deletes[:1000]
                await asyncio.get_running_loop().run_in_executor(POOL, store.delete, batch)
        finally:
            deleting = False

    async def answer(request: web.Request) -> web.Response:
        request_id, body = request.match_info["id"], await request.read()
        key = f"{root}/hitl-requests/{request_id}/response.json"
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(POOL, lambda: store.put(key, body, mode="create", use_multipart=False))
        task = asyncio.create_task(settle(request_id))
        background.add(task)
        task.add_done_callback(background.discard)
        return web.Response(status=201, body=body, content_type="application/json")

    async def put(request: web.Request) -> web.Response:
        request_id, body = request.match_info["id"], await request.read()
        key = f"{root}/hitl-requests/{request_id}/response.json"
        await asyncio.get_running_loop().run_in_executor(POOL, lambda: store.put(key, body, use_multipart=False))
        return web.Response(body=body, content_type="application/json")

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    application = web.Application()
    application.router.add_post("/answer/{id}", answer)
    application.router.add_post("/put/{id}", put)
    application.router.add_get("/health", health)
    return application


def run(port: int) -> None:
    print("bare aiohttp + obstore sync API on a 32-thread pool (bench/_floor.py)", flush=True)
    web.run_app(app(), host="127.0.0.1", port=port, access_log=None, print=None, backlog=2048)

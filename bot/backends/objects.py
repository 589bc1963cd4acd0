"""S3, GCS and Azure through obstore (Rust; the client flyte.storage uses).

One request per operation, `If-None-Match: *` for exclusive creates, credentials and endpoint from
the standard environment. obstore is imported only when a store URL needs it (the `[s3]` extra).

obstore is called synchronously on the store's I/O threads, never through its `*_async` methods.
Those resolve asyncio futures from tokio's threads (`call_soon_threadsafe`, which lets go of the
GIL to wake the loop); a program may see the result, finish and start finalizing before that
thread takes the GIL back, and CPython < 3.14 then ends the thread with `pthread_exit`, whose
unwinding through Rust frames aborts the process (SIGABRT at exit, about 1 run in 20). With the
sync calls only our own Python threads ever wait on tokio, and tokio's threads never run Python.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import fsspec

from ..errors import ConfigError, HitlError, StoreError
from .base import Backend, Entry

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

__all__ = ["ObjectStoreBackend", "serves"]

# A store that does not answer must fail within seconds: a person is waiting (Slack gives us 3 s).
# allow_http: an http:// endpoint is the operator's choice (AWS_ENDPOINT_URL_S3 of a local MinIO).
_CLIENT: ClientConfig = {"allow_http": True, "connect_timeout": "2s", "timeout": "10s"}
_RETRY: RetryConfig = {"max_retries": 2, "retry_timeout": timedelta(seconds=8)}
_CREDENTIALS = {  # where each store's settings come from (obstore reads them; nothing of ours)
    "s3": "AWS_REGION and credentials (IRSA, AWS_ACCESS_KEY_ID...), AWS_ENDPOINT_URL_S3 for S3-compatible stores",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS or use workload identity",
    "az": "AZURE_STORAGE_ACCOUNT_NAME and a key (AZURE_STORAGE_ACCOUNT_KEY) or workload identity",
}
_CLOUDS = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "az", "abfs": "az", "abfss": "az"}
_CONFLICT_RETRIES = 3


class _Conflict(HitlError):
    """Racing conditional writes that the store asks to retry (not a lost race, not a failure yet)."""


_LIST_PAGE = 1000  # S3's page size: one request per 1,000 keys


def serves(url: str) -> bool:
    """Whether the URL names a bucket or container obstore serves (S3, GCS, Azure)."""
    return fsspec.utils.get_protocol(url) in _CLOUDS


class ObjectStoreBackend(Backend):
    """One bucket (or container) through obstore's native client; paths are `bucket/key`."""

    def __init__(self, url: str) -> None:
        super().__init__(url, _filesystem(url), url.split("://", 1)[1])
        self._scheme = fsspec.utils.get_protocol(url)
        self._cloud = _CLOUDS[self._scheme]
        bucket = self.root.split("/", 1)[0]
        self.client = _client(url, self._cloud, bucket)
        self._bucket_chars = len(bucket) + 1  # "bucket/" in front of every key
        self._deletes = _BulkDelete(self._delete_keys)

    def key(self, path: str) -> str:
        """An object store key: the path without its leading bucket name."""
        return path[self._bucket_chars :]

    def url_of(self, path: str) -> str:
        return f"{self._scheme}://{path}"

    async def get(self, path: str) -> bytes | None:
        return await self._run(self._get, self.key(path))

    async def put(self, path: str, data: bytes, *, durable: bool = False) -> None:
        key, client = self.key(path), self.client
        await self._run(lambda: client.put(key, data, use_multipart=False))

    async def create(self, path: str, data: bytes) -> None:
        """`If-None-Match: *` PUT (GCS: `ifGenerationMatch=0`, Azure: `If-None-Match: *`).

        A lost race is `FileExistsError`, decided on the I/O thread: it is the caller's answer
        ("already answered"), not a storage failure to log.
        """
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        assert data, "an empty body would bypass the exclusive-create condition"
        key, client = self.key(path), self.client

        def put() -> None:
            try:
                client.put(key, data, mode="create", use_multipart=False)
            except AlreadyExistsError:
                raise FileExistsError(key) from None
            except PreconditionError as error:
                raise _Conflict(key) from error
            except Exception as error:
                if "409" in str(error):  # racing conditional writes on AWS: 409 ConditionalRequestConflict
                    raise _Conflict(key) from error
                raise

        for attempt in range(_CONFLICT_RETRIES):
            try:
                await self._run(put)
                return
            except _Conflict as conflict:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise StoreError(f"object storage at {self.url} kept a conflicting write on {key}") from conflict
                await asyncio.sleep(0.05 * 2**attempt)

    async def delete(self, path: str) -> None:
        await self._delete_key(self.key(path))

    async def delete_many(self, paths: Sequence[str]) -> None:
        """Deletes that arrive together share one bulk request (`_BulkDelete`)."""
        with self._errors():
            await self._deletes.remove([self.key(path) for path in paths])

    async def list_prefix(self, folder: str) -> list[Entry]:
        client, prefix = self.client, self.key(folder)  # obstore prefixes match whole path segments: no "/"

        def pages() -> list[Entry]:
            return [_entry(meta) for page in client.list(prefix=prefix, chunk_size=_LIST_PAGE) for meta in page]

        return await self._run(pages)

    async def list_tree(self, folder: str) -> list[Entry]:
        """An object store's prefix listing has no folders: it is the whole tree already."""
        return await self.list_prefix(folder)

    async def list_folders(self, folders: Sequence[str]) -> list[Entry]:
        """One ranged listing from the first folder that stops after the last, one request per 1,000 keys.

        The listing starts after a key on the server (S3's `start-after`, GCS's too) within the folders'
        parent: prefixes match whole path segments only (the root, not "hitl-"). Azure: one listing per
        folder (one request per 5,000 keys each): obstore cannot start an Azure listing after a key; it
        lists from the parent's first key and filters on the client, which would page through every
        object sorting before the first folder on every call.
        """
        client, end = self.client, self.key(folders[-1]) + "/\uffff"
        ranges: list[tuple[str | None, str | None]] = [
            (self.key(folders[0].rsplit("/", 1)[0]) or None, self.key(folders[0]))
        ]
        if self._cloud == "az":
            ranges = [(self.key(folder), None) for folder in folders]

        def pages() -> list[Entry]:
            found: list[Entry] = []
            for prefix, offset in ranges:
                for page in client.list(prefix=prefix, offset=offset, chunk_size=_LIST_PAGE):
                    for meta in page:
                        if meta["path"] > end:
                            return found
                        found.append(_entry(meta))
            return found

        return await self._run(pages)

    async def names(self, folder: str) -> list[str]:
        client, prefix = self.client, self.key(folder)

        def names() -> list[str]:
            found = client.list_with_delimiter(prefix)
            paths = [*found["common_prefixes"], *(meta["path"] for meta in found["objects"])]
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in paths]

        return await self._run(names)

    async def read_all(self, folder: str) -> list[bytes]:
        """One listing, then the objects read concurrently."""
        keys = [key for key, _, _ in await self.list_prefix(folder)]
        found = await asyncio.gather(*(self._run(self._get, key) for key in keys))
        return [data for data in found if data is not None]

    async def ping(self) -> None:
        """A one-key listing with the bot's own client, so the credentials and bucket that answers use
        are the ones checked."""
        client, prefix = self.client, self.key(self.root) or None
        await self._run(lambda: next(iter(client.list(prefix=prefix, chunk_size=1)), None))

    def _get(self, key: str) -> bytes | None:
        try:
            return bytes(self.client.get(key).bytes())
        except FileNotFoundError:
            return None

    async def _delete_key(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # Azure and GCS answer 404 for a missing object; S3 says nothing
            await self._run(self.client.delete, key)

    async def _delete_keys(self, keys: list[str]) -> None:
        """One bulk request; one by one if a key was gone already (Azure and GCS: 404, where GCS's deletes stop)."""
        try:
            await self._run(self.client.delete, keys)
        except FileNotFoundError:
            await asyncio.gather(*map(self._delete_key, keys))


class _BulkDelete:
    """Deletes asked for while one is in flight go out together: one DeleteObjects per 1,000 keys."""

    def __init__(self, delete: Callable[[list[str]], Awaitable[None]]) -> None:
        self._delete = delete
        self._queued: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def remove(self, keys: list[str]) -> None:
        """Queue `keys`; return once the bulk requests that carry them are done (raise what they raised)."""
        loop = asyncio.get_running_loop()
        futures = [self._queue(key, loop) for key in keys]
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._flush())  # starts once this loop turn's callers queued
        await asyncio.gather(*map(asyncio.shield, futures))

    def _queue(self, key: str, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        future = self._queued.get(key)
        if future is None or future.get_loop() is not loop:
            future = self._queued[key] = loop.create_future()
        return future

    async def _flush(self) -> None:
        while self._queued:
            batch = dict(list(self._queued.items())[:_LIST_PAGE])
            for key in batch:
                del self._queued[key]
            failed: Exception | None = None
            try:
                await self._delete(list(batch))
            except Exception as error:
                failed = error
            for future in batch.values():
                if future.done() or future.get_loop().is_closed():
                    continue
                if failed is None:
                    future.set_result(None)
                else:
                    future.set_exception(failed)


def _filesystem(url: str) -> Any:
    """obstore's own fsspec class for the bucket (the fsspec view other libraries open).

    Importing flyte re-registers obstore for s3/gs/az; we build the class ourselves, so the store
    is the same whether or not flyte was imported first.
    """
    protocol = fsspec.utils.get_protocol(url)
    try:
        from obstore.fsspec import FsspecStore
    except ImportError:
        raise ConfigError(
            f"HITL_CHATOPS_STORE uses {protocol}:// but obstore is missing: pip install 'hitl-chatops[s3]'"
        ) from None
    return FsspecStore(protocol, client_options=_CLIENT, retry_config=_RETRY)


def _client(url: str, cloud: str, bucket: str) -> ObjectStore:
    """obstore's native client for the bucket (credentials, endpoint: the standard env)."""
    from obstore.exceptions import BaseError
    from obstore.store import from_url

    try:
        return from_url(f"{cloud}://{bucket}", client_options=_CLIENT, retry_config=_RETRY)
    except BaseError as error:
        reason = str(error).splitlines()[0]
        raise ConfigError(
            f"HITL_CHATOPS_STORE={url}: no storage client ({reason}); set {_CREDENTIALS[cloud]}"
        ) from None


def _entry(meta: Any) -> Entry:
    """One listed object (`Entry`): its version is its modification time and ETag."""
    modified = meta["last_modified"]
    return meta["path"], modified, f"{modified.isoformat()} {meta.get('e_tag') or ''}"

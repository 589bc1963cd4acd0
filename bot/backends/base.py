"""What `Store` asks of the storage under its root, and what every backend shares.

A backend reads, writes, lists and deletes bytes at paths `Store` derived; it knows nothing of
events, ids or folders' meanings. Paths are fsspec paths under `root` (`bucket/prefix/...` for an
object store, an absolute path for a local folder). Each backend does every call the cheapest way
its storage allows; `Store` never asks which backend it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from fsspec.spec import AbstractFileSystem

from ..errors import HitlError, StoreError

__all__ = ["Backend", "Entry", "log"]

log = logging.getLogger("hitl_chatops.bot.store")  # one logger for the store, whichever backend
T = TypeVar("T")
# One listed object: its key (ending in `<folder>/<name>`), when it was last written, and a version that
# changes whenever it is rewritten. A plain tuple: a reconciler pass lists one per open event.
Entry = tuple[str, datetime, str]
# Blocking calls to remote storage wait on the network, not the CPU: more threads than asyncio's default
# (cores + 4) let them overlap. Local folders never use them.
_IO_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="hitl-store")


class Backend(ABC):
    """Storage under one root URL. Absence is `None` or no error; any other failure is `StoreError`."""

    def __init__(self, url: str, fs: AbstractFileSystem, root: str) -> None:
        self.url = url
        self.fs = fs  # the fsspec view of the root, as other fsspec users (flyte.storage) see it
        self.root = root.rstrip("/")

    @abstractmethod
    def url_of(self, path: str) -> str:
        """The address other fsspec users (flyte.storage, stock flyteplugins-hitl) can open."""

    @abstractmethod
    async def get(self, path: str) -> bytes | None:
        """An object's bytes, None if it is absent."""

    @abstractmethod
    async def put(self, path: str, data: bytes, *, durable: bool = False) -> None:
        """Replace `path` atomically: readers see the old object or the new one, never half.

        `durable` syncs a local file to disk first; indexes and records that the reconciler can
        rebuild skip it. Object stores are durable once the PUT returns.
        """

    @abstractmethod
    async def create(self, path: str, data: bytes) -> None:
        """Create `path` only if absent (durably); raise FileExistsError otherwise."""

    @abstractmethod
    async def delete(self, path: str) -> None:
        """Remove `path`; one already gone is no error (replicas race to drop the same object)."""

    @abstractmethod
    async def delete_many(self, paths: Sequence[str]) -> None:
        """Remove each of `paths` (gone is no error); where storage deletes in bulk, calls made together share it."""

    @abstractmethod
    async def list_prefix(self, folder: str) -> list[Entry]:
        """The objects in a flat folder (a prefix listing, one request per 1,000 keys on object stores)."""

    @abstractmethod
    async def list_tree(self, folder: str) -> list[Entry]:
        """Every object under `folder`, at any depth (one request per 1,000 keys on object stores):
        an event's whole folder, its decision log included, in one listing."""

    @abstractmethod
    async def list_folders(self, folders: Sequence[str]) -> list[Entry]:
        """The objects in sibling folders given in key order, with no other object sorting between them.

        Object stores read them as one listing from the first folder's key to the last folder's end.
        """

    @abstractmethod
    async def names(self, folder: str) -> list[str]:
        """Names of the objects and subfolders right inside `folder` (one level, never the whole subtree)."""

    @abstractmethod
    async def read_all(self, folder: str) -> list[bytes]:
        """Every object in a flat folder (an event's message records); writes in flight are not read."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise `StoreError` unless the root can be listed."""

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """A blocking call on the I/O threads, its failures as `StoreError`."""
        with self._errors():
            return await asyncio.get_running_loop().run_in_executor(_IO_THREADS, func, *args)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Storage trouble (OSError, obstore's own errors, ...) becomes `StoreError`; absence and conflicts stay."""
        try:
            yield
        except (FileNotFoundError, FileExistsError, HitlError):
            raise
        except Exception as error:
            log.warning("store operation failed", extra={"error": type(error).__name__, "url": self.url})
            raise StoreError(f"object storage at {self.url} failed: {type(error).__name__}") from error

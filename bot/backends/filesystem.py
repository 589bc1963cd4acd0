"""Any fsspec filesystem that is neither an object store obstore serves nor a local folder (sftp://, memory://, ...).

Its calls block, so they run on the I/O threads. The local folder (`folder`) builds on this class.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.registry import known_implementations
from fsspec.spec import AbstractFileSystem

from ..errors import ConfigError
from ._fsspec import root_path, url_options
from .base import Backend, Entry

__all__ = ["FsspecBackend", "open_filesystem"]

T = TypeVar("T")


class FsspecBackend(Backend):
    """An fsspec filesystem rooted at one URL, called through its own (blocking) API."""

    def url_of(self, path: str) -> str:
        return str(self.fs.unstrip_protocol(path))

    async def get(self, path: str) -> bytes | None:
        return await self._run(self._get, path)

    async def put(self, path: str, data: bytes, *, durable: bool = False) -> None:
        await self._run(self.fs.pipe_file, path, data)

    async def create(self, path: str, data: bytes) -> None:
        """The filesystem's own `mode="create"` (exclusive where it supports it)."""
        await self._run(lambda: self.fs.pipe_file(path, data, mode="create"))

    async def delete(self, path: str) -> None:
        await self._mutate(self._remove, path)

    async def delete_many(self, paths: Sequence[str]) -> None:
        for path in paths:
            await self.delete(path)

    async def list_prefix(self, folder: str) -> list[Entry]:
        return await self._run(self._ls, folder)

    async def list_tree(self, folder: str) -> list[Entry]:
        return await self._run(self._find, folder)

    async def list_folders(self, folders: Sequence[str]) -> list[Entry]:
        return [entry for folder in folders for entry in await self.list_prefix(folder)]

    async def names(self, folder: str) -> list[str]:
        return await self._run(self._names, folder)

    async def read_all(self, folder: str) -> list[bytes]:
        event, _, name = folder.rpartition("/")

        def read_all() -> list[bytes]:
            # One prefix listing even when there are none (`ls` of an empty prefix lists its parent
            # again to tell a missing folder from a file).
            paths = [str(p) for p in self.fs.find(f"{event}/", prefix=f"{name}/") if str(p).startswith(f"{folder}/")]
            return list(self.fs.cat(paths).values()) if paths else []

        records = await self._run(read_all)
        if not records:
            self._check_root()
        return records

    async def ping(self) -> None:
        self._check_root()
        await self._run(lambda: self.fs.ls(self.root, detail=False) if self.fs.exists(self.root) else None)

    async def _mutate(self, func: Callable[..., T], *args: Any) -> T:
        """A blocking write or removal."""
        return await self._run(func, *args)

    def _check_root(self) -> None:
        """Called where something was absent: a root that can vanish says so here (`folder`)."""

    def _get(self, path: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            self._check_root()  # absent because the whole store is gone is not "absent"
            return None

    def _ls(self, folder: str) -> list[Entry]:
        """fsspec's listing, each file with its modification time (seconds since the epoch) as version."""
        try:
            found = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            self._check_root()
            return []
        return [_entry(e) for e in found if e.get("type") != "directory"]

    def _find(self, folder: str) -> list[Entry]:
        found = self.fs.find(folder, detail=True)
        if not found:
            self._check_root()
        return [_entry(info) for info in found.values() if info.get("type") != "directory"]

    def _names(self, folder: str) -> list[str]:
        try:
            paths = [str(p) for p in self.fs.ls(folder, detail=False)]
        except FileNotFoundError:
            self._check_root()
            return []
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in paths]

    def _remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)


def open_filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """fsspec's implementation for the URL's protocol and the root as its path; says what to install if missing."""
    protocol = fsspec.utils.get_protocol(url)
    known = known_implementations.get(protocol)
    if known is None:
        cls = fsspec.get_filesystem_class(protocol)
    else:
        module, _, name = known["class"].rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except ImportError:
            raise ConfigError(
                f"HITL_CHATOPS_STORE uses {protocol}:// but {module} is missing: {known.get('err', '')}"
            ) from None
    # Readers must see other processes' writes: no listing cache, no shared instance.
    options: dict[str, Any] = (
        {} if cls is LocalFileSystem else {"use_listings_cache": False, "skip_instance_cache": True}
    )
    options.update(url_options(cls, url))
    return cls(**options), root_path(cls, url)


def _entry(info: dict[str, Any]) -> Entry:
    seconds = _seconds(info.get("mtime") or info.get("LastModified"))
    return str(info["name"]).rstrip("/"), datetime.fromtimestamp(seconds, tz=UTC), str(seconds)


def _seconds(modified: Any) -> float:
    """An fsspec listing's modification time (a number, or a datetime on some filesystems), 0 if none."""
    return modified.timestamp() if isinstance(modified, datetime) else float(modified or 0)

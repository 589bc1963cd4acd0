"""A local folder: reads inline, writes on the one disk thread (`disk_worker`), a folder that vanishes noticed.

A local read is cheaper than a hop to a thread. Writes need fsync and directory updates, which must
not stall the loop; `disk_worker` batches them so answers that arrive together share one sync.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fsspec.implementations.local import LocalFileSystem

from ..disk_worker import DISK
from ..errors import ConfigError, StoreError
from .base import Entry, log
from .filesystem import FsspecBackend

__all__ = ["FolderBackend"]

T = TypeVar("T")


class FolderBackend(FsspecBackend):
    """A folder on this machine, through fsspec's `LocalFileSystem` for reads and listings."""

    def __init__(self, url: str, fs: LocalFileSystem, root: str) -> None:
        super().__init__(url, fs, root)
        try:  # made now, so that a folder that disappears later is noticed (`ping`)
            fs.makedirs(self.root, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"HITL_CHATOPS_STORE: cannot create the folder {self.root} ({error.strerror}).") from None

    def url_of(self, path: str) -> str:
        return path

    async def put(self, path: str, data: bytes, *, durable: bool = False) -> None:
        self._check_root()
        with self._errors():
            await DISK.put(path, data, durable=durable, publish=os.replace)

    async def create(self, path: str, data: bytes) -> None:
        self._check_root()
        with self._errors():
            # link is atomic and exclusive, unlike pipe_file(mode="create") on a local folder
            await DISK.put(path, data, durable=True, publish=os.link)

    async def read_all(self, folder: str) -> list[bytes]:
        """One directory read, where fsspec's `find` walks the whole event folder and stats each entry."""
        records = await self._run(_read_folder, folder)
        if not records:
            self._check_root()
        return records

    async def list_tree(self, folder: str) -> list[Entry]:
        """One walk of the folder (an event's: a few subfolders), skipping writes in flight."""
        found = await self._run(_walk, folder)
        if not found:
            self._check_root()
        return found

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """Inline: a local read costs less than a thread hop."""
        with self._errors():
            return func(*args)

    async def _mutate(self, func: Callable[..., T], *args: Any) -> T:
        """The one disk thread: fsync and metadata stay off the loop."""
        with self._errors():
            return await DISK.run(lambda: func(*args))

    def _check_root(self) -> None:
        """The folder, made at start, must still exist: writing would make a new, empty one, and
        reading would answer "no such event" or "nothing pending" while nobody can know."""
        if not os.path.isdir(self.root):
            log.warning("store folder missing", extra={"url": self.url})
            raise StoreError(f"the store folder {self.root} is missing: put it back, or restart to begin an empty one")


def _read_folder(folder: str) -> list[bytes]:
    """Every record in a local folder, by name. Temp files (`.tmp-…`) of writes in flight are skipped."""
    try:
        names = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):  # no records yet, or a file in the folder's place
        return []
    found = []
    for name in names:
        with contextlib.suppress(FileNotFoundError), open(os.path.join(folder, name), "rb") as file:
            found.append(file.read())
    return found


def _walk(folder: str) -> list[Entry]:
    """Every file under `folder` with its modification time as version; temp files (`.tmp-…`) skipped."""
    found: list[Entry] = []
    for where, _, names in os.walk(folder):
        for name in names:
            if name.startswith("."):
                continue
            path = os.path.join(where, name)
            with contextlib.suppress(FileNotFoundError):
                modified = os.stat(path).st_mtime_ns
                found.append((path, datetime.fromtimestamp(modified / 1e9, tz=UTC), str(modified)))
    return found

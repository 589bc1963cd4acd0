"""Where the store's objects live: one class per backend behind `Backend` (the way httpx keeps its transports).

S3, GCS and Azure go through obstore (`objects`); a local folder through its own backend with the
disk worker (`folder`); any other fsspec URL through fsspec (`filesystem`). A fix for one storage
touches its module only; `Store` (the protocol above) never asks which one it has.
"""

from __future__ import annotations

from fsspec.implementations.local import LocalFileSystem

from . import objects
from .base import Backend, Entry
from .filesystem import FsspecBackend, open_filesystem
from .folder import FolderBackend

__all__ = ["Backend", "Entry", "open_backend"]


def open_backend(url: str) -> Backend:
    """The backend for a store URL (`HITL_CHATOPS_STORE`)."""
    if objects.serves(url):
        return objects.ObjectStoreBackend(url)
    fs, root = open_filesystem(url)
    if isinstance(fs, LocalFileSystem):
        return FolderBackend(url, fs, root)
    return FsspecBackend(url, fs, root)

"""fsspec's private names the store uses, once, here and nowhere else.

Opening a filesystem from a URL the way `fsspec.core.url_to_fs` does, without its chained-URL
handling, takes the class's own URL parsing: options from the URL (an S3 endpoint, a host) and the
root without its protocol. `tests/test_private_names.py` fails, naming the name and fsspec's
version, when a release changes them.
"""

from __future__ import annotations

from typing import Any

from fsspec.spec import AbstractFileSystem

__all__ = ["root_path", "url_options"]


def url_options(kind: type[AbstractFileSystem], url: str) -> dict[str, Any]:
    """The constructor options `kind` reads from `url` itself."""
    return dict(kind._get_kwargs_from_urls(url))


def root_path(kind: type[AbstractFileSystem], url: str) -> str:
    """`url` as a path of `kind` (without its protocol)."""
    return str(kind._strip_protocol(url))

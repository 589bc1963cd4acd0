"""Amazon S3, faked by moto's server: moto's own WSGI app on werkzeug, on loopback, counting every request.

One fake for every use: the session's server with one bucket, a server a test stops and starts again on
the same port (the store going down and back: moto keeps its buckets in the process, as S3 keeps objects
through an outage), request counts for tests (`take`), and a bench child process whose counts another
process reads over HTTP (`GET /__counts__`; `DELETE` resets them). The bot and s3fs reach it through the
standard AWS settings (`aws_env`); flyte.storage through its own.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from tests.fakes.loopback import Restartable

COUNTS = "/__counts__"  # not a bucket name S3 allows: it never shadows one
Labels = Callable[[str, str, str], Iterable[str]]  # (method, path, query) -> what to count it as


def by_method(method: str, path: str, query: str) -> list[str]:
    """A request counted by its HTTP method; ListObjectsV2 (a GET on the bucket) as LIST."""
    return ["LIST" if method == "GET" and "list-type" in query else method]


def aws_env(endpoint: str, *, flyte_storage: bool = False) -> dict[str, str]:
    """The standard AWS settings (our `Store`, s3fs) for moto at `endpoint`; with `flyte_storage`, flyte's too."""
    env = {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata on loopback: botocore would stall
    }
    if flyte_storage:
        env |= {
            "FLYTE_AWS_ENDPOINT": endpoint,
            "FLYTE_AWS_ACCESS_KEY_ID": "testing",
            "FLYTE_AWS_SECRET_ACCESS_KEY": "testing",
        }
    return env


class _Quiet(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class Moto:
    """moto's S3 server on 127.0.0.1 with one bucket (made at the first `start`), counting requests by `labels`."""

    def __init__(self, bucket: str, *, port: int = 0, labels: Labels = by_method) -> None:
        self.bucket = bucket
        self._labels = labels
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._conditional = [threading.Lock() for _ in range(64)]
        self._service = Restartable(self._serve, port=port, name="fake-s3")
        self._bucket_made = False

    @property
    def port(self) -> int:
        return self._service.port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Moto:
        """Serve (again, on the same port after `stop`); moto's buckets outlive a stop."""
        self._service.start()
        if not self._bucket_made:
            request = urllib.request.Request(f"{self.endpoint}/{self.bucket}", method="PUT")
            with urllib.request.urlopen(request, timeout=30):
                self._bucket_made = True
        return self

    def stop(self, *, keep_port: bool = True) -> None:
        """S3 goes down: the port refuses connections (and stays ours, unless not `keep_port`) until `start()`."""
        self._service.stop(keep_port=keep_port)

    def take(self) -> Counter[str]:
        """The requests counted since the last call (by method, ListObjectsV2 as LIST, unless other `labels`)."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts

    def _serve(self, port: int) -> BaseWSGIServer:
        return make_server("127.0.0.1", port, self._app(), threaded=True, request_handler=_Quiet)

    def _app(self) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
        moto = DomainDispatcherApplication(create_backend_app)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
            if path == COUNTS:
                return self._counts_route(environ["REQUEST_METHOD"], start_response)
            labels = self._labels(environ["REQUEST_METHOD"], path, query)
            with self._lock:
                self._counts.update(labels)
            if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ:
                # S3 decides a conditional write atomically; moto checks, then writes, on any of its
                # threads, so two racing `If-None-Match: *` PUTs could both be told 200. One at a time
                # per key (striped locks: writes to other keys go on, as on S3).
                with self._conditional[hash(path) % len(self._conditional)]:
                    return moto(environ, start_response)  # type: ignore[no-any-return]
            return moto(environ, start_response)  # type: ignore[no-any-return]

        return app

    def _counts_route(self, method: str, start_response: Callable[..., Any]) -> Iterator[bytes]:
        """GET: the counts so far, as JSON; DELETE: the same, and start counting afresh."""
        with self._lock:
            counts = dict(self._counts)
            if method == "DELETE":
                self._counts = Counter()
        start_response("200 OK", [("Content-Type", "application/json")])
        return iter([json.dumps(counts).encode()])

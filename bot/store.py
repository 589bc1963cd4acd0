"""The only module that touches object storage (local-folder writes: `disk_worker`).

Layout under one root URL: docs/protocol.md lists every object (`hitl-requests/<id>/…`, the
`hitl-pending/`, `hitl-history/`, `hitl-outbox/`, `hitl-owed-signals/`, `hitl-replicas/` and
`hitl-conversations/` folders).
Every path is derived here from a validated request id; none comes from a client.

S3, GCS and Azure go through obstore (Rust; the client flyte.storage uses): one request per
operation, `If-None-Match: *` for exclusive creates, credentials and endpoint from the standard
environment. Local folders and any other fsspec URL go through fsspec.

obstore is called synchronously on the store's I/O threads, never through its `*_async` methods.
Those resolve asyncio futures from tokio's threads (`call_soon_threadsafe`, which lets go of the
GIL to wake the loop); a program may see the result, finish and start finalizing before that
thread takes the GIL back, and CPython < 3.14 then ends the thread with `pthread_exit`, whose
unwinding through Rust frames aborts the process (SIGABRT at exit, about 1 run in 20). With the
sync calls only our own Python threads ever wait on tokio, and tokio's threads never run Python.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import json
import logging
import os
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.registry import known_implementations
from fsspec.spec import AbstractFileSystem
from pydantic import ValidationError

from .disk_worker import DISK
from .errors import AlreadyAnswered, ConfigError, EventNotFound, HitlError, StoreError
from .protocol import (
    Claim,
    MessageRef,
    OutcomeKind,
    OutcomeRecord,
    Request,
    Response,
    is_request_id,
    utcnow,
)

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
Known = TypeVar("Known", Response, Claim)
Page = tuple[list[OutcomeRecord], str | None]

# Folders in key order. The four a reconciler pass lists sort next to each other, after the outcome
# history and before the events' own folders (both grow with every event): one ranged listing reads
# them all (`Store.listing`). A new folder must not land between them.
CONVERSATIONS = "hitl-conversations"
OUTCOMES = "hitl-history"
OUTBOX = "hitl-outbox"
SIGNALS = "hitl-owed-signals"  # Flyte condition signals still owed
PENDING = "hitl-pending"
REPLICAS = "hitl-replicas"  # one heartbeat object per running reconciler (see `reconciler`)
REQUESTS = "hitl-requests"
EXPIRED_CLAIM = "expired"  # `claims/expired`: an event without `on_timeout` was closed at its deadline
# An outcome written this close to the deadline (or after it) may have crossed the reconciler's expiry.
_CLOCK_SKEW = timedelta(minutes=1)
_OUTCOME_KEY = re.compile(r"\d{4}-\d{2}-\d{2}/\d{16}-[0-9a-f-]{36}")
_KEY_EPOCH_MICROS = 10**16  # outcome keys count down from here, so names sort newest first
_CONFLICT_RETRIES = 3
_KNOWN_LIMIT = 4096
# Requests are read by every answer, pending list and reconciler pass: keep every open one.
# 10,000 add about 15 MiB to the process (bench/results/storage_listing.md).
_REQUEST_LIMIT = 20_000
_LIST_PAGE = 1000  # S3's page size: one request per 1,000 keys
# A store that does not answer must fail within seconds: a person is waiting (Slack gives us 3 s).
# allow_http: an http:// endpoint is the operator's choice (AWS_ENDPOINT_URL_S3 of a local MinIO).
_CLIENT: ClientConfig = {"allow_http": True, "connect_timeout": "2s", "timeout": "10s"}
_RETRY: RetryConfig = {"max_retries": 2, "retry_timeout": timedelta(seconds=8)}
_CREDENTIALS = {  # where each store's settings come from (obstore reads them; nothing of ours)
    "s3": "AWS_REGION and credentials (IRSA, AWS_ACCESS_KEY_ID...), AWS_ENDPOINT_URL_S3 for S3-compatible stores",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS or use workload identity",
    "az": "AZURE_STORAGE_ACCOUNT_NAME and a key (AZURE_STORAGE_ACCOUNT_KEY) or workload identity",
}
_OBJECT_STORES = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "az", "abfs": "az", "abfss": "az"}
# Blocking fsspec calls (remote URLs other than S3/GCS/Azure, and `ping`) wait on the network, not
# the CPU: more threads than asyncio's default (cores + 4) let them overlap. Local folders never use them.
_IO_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="hitl-store")


def check_request_id(request_id: str) -> str:
    """Refuse anything that is not a request id before it can become part of a path."""
    if not is_request_id(request_id):
        raise EventNotFound(request_id[:64])
    return request_id


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Listing:
    """What one reconciler pass needs from the bucket, read in as few listing requests as S3 allows."""

    pending: dict[str, str] = field(default_factory=dict)  # id -> marker version (changes when rewritten)
    outbox: list[str] = field(default_factory=list)
    replicas: dict[str, datetime] = field(default_factory=dict)  # replica id -> last heartbeat
    signals: list[str] = field(default_factory=list)  # Flyte condition signals owed (bot/conditions.py)


class Store:
    """Async facade over obstore (S3, GCS, Azure) or a (sync or async) fsspec filesystem rooted at one URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, root = _filesystem(url)
        self.root = root.rstrip("/")
        self._local = isinstance(self.fs, LocalFileSystem)
        self._objects, self._scheme = _object_store(url, self.root)
        self._bucket_chars = len(self.root.split("/", 1)[0]) + 1  # "bucket/" in front of every key
        if self._local:  # made now, so that a folder that disappears later is noticed (`ping`)
            try:
                self.fs.makedirs(self.root, exist_ok=True)
            except OSError as error:
                raise ConfigError(
                    f"HITL_CHATOPS_STORE: cannot create the folder {self.root} ({error.strerror})."
                ) from None
        # Requests and answers are written once, so a replica may keep them; absence never is.
        self._known: OrderedDict[str, Response | Claim] = OrderedDict()
        self._requests: OrderedDict[str, Request] = OrderedDict()
        self._deletes = _BulkDelete(self)

    # -- paths -------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def _event_path(self, request_id: str, name: str) -> str:
        return self._path(REQUESTS, check_request_id(request_id), name)

    def url_of(self, path: str) -> str:
        """The address other fsspec users (flyte.storage, stock flyteplugins-hitl) can open."""
        if self._objects is not None:
            return f"{self._scheme}://{path}"
        return path if self._local else self.fs.unstrip_protocol(path)

    def request_url(self, request_id: str) -> str:
        return self.url_of(self._event_path(request_id, "request.json"))

    def response_url(self, request_id: str) -> str:
        return self.url_of(self._event_path(request_id, "response.json"))

    # -- requests ----------------------------------------------------------------------

    async def put_request(self, request: Request) -> None:
        """Write the request, then its pending marker (the marker is only an index)."""
        await self._write(self._event_path(request.request_id, "request.json"), _dump(request), durable=True)
        marker = {"created_at": request.created_at.isoformat(), "deadline": request.deadline.isoformat()}
        await self._write(self._path(PENDING, request.request_id), json.dumps(marker).encode())

    async def get_request(self, request_id: str) -> Request:
        """The request, read once per replica: request.json never changes after it is written."""
        if (known := self._requests.get(request_id)) is not None:
            return known
        data = await self._read(self._event_path(request_id, "request.json"))
        if data is None:
            raise EventNotFound(request_id)
        request = _load(Request, data, request_id)
        self._requests[request_id] = request
        if len(self._requests) > _REQUEST_LIMIT:
            self._requests.popitem(last=False)
        return request

    def cached_request(self, request_id: str) -> Request | None:
        """The request if this replica has read it already (no storage request)."""
        return self._requests.get(request_id)

    async def pending_ids(self) -> list[str]:
        """Ids in the pending index: O(pending), never a scan of every event ever made."""
        return list((await self._index(PENDING)).keys())

    async def drop_pending(self, request_id: str) -> None:
        """Remove the marker; on object stores, drops that arrive together share one bulk DELETE."""
        path = self._path(PENDING, check_request_id(request_id))
        if self._objects is None:
            await self._mutate(self._remove, path)
            return
        with self._errors():
            await self._deletes.remove(self._key(path))

    async def listing(self) -> Listing:
        """Pending markers (each with its version), replica heartbeats, the outbox and owed signals.

        On object stores these four folders sort next to each other (`hitl-outbox/` <
        `hitl-owed-signals/` < `hitl-pending/` < `hitl-replicas/` < `hitl-requests/`): one ranged
        listing that stops before the events' own folders, one request per 1,000 keys. The outcome
        history (`hitl-history/`), which grows with every outcome, sorts before them and is never
        listed here. Azure: four listings, one per folder (one request per 5,000 keys each).
        """
        if self._objects is None:
            pending, outbox, replicas, signals = [
                await self._index(folder) for folder in (PENDING, OUTBOX, REPLICAS, SIGNALS)
            ]
            return Listing(pending=pending, outbox=list(outbox), replicas=_beats(replicas), signals=list(signals))
        objects = self._objects
        start, end = self._key(self._path(OUTBOX)), self._key(self._path(REPLICAS)) + "/\uffff"
        # (prefix, offset) of each listing; prefixes match whole path segments only: the root, not "hitl-"
        ranges: list[tuple[str | None, str | None]] = [(self._key(self.root) or None, start)]
        if _OBJECT_STORES[self._scheme] == "az":
            # obstore cannot start an Azure listing after a key: it lists from the root's first key and filters
            # on the client, paging through the whole outcome history on every pass. One listing per folder instead.
            ranges = [(self._key(self._path(folder)), None) for folder in (OUTBOX, SIGNALS, PENDING, REPLICAS)]

        def pages() -> Listing:
            result = Listing()
            for prefix, offset in ranges:
                for page in objects.list(prefix=prefix, offset=offset, chunk_size=_LIST_PAGE):
                    for meta in page:
                        if meta["path"] > end:
                            return result
                        _file(result, meta["path"].rsplit("/", 2)[-2:], meta)
            return result

        return await self._run(pages)

    # -- responses ---------------------------------------------------------------------

    async def get_response(self, request_id: str) -> Response | None:
        """At most one storage read: the response, or None while nobody has answered."""
        path = self._event_path(request_id, "response.json")
        if isinstance(known := self._known.get(path), Response):
            return known
        data = await self._read(path)
        return None if data is None else self._remember(path, _load(Response, data, request_id))

    async def put_response(self, response: Response, request: Request | None = None) -> None:
        """Exclusive create, then `settle` (for writers with nobody waiting: the plugin, tests).

        Raises `AlreadyAnswered` (or `EventCancelled`) when the event already has its outcome.
        """
        await self.create_response(response)
        await self.settle(response, request)

    async def create_response(self, response: Response) -> None:
        """Exclusive create: the first outcome wins, a later one raises `AlreadyAnswered` (or `EventCancelled`).

        One request; the caller settles the event afterwards (after the person's ack, on the answer path).
        """
        path = self._event_path(response.request_id, "response.json")
        try:
            await self._create(path, _dump(response))
        except FileExistsError:
            first = await self.get_response(response.request_id)
            raise AlreadyAnswered.of(first or response) from None
        self._remember(path, response)

    async def settle(self, response: Response, request: Request | None = None) -> bool:
        """What follows a written outcome: index it, then drop the pending marker (bulk where possible).

        In that order, so a marker outlives a missing index entry and the reconciler adds it. The
        outcome stands either way; returns False if storage failed (the reconciler finishes the job).
        An outcome written about the deadline also takes the place of an expiry it crossed
        (`supersede_expiry`).
        """
        try:
            await self.index_outcome(response, request.event_name if request else "")
            if request is not None and not response.defaulted and utcnow() >= request.deadline - _CLOCK_SKEW:
                await self.supersede_expiry(request)
            await self.drop_pending(response.request_id)
        except StoreError:
            return False
        return True

    async def supersede_expiry(self, request: Request) -> None:
        """One event, one outcome, when an answer or a cancel checked before the deadline is written after
        the reconciler closed the event (`HitlService.expire` claims, indexes, then looks for a response;
        the writer writes, then looks for the claim: one of them sees the other). The written outcome is
        what every reader of response.json sees, so it stands: the expiry's index entry goes, and the
        copies, which the expiry may have re-rendered last, are queued to be re-rendered from it.
        """
        if await self.get_claim(request.request_id, EXPIRED_CLAIM) is None:
            return
        await self.unindex_expired(request)
        await self.put_outbox(request.request_id, "answered")

    # -- the recent-outcomes index -------------------------------------------------------

    async def index_outcome(self, response: Response, event_name: str = "") -> None:
        """Add an event's outcome to `hitl-history/` (idempotent for a response with a time)."""
        record = OutcomeRecord(
            request_id=response.request_id,
            event_name=event_name,
            outcome=response.outcome,
            at=response.responded_at or utcnow(),
            via=response.via,
            responder=response.responder,
            value=response.value,
            reason=response.reason,
        )
        await self._put_outcome(record)

    async def index_expired(self, request: Request) -> None:
        """Record an event that reached its deadline without an answer or a default."""
        record = OutcomeRecord(
            request_id=request.request_id, event_name=request.event_name, outcome="expired", at=request.deadline
        )
        await self._put_outcome(record)

    async def unindex_expired(self, request: Request) -> None:
        """Take back `index_expired` (its key follows from the deadline): the event has an outcome after all."""
        await self._delete(self._outcome_path("expired", request.deadline, request.request_id))

    async def _put_outcome(self, record: OutcomeRecord) -> None:
        await self._write(self._outcome_path(record.outcome, record.at, record.request_id), _dump(record))

    def _outcome_path(self, outcome: OutcomeKind, at: datetime, request_id: str) -> str:
        at = at.astimezone(UTC)
        countdown = _KEY_EPOCH_MICROS - int(at.timestamp() * 1_000_000)
        return self._path(OUTCOMES, outcome, f"{at:%Y-%m-%d}/{countdown:016d}-{check_request_id(request_id)}")

    async def outcomes(self, outcome: OutcomeKind, *, limit: int, after: str | None = None) -> Page:
        """Newest first, `limit` at a time: the records and the cursor of the next page (None at the end).

        Reads one listing per day visited and one object per record returned, never every event.
        """
        if after is not None and not _OUTCOME_KEY.fullmatch(after):
            raise ValueError("not a cursor this bot returned")
        folder = self._path(OUTCOMES, outcome)

        def page() -> tuple[list[bytes], str | None]:
            keys: list[str] = []
            for day in sorted(self._names(folder), reverse=True):
                if after is not None and day > after[:10]:
                    continue  # newer than the cursor: on earlier pages
                names = sorted(self._names(f"{folder}/{day}"))
                keys += [k for k in (f"{day}/{n}" for n in names) if _listed_after(k, after)]
                if len(keys) > limit:
                    break
            shown = keys[:limit]
            blobs = [blob for blob in (self._get(f"{folder}/{k}") for k in shown) if blob is not None]
            return blobs, (shown[-1] if len(keys) > limit else None)

        blobs, cursor = await self._run(page)
        return [_load(OutcomeRecord, blob, "outcomes") for blob in blobs], cursor

    def _names(self, folder: str) -> list[str]:
        """Names of the objects and subfolders right inside `folder` (blocking: runs on I/O threads)."""
        if self._objects is not None:
            found = self._objects.list_with_delimiter(self._key(folder))
            paths = [*found["common_prefixes"], *(meta["path"] for meta in found["objects"])]
        else:
            try:
                paths = [str(p) for p in self.fs.ls(folder, detail=False)]
            except FileNotFoundError:
                self._require_folder()
                return []
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in paths]

    # -- chat messages -----------------------------------------------------------------

    async def put_message(self, request_id: str, message: MessageRef) -> None:
        name = f"messages/{message.platform}-{message.key}.json"
        await self._write(self._event_path(request_id, name), _dump(message))

    async def messages(self, request_id: str) -> list[MessageRef]:
        event = self._event_path(request_id, "")
        folder = f"{event}messages/"
        if self._objects is not None:  # one listing, then the records read concurrently
            keys = list(await self._index_keys(folder))
            found = await asyncio.gather(*(self._read(f"{folder}{key}") for key in keys))
            return [_load(MessageRef, raw, request_id) for raw in found if raw is not None]

        def read_all() -> list[bytes]:
            # One prefix listing even when there are none (`ls` of an empty prefix lists its parent
            # again to tell a missing folder from a file); local `find` ignores the prefix.
            paths = [str(p) for p in self.fs.find(event, prefix="messages/") if str(p).startswith(folder)]
            return list(self.fs.cat(paths).values()) if paths else []

        records = await (self._run(_read_folder, folder) if self._local else self._run(read_all))
        if not records:
            self._require_folder()
        return [_load(MessageRef, raw, request_id) for raw in records]

    # -- claims: one replica does a thing once ------------------------------------------

    async def claim(self, request_id: str, name: str) -> bool:
        """Create `claims/<name>` exclusively (not done yet); True for the one caller that created it."""
        path = self._claim_path(request_id, name)
        if isinstance(self._known.get(path), Claim):  # only finished claims are kept
            return False
        try:
            await self._create(path, _dump(Claim(claimed_at=utcnow(), done=False)))
        except FileExistsError:
            return False
        return True

    async def get_claim(self, request_id: str, name: str) -> Claim | None:
        path = self._claim_path(request_id, name)
        if isinstance(known := self._known.get(path), Claim):
            return known
        data = await self._read(path)
        if data is None:
            return None
        claim = _load(Claim, data, request_id)
        return self._remember(path, claim) if claim.done else claim

    async def finish_claim(self, request_id: str, name: str) -> None:
        """Mark a claim done, so nobody takes it over; only its holder calls this."""
        path = self._claim_path(request_id, name)
        claim = Claim(claimed_at=utcnow(), done=True)
        await self._write(path, _dump(claim))
        self._remember(path, claim)

    async def release(self, request_id: str, name: str) -> None:
        await self._delete(self._claim_path(request_id, name))

    def _claim_path(self, request_id: str, name: str) -> str:
        return self._event_path(request_id, f"claims/{_safe_name(name)}")

    # -- outbox: message updates still owed (retried by the reconciler) -----------------

    async def put_outbox(self, request_id: str, update: str) -> None:
        path = self._path(OUTBOX, check_request_id(request_id))
        await self._write(path, json.dumps({"update": update}).encode())

    async def outbox_ids(self) -> list[str]:
        return list((await self._index(OUTBOX)).keys())

    async def drop_outbox(self, request_id: str) -> None:
        await self._delete(self._path(OUTBOX, check_request_id(request_id)))

    # -- native Flyte conditions (bot/conditions.py): signals owed, and how each ended ----

    async def put_owed_signal(self, request_id: str, detail: dict[str, Any]) -> None:
        path = self._path(SIGNALS, check_request_id(request_id))
        await self._write(path, json.dumps(detail).encode())

    async def owed_signal_ids(self) -> list[str]:
        return list((await self._index(SIGNALS)).keys())

    async def drop_owed_signal(self, request_id: str) -> None:
        await self._delete(self._path(SIGNALS, check_request_id(request_id)))

    async def put_signal_record(self, request_id: str, record: dict[str, Any]) -> None:
        await self._write(self._event_path(request_id, "signal.json"), json.dumps(record).encode())

    async def get_signal_record(self, request_id: str) -> dict[str, Any] | None:
        raw = await self._read(self._event_path(request_id, "signal.json"))
        return None if raw is None else dict(json.loads(raw))

    # -- platform conversations (where a bot may post proactively) -----------------------

    async def put_conversation(self, platform: str, conversation_id: str, data: dict[str, Any]) -> None:
        await self._write(self._conversation_path(platform, conversation_id), json.dumps(data).encode())

    async def get_conversation(self, platform: str, conversation_id: str) -> dict[str, Any] | None:
        raw = await self._read(self._conversation_path(platform, conversation_id))
        return None if raw is None else dict(json.loads(raw))

    def _conversation_path(self, platform: str, conversation_id: str) -> str:
        # Conversation ids hold ':' '@' and ';': encode them so no client text shapes the path.
        key = base64.urlsafe_b64encode(conversation_id.encode()).decode().rstrip("=")
        return self._path(CONVERSATIONS, f"{platform}-{key}.json")

    # -- replicas: who shares the reconciler's work --------------------------------------

    async def put_replica(self, replica_id: str) -> None:
        """A heartbeat: its LastModified tells the other replicas this one is alive."""
        path = self._path(REPLICAS, check_request_id(replica_id))
        await self._write(path, json.dumps({"seen_at": utcnow().isoformat()}).encode())

    async def heartbeats(self) -> dict[str, datetime]:
        """Replica id -> last heartbeat, as `listing` has them: one request per 1,000 replicas."""
        if (objects := self._objects) is None:
            return _beats(await self._index(REPLICAS))
        prefix = self._key(self._path(REPLICAS))

        def pages() -> dict[str, datetime]:
            found = Listing()
            for page in objects.list(prefix=prefix, chunk_size=_LIST_PAGE):
                for meta in page:
                    _file(found, meta["path"].rsplit("/", 2)[-2:], meta)
            return found.replicas

        return await self._run(pages)

    async def drop_replica(self, replica_id: str) -> None:
        await self._delete(self._path(REPLICAS, check_request_id(replica_id)))

    async def drop_replicas(self, replica_ids: list[str]) -> None:
        """Remove the heartbeats of replicas that stopped; on object stores, one bulk DELETE for them all."""
        paths = [self._path(REPLICAS, check_request_id(replica_id)) for replica_id in replica_ids]
        if self._objects is None:
            for path in paths:
                await self._mutate(self._remove, path)
            return
        with self._errors():
            await asyncio.gather(*(self._deletes.remove(self._key(path)) for path in paths))

    # -- health ------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise `StoreError` unless the root can be listed (a local folder must still be there).

        Object stores: a one-key listing with the bot's own client, so the credentials and bucket
        that answers use are the ones checked.
        """
        if (objects := self._objects) is not None:
            await self._run(lambda: next(iter(objects.list(prefix=self._key(self.root) or None, chunk_size=1)), None))
            return
        self._require_folder()
        await self._run(lambda: self.fs.ls(self.root, detail=False) if self.fs.exists(self.root) else None)

    # -- primitives --------------------------------------------------------------------

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """A read (or any remote call): inline for local folders (cheaper than a thread hop), else on I/O threads."""
        with self._errors():
            if self._local:
                return func(*args)
            return await asyncio.get_running_loop().run_in_executor(_IO_THREADS, func, *args)

    async def _mutate(self, func: Callable[..., T], *args: Any) -> T:
        """A blocking write: local folders use the one disk thread (fsync and metadata stay off the loop)."""
        if not self._local:
            return await self._run(func, *args)
        with self._errors():
            return await DISK.run(lambda: func(*args))

    def _key(self, path: str) -> str:
        """An object store key: the path without its leading bucket name."""
        return path[self._bucket_chars :]

    async def _read(self, path: str) -> bytes | None:
        return await self._run(self._get, path)

    def _get(self, path: str) -> bytes | None:
        """An object's bytes, None if it is absent (blocking: runs on I/O threads, or inline for folders)."""
        try:
            if self._objects is not None:
                return bytes(self._objects.get(self._key(path)).bytes())
            return bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            self._require_folder()  # absent because the whole store is gone is not "absent"
            return None

    async def _index(self, folder: str) -> dict[str, str]:
        """Request ids in `folder` (one level), each with a version that changes when it is rewritten."""
        found = await self._index_keys(self._path(folder) + "/")
        return {name: version for name, version in found.items() if is_request_id(name)}

    async def _index_keys(self, folder: str) -> dict[str, str]:
        """Names in `folder` (a flat one, ending in "/") -> a version that changes when the object is rewritten."""
        if self._objects is None:
            return await self._run(self._ls_versions, folder)
        objects = self._objects
        prefix = self._key(folder).rstrip("/")  # obstore prefixes match whole path segments: no trailing "/"

        def pages() -> dict[str, str]:
            pages = objects.list(prefix=prefix, chunk_size=_LIST_PAGE)
            return {meta["path"].rsplit("/", 1)[-1]: _version(meta) for page in pages for meta in page}

        return await self._run(pages)

    def _ls_versions(self, folder: str) -> dict[str, str]:
        """fsspec's listing, each name with its modification time (seconds since the epoch) as version."""
        try:
            entries = self.fs.ls(folder.rstrip("/"), detail=True)
        except FileNotFoundError:
            self._require_folder()
            return {}
        return {
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]: str(_seconds(e.get("mtime") or e.get("LastModified")))
            for e in entries
            if e.get("type") != "directory"
        }

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

    async def _delete(self, path: str) -> None:
        if self._objects is None:
            await self._mutate(self._remove, path)
            return
        await self._delete_key(self._key(path))

    async def _delete_key(self, key: str) -> None:
        assert self._objects is not None
        with contextlib.suppress(FileNotFoundError):  # Azure and GCS answer 404 for a missing object; S3 says nothing
            await self._run(self._objects.delete, key)

    def _require_folder(self) -> None:
        """A local store's folder, made at start, must still exist: writing would make a new, empty one,
        and reading would answer "no such event" or "nothing pending" while nobody can know."""
        if self._local and not os.path.isdir(self.root):
            log.warning("store folder missing", extra={"url": self.url})
            raise StoreError(f"the store folder {self.root} is missing: put it back, or restart to begin an empty one")

    def _remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def _remember(self, path: str, obj: Known) -> Known:
        self._known[path] = obj
        if len(self._known) > _KNOWN_LIMIT:
            self._known.popitem(last=False)
        return obj

    async def _write(self, path: str, data: bytes, *, durable: bool = False) -> None:
        """Replace `path` atomically: readers see the old object or the new one, never half.

        `durable` syncs a local file to disk first; indexes and records that the reconciler can
        rebuild skip it. Object stores are durable once the PUT returns.
        """
        if (objects := self._objects) is not None:
            await self._run(lambda: objects.put(self._key(path), data, use_multipart=False))
            return
        if not self._local:
            await self._run(self.fs.pipe_file, path, data)
            return
        self._require_folder()
        with self._errors():
            await DISK.put(path, data, durable=durable, publish=os.replace)

    async def _create(self, path: str, data: bytes) -> None:
        """Create `path` only if absent (durably); raise FileExistsError otherwise."""
        assert data, "an empty body would bypass the exclusive-create condition"
        if self._objects is not None:
            await self._create_object(self._key(path), data)
            return
        if not self._local:
            await self._run(self._create_remote, path, data)
            return
        self._require_folder()
        with self._errors():
            # link is atomic and exclusive, unlike pipe_file(mode="create") on a local folder
            await DISK.put(path, data, durable=True, publish=os.link)

    async def _create_object(self, key: str, data: bytes) -> None:
        """`If-None-Match: *` PUT (GCS: `ifGenerationMatch=0`, Azure: `If-None-Match: *`)."""
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        objects = self._objects
        assert objects is not None
        for attempt in range(_CONFLICT_RETRIES):
            try:
                await self._run(lambda: objects.put(key, data, mode="create", use_multipart=False))
                return
            except StoreError as error:
                cause = error.__cause__
                if isinstance(cause, AlreadyExistsError):
                    raise FileExistsError(key) from None
                # Racing conditional writes on AWS: 409 ConditionalRequestConflict, to be retried.
                if not isinstance(cause, PreconditionError) and "409" not in str(cause):
                    raise
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)

    def _create_remote(self, path: str, data: bytes) -> None:
        """Any other fsspec filesystem: its own `mode="create"` (exclusive where it supports it)."""
        self.fs.pipe_file(path, data, mode="create")


class _BulkDelete:
    """Deletes asked for while one is in flight go out together: one DeleteObjects per 1,000 keys."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queued: dict[str, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def remove(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        future = self._queued.get(key)
        if future is None or future.get_loop() is not loop:
            future = self._queued[key] = loop.create_future()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._flush())  # starts once this loop turn's callers queued
        await asyncio.shield(future)

    async def _delete(self, objects: ObjectStore, keys: list[str]) -> None:
        """One bulk request; one by one if a key was gone already (Azure and GCS: 404, where GCS's deletes stop)."""
        try:
            await self._store._run(objects.delete, keys)
        except FileNotFoundError:
            await asyncio.gather(*map(self._store._delete_key, keys))

    async def _flush(self) -> None:
        objects = self._store._objects
        assert objects is not None
        while self._queued:
            batch = dict(list(self._queued.items())[:_LIST_PAGE])
            for key in batch:
                del self._queued[key]
            failed: Exception | None = None
            try:
                await self._delete(objects, list(batch))
            except Exception as error:
                failed = error
            for future in batch.values():
                if future.done() or future.get_loop().is_closed():
                    continue
                if failed is None:
                    future.set_result(None)
                else:
                    future.set_exception(failed)


def _filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec view of the root: obstore's own for S3/GCS/Azure, else fsspec's implementation.

    Importing flyte re-registers obstore for s3/gs/az; we build the class ourselves, so the store
    is the same whether or not flyte was imported first.
    """
    protocol = fsspec.utils.get_protocol(url)
    if protocol in _OBJECT_STORES:
        try:
            from obstore.fsspec import FsspecStore
        except ImportError:
            raise ConfigError(
                f"HITL_CHATOPS_STORE uses {protocol}:// but obstore is missing: pip install 'hitl-chatops[s3]'"
            ) from None

        fs = FsspecStore(protocol, client_options=_CLIENT, retry_config=_RETRY)
        return fs, url.split("://", 1)[1]
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
    options.update(cls._get_kwargs_from_urls(url))
    return cls(**options), str(cls._strip_protocol(url))


def _object_store(url: str, root: str) -> tuple[ObjectStore | None, str]:
    """obstore's native client for the root's bucket (credentials, endpoint: the standard env), or None.

    Called after `_filesystem`, which has said what to install if obstore is missing.
    """
    scheme = fsspec.utils.get_protocol(url)
    if scheme not in _OBJECT_STORES:
        return None, scheme
    from obstore.exceptions import BaseError
    from obstore.store import from_url

    bucket = root.split("/", 1)[0]
    try:
        return from_url(f"{_OBJECT_STORES[scheme]}://{bucket}", client_options=_CLIENT, retry_config=_RETRY), scheme
    except BaseError as error:
        reason = str(error).splitlines()[0]
        hint = _CREDENTIALS[_OBJECT_STORES[scheme]]
        raise ConfigError(f"HITL_CHATOPS_STORE={url}: no storage client ({reason}); set {hint}") from None


def _version(meta: Any) -> str:
    return f"{meta['last_modified'].isoformat()} {meta.get('e_tag') or ''}"


def _file(listing: Listing, tail: list[str], meta: Any) -> None:
    """Put one listed key (`<folder>/<name>`) where it belongs in `listing`."""
    if len(tail) != 2 or not is_request_id(name := tail[1]):
        return
    if tail[0] == PENDING:
        listing.pending[name] = _version(meta)
    elif tail[0] == REPLICAS:
        listing.replicas[name] = meta["last_modified"]
    elif tail[0] == OUTBOX:
        listing.outbox.append(name)
    elif tail[0] == SIGNALS:
        listing.signals.append(name)


def _seconds(modified: Any) -> float:
    """An fsspec listing's modification time (a number, or a datetime on some filesystems), 0 if none."""
    return modified.timestamp() if isinstance(modified, datetime) else float(modified or 0)


def _beats(index: dict[str, str]) -> dict[str, datetime]:
    """Heartbeat times from an fsspec listing of `hitl-replicas/` (`_index`)."""
    return {replica: _parse_time(version) for replica, version in index.items()}


def _parse_time(version: str) -> datetime:
    """An fsspec listing's version is the object's modification time (seconds since the epoch)."""
    return datetime.fromtimestamp(float(version), tz=utcnow().tzinfo)


def _listed_after(key: str, cursor: str | None) -> bool:
    """Whether `key` follows `cursor` in listing order: days newest first, then keys ascending (newest first)."""
    if cursor is None:
        return True
    day, cursor_day = key[:10], cursor[:10]
    return day < cursor_day or (day == cursor_day and key > cursor)


def _safe_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", name):
        raise ValueError(f"claim name {name!r} may only hold letters, digits and . _ -")
    return name


def _dump(model: Request | Response | MessageRef | Claim | OutcomeRecord) -> bytes:
    return model.model_dump_json(exclude_none=False).encode()


M = TypeVar("M", Request, Response, MessageRef, Claim, OutcomeRecord)


def _load(model: type[M], data: bytes, request_id: str) -> M:
    try:
        return model.model_validate_json(data)
    except ValidationError as error:
        log.error("unreadable object in store", extra={"request_id": request_id, "kind": model.__name__})
        raise StoreError(f"{model.__name__} of event {request_id} is not valid: {error.error_count()} errors") from None


def _read_folder(folder: str) -> list[bytes]:
    """Every record in a local folder, by name: one directory read, where fsspec's `find` walks the
    whole event folder and stats each entry. Temp files (`.tmp-…`) of writes in flight are skipped."""
    try:
        names = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):  # no records yet, or a file in the folder's place
        return []
    found = []
    for name in names:
        with contextlib.suppress(FileNotFoundError), open(os.path.join(folder, name), "rb") as file:
            found.append(file.read())
    return found
